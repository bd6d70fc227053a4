"""Reports: the console summary, JUnit XML (xml.etree) for CI, and a Markdown or HTML report.

Tokens never appear in clear: each known token is replaced by its `$CONFORMANCE_*` variable."""

from __future__ import annotations

import contextlib
import json
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .results import Results, Violation

# the variables the suite's reproductions read their tokens from (the proxy's say `$TOKEN`)
TOKEN_VARS = (
    "$CONFORMANCE_TOKEN",
    "$CONFORMANCE_LIMITED_TOKEN",
    "$CONFORMANCE_OTHER_TOKEN",
    "$CONFORMANCE_LIVE_TOKEN",
)
_SINGLE_QUOTED_VAR = re.compile(r"'([^'\"]*\$CONFORMANCE_[A-Z_]+[^'\"]*)'")


def redact(text: str | None, secrets: dict[str, str]) -> str:
    """Every known token replaced by its `$CONFORMANCE_*` variable, quoted so a shell expands it."""
    out = text or ""
    for value, name in secrets.items():
        if value:
            out = out.replace(value, name)
    return _SINGLE_QUOTED_VAR.sub(r'"\1"', out)


def _order(v: Violation) -> tuple[bool, str, str]:
    return (v.check != "not_a_server_error", v.check, v.operation)  # a 500 is always reported first


Grouped = dict[str, dict[str, list[Violation]]]


def grouped(results: Results) -> Grouped:
    """The failing violations by check, then operation (a server error first)."""
    out: Grouped = defaultdict(lambda: defaultdict(list))
    for v in sorted(results.failing, key=_order):
        out[v.check][v.operation].append(v)
    return out


def _apart(results: Results) -> list[tuple[str, str, list[Violation]]]:
    """The sections reported apart from failures: (title, explanation, violations)."""
    out = []
    if results.differences:
        out.append(
            (
                "Differs from the sandbox's choice (not a failure)",
                "Where the documents are silent the sandbox picked something (marked x-inferred in the "
                "spec); this backend picked differently. Reported for information: it does not change "
                "the exit status (use --profile strict to hold a backend to every choice).",
                results.differences,
            )
        )
    if results.known:
        out.append(
            (
                "Known deviations (in the baseline, not a failure)",
                "Listed in the --baseline file: they fail the run again only once they are removed from it.",
                results.known,
            )
        )
    return out


@dataclass
class Row:
    """One check's line in a summary: operations failing, passing, skipped; `api_wide`: a finding
    about the whole API (operation `*`), which is no operation of the spec."""

    check: str
    failing: list[str]
    passing: int
    skipped: int
    api_wide: bool

    @property
    def status(self) -> str:
        if self.failing or self.api_wide:
            return "FAIL"
        return "SKIP" if self.skipped and not self.passing else "ok"


def rows(results: Results) -> list[Row]:
    groups = grouped(results)
    checks = sorted({c for c, _ in results.passed} | set(groups) | {s.check for s in results.skips})
    out = []
    for check in checks:
        ops = groups.get(check, {})
        passing = {op for c, op in results.passed if c == check and op not in ops and op != "*"}
        skipped = len([s for s in results.skips if s.check == check])
        out.append(Row(check, [op for op in ops if op != "*"], len(passing), skipped, "*" in ops))
    return out


def _counted(row: Row) -> str:
    text = f"{len(row.failing)} operation(s) failing, {row.passing} passing"
    if row.api_wide:
        text += ", an API-wide finding"
    return text + (f", {row.skipped} skipped" if row.skipped else "")


def success_lines(results: Results) -> list[str]:
    """Per operation, how many 2xx the run saw; the ones with none are listed apart."""
    if not results.operations:
        return []
    width = max(len(op) for op in results.operations)
    lines = ["", "2xx (or documented 3xx) responses per operation: the success path exercised"]
    lines += [f"  {op:<{width}}  {results.successes.get(op, 0)}" for op in results.operations]
    if results.unexercised:
        lines += ["", f"Success path not exercised ({len(results.unexercised)}): no success seen for"]
        lines += [f"  - {op}" for op in results.unexercised]
    return lines


def verdict(results: Results) -> str:
    if results.incomplete is not None:
        return "INCOMPLETE"
    return "FAIL" if results.failing else "PASS"


