"""Reports: the console summary, JUnit XML (xml.etree) for CI, and a Markdown or HTML report.

Tokens never appear in clear: each known token is replaced by its `$CONFORMANCE_*` variable."""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

from .results import Results, Violation

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


def _indent(text: str, prefix: str = "      ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def summary(results: Results, secrets: dict[str, str]) -> str:
    lines = [
        "",
        f"Conformance of {results.api} at {results.base_url}",
        f"{results.requests} requests in {results.duration:.1f}s"
        + (f", {results.rate_limited} rate-limited (429) and retried" if results.rate_limited else ""),
        "",
    ]
    groups = grouped(results)
    checks = sorted({c for c, _ in results.passed} | set(groups) | {s.check for s in results.skips})
    for check in checks:
        ops = groups.get(check, {})
        passed = len({op for c, op in results.passed if c == check and op not in ops})
        skipped = [s for s in results.skips if s.check == check]
        status = "FAIL" if ops else ("SKIP" if skipped and not passed else "ok")
        lines.append(
            f"  {status:<4}  {check}: {len(ops)} operation(s) failing, {passed} passing"
            + (f", {len(skipped)} skipped" if skipped else "")
        )
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
    lines.append("")
    lines.append(f"profile: {results.profile}")
    if results.failing:
        lines.append(
            f"RESULT: {len(results.failing)} violation(s) in {len(groups)} check(s): "
            f"{', '.join(results.failed_checks)}"
        )
    else:
        lines.append("RESULT: no violation")
    return "\n".join(lines)


def junit(results: Results, secrets: dict[str, str]) -> ET.ElementTree:
    """One testsuite per check; one testcase per (check, operation): failure, skipped or passed."""
    root = ET.Element("testsuites", name=f"conformance {results.api}")
    groups = grouped(results)
    checks = sorted({c for c, _ in results.passed} | set(groups) | {s.check for s in results.skips})
    total = failures = skipped = 0
    for check in checks:
        suite = ET.SubElement(root, "testsuite", name=f"{results.api}.{check}")
        cases = failing = skips = 0
        ops = groups.get(check, {})
        for op, violations in ops.items():
            tc = ET.SubElement(suite, "testcase", classname=f"conformance.{results.api}.{check}", name=op)
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
            ET.SubElement(suite, "testcase", classname=f"conformance.{results.api}.{check}", name=op)
            cases += 1
        for s in results.skips:
            if s.check == check:
                tc = ET.SubElement(
                    suite,
                    "testcase",
                    classname=f"conformance.{results.api}.{check}",
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
            name = f"conformance.{results.api}.{v.check}"
            tc = ET.SubElement(suite, "testcase", classname=name, name=v.operation)
            why = f"differs from the sandbox's choice: {v.inferred}" if v.inferred else "known (baseline)"
            ET.SubElement(tc, "system-out").text = f"{redact(v.message, secrets)}\n({why})"
        suite.set("tests", str(len(apart)))
        suite.set("failures", "0")
        total += len(apart)
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("skipped", str(skipped))
    root.set("time", f"{results.duration:.2f}")
    ET.indent(root)
    return ET.ElementTree(root)


def markdown(results: Results, secrets: dict[str, str]) -> str:
    groups = grouped(results)
    out = [
        f"# Conformance report: {results.api}",
        "",
        f"- Backend: `{results.base_url}`",
        f"- Requests: {results.requests} in {results.duration:.1f}s ({results.rate_limited} answered 429)",
        f"- Profile: {results.profile}",
        f"- Result: **{'FAIL' if results.failing else 'PASS'}**"
        + (f", {len(results.failing)} violation(s) in {', '.join(results.failed_checks)}" if groups else ""),
        "",
        "| check | failing operations | passing operations | skipped |",
        "|---|---|---|---|",
    ]
    checks = sorted({c for c, _ in results.passed} | set(groups) | {s.check for s in results.skips})
    for check in checks:
        ops = groups.get(check, {})
        passed = len({op for c, op in results.passed if c == check and op not in ops})
        skipped = len([s for s in results.skips if s.check == check])
        out.append(f"| {check} | {len(ops)} | {passed} | {skipped} |")
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
    if results.notes:
        out += ["", "## Notes", "", *(f"- {n}" for n in results.notes)]
    return "\n".join(out) + "\n"


def as_html(markdown_text: str, title: str) -> str:
    """A self-contained HTML page of the Markdown report (headings, lists, tables, code blocks)."""
    body: list[str] = []
    in_code = in_table = False
    for line in markdown_text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            body.append("</pre>" if in_code else "<pre>")
            in_code = not in_code
            continue
        if in_code:
            body.append(html.escape(line.removeprefix("  ")))
            continue
        if stripped.startswith("|"):
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            if set("".join(cells)) <= set("-"):
                continue
            if not in_table:
                body.append("<table>")
                in_table = True
            body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
            continue
        if in_table:
            body.append("</table>")
            in_table = False
        if stripped.startswith("#"):
            level = len(stripped) - len(stripped.lstrip("#"))
            body.append(f"<h{level}>{html.escape(stripped[level:].strip())}</h{level}>")
        elif stripped.startswith("- "):
            body.append(f"<li>{html.escape(stripped[2:])}</li>")
        elif stripped:
            body.append(f"<p>{html.escape(stripped)}</p>")
    if in_table:
        body.append("</table>")
    style = (
        "body{font-family:sans-serif;max-width:70em;margin:auto}pre{background:#f4f4f4;padding:.5em;"
        "overflow-x:auto}td{border:1px solid #ccc;padding:.2em .5em}table{border-collapse:collapse}"
    )
    return (
        f'<!doctype html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def write_all(
    results: Results, junit_path: str | None, report_path: str | None, secrets: dict[str, str]
) -> None:
    if junit_path:
        Path(junit_path).parent.mkdir(parents=True, exist_ok=True)
        junit(results, secrets).write(junit_path, encoding="utf-8", xml_declaration=True)
    if report_path:
        Path(report_path).parent.mkdir(parents=True, exist_ok=True)
        text = markdown(results, secrets)
        if report_path.endswith((".html", ".htm")):
            text = as_html(text, f"Conformance report: {results.api}")
        Path(report_path).write_text(text, encoding="utf-8")
