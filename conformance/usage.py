"""A run refused before it started (a usage error, exit 2) still leaves the reports CI uploads:
a JUnit file with one failing test case and a Markdown or HTML page, both naming the error. Where a
bad value came from is named too: a flag, or the environment variable that stood in for it."""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from pathlib import Path

# flag -> the environment variable that is its default (conformance/cli.py)
ENV_DEFAULTS = {
    "--token": "CONFORMANCE_TOKEN",
    "--limited-token": "CONFORMANCE_LIMITED_TOKEN",
    "--other-token": "CONFORMANCE_OTHER_TOKEN",
    "--admin-token": "SANDBOX_ADMIN_TOKEN",
}


def sources(argv: list[str]) -> dict[str, str]:
    """flag -> how the user gave it: the flag itself, or `$VARIABLE` when the flag was absent."""
    given = {a.split("=", 1)[0] for a in argv if a.startswith("--")}
    return {flag: flag if flag in given else f"${var}" for flag, var in ENV_DEFAULTS.items()}


def named(message: str, source: dict[str, str]) -> str:
    """`message` with each token flag it blames replaced by where that value really came from."""
    for flag, where in sorted(source.items(), key=lambda kv: -len(kv[0])):
        if where != flag:
            message = message.replace(f"{flag} ", f"{where} ").replace(f"{flag}:", f"{where}:")
    return message


def write(api: str, message: str, junit_xml: str | None, report: str | None) -> list[str]:
    """Write the usage error where the run's reports would have gone; returns the problems met
    (a report folder that cannot be written), never raises."""
    problems: list[str] = []
    if junit_xml:
        suites = ET.Element("testsuites", tests="1", failures="0", errors="1")
        suite = ET.SubElement(suites, "testsuite", name=f"conformance.{api}", tests="1", errors="1")
        case = ET.SubElement(suite, "testcase", classname=f"conformance.{api}.run", name="run started")
        ET.SubElement(case, "error", type="usage-error", message=message).text = message
        problems += _save(junit_xml, ET.tostring(suites, encoding="unicode", xml_declaration=True))
    if report:
        title = f"Conformance report: {api}: NOT RUN (usage error)"
        if report.endswith(".html"):
            text = (
                f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
                f"<body><h1>{html.escape(title)}</h1><p>The run did not start (exit 2):</p>"
                f"<pre>{html.escape(message)}</pre></body></html>\n"
            )
        else:
            text = f"# {title}\n\nThe run did not start (exit 2):\n\n    {message}\n"
        problems += _save(report, text)
    return problems


def _save(path: str, text: str) -> list[str]:
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
    except OSError as exc:
        return [f"cannot write {path}: {exc.strerror or exc}"]
    return []


_VERSION = re.compile(r"v\d+(\.\d+)*")


def rebased(given: str, documented: str) -> str:
    """The path to suggest for `--base-url`: the documented base path in place of the part of
    `given` that resembles it (`/cloudnexus/v2` with `/v1` documented: `/cloudnexus/v1`, not
    `/cloudnexus/v2/v1`), else appended."""
    g = [p for p in given.split("/") if p]
    d = [p for p in documented.split("/") if p]

    def alike(a: str, b: str) -> bool:
        return a == b or bool(_VERSION.fullmatch(a) and _VERSION.fullmatch(b))

    for k in range(min(len(g), len(d)), 0, -1):
        if all(alike(x, y) for x, y in zip(g[-k:], d[-k:], strict=True)):
            return "/" + "/".join(g[:-k] + d)
    return "/" + "/".join(g + d)