def _indent(text: str, prefix: str = "      ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def summary(results: Results, secrets: dict[str, str]) -> str:
    lines = [
        "",
        f"Conformance of {results.api} at {results.base_url}",
        f"{results.requests} requests in {results.duration:.1f}s"
        + (f", {results.rate_limited} rate-limited (429) and retried" if results.rate_limited else ""),
    ]
    if results.incomplete is not None:
        lines.append(f"INCOMPLETE: {results.incomplete}; what ran is reported below, the rest is unchecked")
    if results.cleanup is not None:
        lines.append(f"records: {results.cleanup}")
    lines.append("")
    groups = grouped(results)
    for row in rows(results):
        lines.append(f"  {row.status:<4}  {row.check}: {_counted(row)}")
    if results.skips:
        lines += ["", "Skipped (not a pass):"]
        for s in results.skips:
            where = "" if s.operation == "*" else f" [{s.operation}]"
            lines.append(f"  - {s.check}{where}: {s.reason}")
    if groups:
        lines += ["", "Violations, by check and operation:"]
        for check, ops in groups.items():
            lines.append("")
            lines.append(f"== {check}")
            for op, violations in ops.items():
                lines.append(f"  -- {op}")
                for v in violations:
                    times = f" (x{v.count})" if v.count > 1 else ""
                    lines.append(_indent(redact(v.message, secrets), "     * ").rstrip() + times)
                    if v.response:
                        lines.append(_indent(redact(v.response, secrets)[:500], "       < "))
                    if v.curl:
                        lines.append(_indent(redact(v.curl, secrets), "       $ "))
    for title, why, found in _apart(results):
        lines += ["", f"{title}: {len(found)}", f"  ({why})"]
        for v in sorted(found, key=_order):
            reason = f" [{v.inferred}]" if v.inferred else ""
            lines.append(_indent(redact(f"{v.check} {v.operation}: {v.message}{reason}", secrets), "  - "))
    lines += success_lines(results)
    if results.hints:
        lines += ["", "Check your tokens (or the backend ignores what they test):"]
        lines += [f"  - {h}" for h in results.hints]
    lines.append("")
    lines.append(f"profile: {results.profile}")
    if results.incomplete is not None:
        lines.append(
            f"RESULT: INCOMPLETE ({results.incomplete}): {len(results.failing)} violation(s) in what ran"
        )
    elif results.failing:
        lines.append(
            f"RESULT: {len(results.failing)} violation(s) in {len(groups)} check(s): "
            f"{', '.join(results.failed_checks)}"
        )
    else:
        lines.append("RESULT: no violation")
    return "\n".join(lines)


def junit(results: Results, secrets: dict[str, str], *, tool: str = "conformance") -> ET.ElementTree:
    """One testsuite per check; one testcase per (check, operation): failure, skipped or passed.
    `tool` names the report and its test classes (`conformance.<api>.<check>`; `proxy` too)."""
    root = ET.Element("testsuites", name=f"{tool} {results.api}")
    groups = grouped(results)
    checks = sorted({c for c, _ in results.passed} | set(groups) | {s.check for s in results.skips})
    total = failures = skipped = 0
    for check in checks:
        suite = ET.SubElement(root, "testsuite", name=f"{results.api}.{check}")
        cases = failing = skips = 0
        ops = groups.get(check, {})
        for op, violations in ops.items():
            tc = ET.SubElement(suite, "testcase", classname=f"{tool}.{results.api}.{check}", name=op)
            body = "\n\n".join(
                "\n".join(
                    x
                    for x in (
                        redact(v.message, secrets),
                        redact(v.response, secrets) if v.response else "",
                        ("Reproduce with:\n" + redact(v.curl, secrets)) if v.curl else "",
                    )
                    if x
                )
                for v in violations
            )
            failure = ET.SubElement(
                tc, "failure", message=redact(violations[0].message, secrets)[:300], type=check
            )
            failure.text = body
            cases += 1
            failing += 1
        for op in sorted({op for c, op in results.passed if c == check and op not in ops}):
            ET.SubElement(suite, "testcase", classname=f"{tool}.{results.api}.{check}", name=op)
            cases += 1
        for s in results.skips:
            if s.check == check:
                tc = ET.SubElement(
                    suite,
                    "testcase",
                    classname=f"{tool}.{results.api}.{check}",
                    name=s.operation if s.operation != "*" else f"{check} (all operations)",
                )
                ET.SubElement(tc, "skipped", message=s.reason)
                cases += 1
                skips += 1
        suite.set("tests", str(cases))
        suite.set("failures", str(failing))
        suite.set("skipped", str(skips))
        suite.set("errors", "0")
        total, failures, skipped = total + cases, failures + failing, skipped + skips
    apart = [v for _, _, found in _apart(results) for v in found]
    if apart:
        suite = ET.SubElement(root, "testsuite", name=f"{results.api}.not-failures")
        for v in sorted(apart, key=_order):
            name = f"{tool}.{results.api}.{v.check}"
            tc = ET.SubElement(suite, "testcase", classname=name, name=v.operation)
            why = f"differs from the sandbox's choice: {v.inferred}" if v.inferred else "known (baseline)"
            ET.SubElement(tc, "system-out").text = f"{redact(v.message, secrets)}\n({why})"
        suite.set("tests", str(len(apart)))
        suite.set("failures", "0")
        total += len(apart)
    total, errors = total + _run_suite(root, results, tool), 1 if results.incomplete is not None else 0
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    root.set("skipped", str(skipped))
    root.set("time", f"{results.duration:.2f}")
    ET.indent(root)
    return ET.ElementTree(root)


def _run_suite(root: ET.Element, results: Results, tool: str = "conformance") -> int:
    """The run itself as a testsuite: its properties (incomplete, cleanup, 2xx per operation) and
    a `run completed` testcase, an error when the run was stopped early."""
    suite = ET.Element("testsuite", name=f"{results.api}.run")
    root.insert(0, suite)
    props = ET.SubElement(suite, "properties")
    values = {
        "incomplete": "true" if results.incomplete is not None else "false",
        **({"stopped": results.incomplete} if results.incomplete is not None else {}),
        **({"cleanup": results.cleanup} if results.cleanup is not None else {}),
        **{k: v for k, v in results.meta.items() if k != "host"},
        "success-path-not-exercised": ", ".join(results.unexercised),
    }
    for name, value in values.items():
        ET.SubElement(props, "property", name=name, value=value)
    tc = ET.SubElement(suite, "testcase", classname=f"{tool}.{results.api}.run", name="run completed")
    if results.incomplete is not None:
        ET.SubElement(
            tc, "error", message=f"incomplete: {results.incomplete}", type="incomplete"
        ).text = "The run was stopped before every check ran; the other testsuites hold what was checked."
    out = ET.SubElement(suite, "system-out")
    out.text = "\n".join(line for line in success_lines(results) if line)
    suite.set("tests", "1")
    suite.set("failures", "0")
    suite.set("errors", "1" if results.incomplete is not None else "0")
    suite.set("skipped", "0")
    return 1


def markdown(results: Results, secrets: dict[str, str], *, title: str = "Conformance report") -> str:
    groups = grouped(results)
    out = [
        f"# {title}: {results.api}",
        "",
        f"- Backend: `{results.base_url}`",
        f"- Requests: {results.requests} in {results.duration:.1f}s ({results.rate_limited} answered 429)",
        f"- Profile: {results.profile}",
        *([f"- Records: {results.cleanup}"] if results.cleanup is not None else []),
        *([f"- **INCOMPLETE**: {results.incomplete}"] if results.incomplete is not None else []),
        f"- Result: **{verdict(results)}**"
        + (f", {len(results.failing)} violation(s) in {', '.join(results.failed_checks)}" if groups else ""),
        "",
        "| check | failing operations | passing operations | skipped |",
        "|---|---|---|---|",
    ]
    for row in rows(results):
        failing = f"{len(row.failing)}" + (" + API-wide" if row.api_wide else "")
        out.append(f"| {row.check} | {failing} | {row.passing} | {row.skipped} |")
    if results.skips:
        out += ["", "## Skipped", ""]
        out += [
            f"- **{s.check}**{'' if s.operation == '*' else f' `{s.operation}`'}: {s.reason}"
            for s in results.skips
        ]
    for check, ops in groups.items():
        out += ["", f"## {check}"]
        for op, violations in ops.items():
            out += ["", f"### `{op}`", ""]
            for v in violations:
                out.append(f"- {redact(v.message, secrets)}" + (f" (x{v.count})" if v.count > 1 else ""))
                if v.response:
                    out += [
                        "",
                        "  ```",
                        *("  " + line for line in redact(v.response, secrets)[:800].splitlines()),
                        "  ```",
                    ]
                if v.curl:
                    out += [
                        "",
                        "  ```sh",
                        *("  " + line for line in redact(v.curl, secrets).splitlines()),
                        "  ```",
                    ]
    for title, why, found in _apart(results):
        out += ["", f"## {title}", "", why, ""]
        for v in sorted(found, key=_order):
            reason = f" ({v.inferred})" if v.inferred else ""
            out.append(f"- **{v.check}** `{v.operation}`: {redact(v.message, secrets)}{reason}")
    if results.hints:
        out += ["", "## Check your tokens", "", *(f"- {h}" for h in results.hints)]
    out += ["", "## 2xx (or documented 3xx) responses per operation", "", "| operation | 2xx |", "|---|---|"]
    out += [f"| `{op}` | {results.successes.get(op, 0)} |" for op in results.operations]
    if results.unexercised:
        out += ["", "Success path not exercised: " + ", ".join(f"`{op}`" for op in results.unexercised)]
    if results.notes:
        out += ["", "## Notes", "", *(f"- {n}" for n in results.notes)]
    return "\n".join(out) + "\n"


_STATUS = re.compile(r"^HTTP (\d{3})\s?(.*)$", re.DOTALL)


def _response(text: str | None) -> tuple[str | None, str | None]:
    """(status, body) of a violation's response excerpt, the body pretty-printed when it is JSON."""
    if not text:
        return None, None
    m = _STATUS.match(text)
    if m is None:
        return None, text
    status, body = m.group(1), m.group(2).strip()
    with contextlib.suppress(ValueError):  # cut short or not JSON: shown as received
        body = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    return status, body or None


def _anchor(*parts: str) -> str:
    return "-".join(re.sub(r"[^A-Za-z0-9]+", "-", p).strip("-").lower() or "x" for p in parts)


def html_report(
    results: Results,
    secrets: dict[str, str],
    *,
    title: str = "Conformance report",
    token_vars: tuple[str, ...] = TOKEN_VARS,
) -> str:
    """A self-contained HTML page (Jinja2 template `templates/report.html.j2`, autoescaped);
    `token_vars`: the variables its curl lines read tokens from."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("conformance", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    groups: list[dict[str, Any]] = []
    links: dict[str, list[dict[str, str]]] = defaultdict(list)
    for check, ops in grouped(results).items():
        operations = []
        for op, violations in ops.items():
            shown = []
            for i, v in enumerate(violations):
                anchor = _anchor("v", check, op, str(i))
                status, body = _response(redact(v.response, secrets) if v.response else None)
                shown.append(
                    {
                        "anchor": anchor,
                        "message": redact(v.message, secrets),
                        "count": v.count,
                        "status": status,
                        "body": body,
                        "curl": redact(v.curl, secrets) if v.curl else None,
                    }
                )
            links[check].append({"label": op if op != "*" else "API-wide", "anchor": str(shown[0]["anchor"])})
            operations.append({"label": op if op != "*" else "API-wide (*)", "violations": shown})
        groups.append({"name": check, "operations": operations})
    apart = [
        {
            "title": title,
            "why": why,
            "anchor": _anchor(title),
            "violations": [
                {
                    "anchor": _anchor("d", v.check, v.operation, str(i)),
                    "check": v.check,
                    "operation": v.operation,
                    "message": redact(v.message, secrets),
                    "reason": v.inferred,
                }
                for i, v in enumerate(sorted(found, key=_order))
            ],
        }
        for title, why, found in _apart(results)
    ]
    table = [
        {
            "check": row.check,
            "status": row.status,
            "links": links.get(row.check, []),
            "passing": row.passing,
            "skipped": row.skipped,
        }
        for row in rows(results)
    ]
    meta = [(k, redact(v, secrets)) for k, v in results.meta.items()]
    meta += [("requests", str(results.requests))] if "requests" not in results.meta else []
    if results.cleanup is not None:
        meta.append(("records", results.cleanup))
    headline = (
        f"{len(results.failing)} violation(s) in {len(groups)} check(s)"
        if results.failing
        else "No violation" + (" in what ran" if results.incomplete else "")
    ) + f"; {results.requests} requests in {results.duration:.1f}s against {results.base_url}."
    return env.get_template("report.html.j2").render(
        api=results.api,
        title=title,
        token_vars=token_vars,
        verdict=verdict(results),
        headline=headline,
        incomplete=results.incomplete,
        meta=meta,
        rows=table,
        skips=results.skips,
        groups=groups,
        apart=apart,
        successes=[(op, results.successes.get(op, 0)) for op in results.operations],
        unexercised=results.unexercised,
        notes=[redact(n, secrets) for n in results.notes],
        hints=results.hints,
    )


def write_all(
    results: Results, junit_path: str | None, report_path: str | None, secrets: dict[str, str]
) -> None:
    if junit_path:
        Path(junit_path).parent.mkdir(parents=True, exist_ok=True)
        junit(results, secrets).write(junit_path, encoding="utf-8", xml_declaration=True)
    if report_path:
        Path(report_path).parent.mkdir(parents=True, exist_ok=True)
        if report_path.endswith((".html", ".htm")):
            text = html_report(results, secrets)
        else:
            text = markdown(results, secrets)
        Path(report_path).write_text(text, encoding="utf-8")
