"""The proxy's report on exit, titled as its own ("Proxy report"): the conformance suite's JUnit
and Markdown (or HTML) writers over what the backend broke, then two sections of the client's
side: the requests the contract refuses, and apart, like every inferred finding, those only the
sandbox's inferred rules refuse (never a failure). Its notes are the proxy's (what went unjudged,
clients that left); its reproductions never hold a credential: they read it from `$TOKEN`."""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from conformance.report import grouped, html_report, junit, markdown
from conformance.results import Results, Violation

if TYPE_CHECKING:
    from .app import ProxyApp

TITLE = "Proxy report"
TOKEN_VAR = "$TOKEN"
CLIENT_TITLE = "Requests the contract refuses (the client's, not the backend's)"
INFERRED_TITLE = "Requests only the sandbox's choices refuse (the client's; not a failure)"
INFERRED_WHY = (
    "The documents do not state the rule these requests break (it is marked x-inferred in the spec): "
    "the sandbox would refuse them, a real backend may not. Reported for information: they do not "
    "change the exit status."
)
TOKEN_NOTE = (
    f"The curl lines read the credential from `{TOKEN_VAR}` (the proxy never keeps the one the app "
    f"sent): `export TOKEN=...`, then paste."
)


def _results(app: ProxyApp) -> Results:
    """What the backend broke, with the proxy's counts and notes (a copy: reports can be written
    more than once)."""
    return replace(app.results, requests=app.exchanges, notes=[*app.results.notes, *_notes(app)])


def _notes(app: ProxyApp) -> list[str]:
    s = app.status()
    out = []
    if not s["exchanges"]:
        out.append(
            f"No exchange passed through the proxy: point the app's base URL for {app.contract.name} "
            f"at the proxy (the upstream's path: {app.base_path or '/'})."
        )
    if s["unjudged_bodies"]:
        out.append(f"{s['unjudged_bodies']} JSON answer(s) too large to judge: passed on, bodies unjudged.")
    if s["clients_left"]:
        out.append(f"{s['clients_left']} client(s) left before their answer ended.")
    return out


def _refused(app: ProxyApp) -> tuple[list[Violation], list[Violation]]:
    """(refused by the documented contract, refused only by the sandbox's inferred rules)."""
    return app.requests.failing, app.requests.differences


def junit_tree(app: ProxyApp) -> ET.ElementTree:
    tree = junit(_results(app), {}, tool="proxy")
    root = tree.getroot()
    assert root is not None
    refused, inferred = _refused(app)
    if refused:
        suite = ET.SubElement(root, "testsuite", name=f"{app.contract.name}.client-requests")
        for check, ops in grouped(app.requests).items():
            for op, found in ops.items():
                tc = ET.SubElement(suite, "testcase", classname=f"proxy.{app.contract.name}.{check}", name=op)
                failure = ET.SubElement(tc, "failure", message=found[0].message[:300], type=check)
                failure.text = "\n\n".join(f"{v.message}\nReproduce with:\n{v.curl}" for v in found)
        count = len(suite)
        suite.set("tests", str(count))
        suite.set("failures", str(count))
        root.set("tests", str(int(root.get("tests", "0")) + count))
        root.set("failures", str(int(root.get("failures", "0")) + count))
    if inferred:
        suite = ET.SubElement(root, "testsuite", name=f"{app.contract.name}.client-requests-inferred")
        for v in inferred:
            tc = ET.SubElement(
                suite, "testcase", classname=f"proxy.{app.contract.name}.{v.check}", name=v.operation
            )
            reproduce = f"\nReproduce with:\n{v.curl}" if v.curl else ""
            ET.SubElement(tc, "system-out").text = f"{v.message}\n({v.inferred}){reproduce}"
        suite.set("tests", str(len(inferred)))
        suite.set("failures", "0")
        root.set("tests", str(int(root.get("tests", "0")) + len(inferred)))
    ET.indent(root)
    return tree


def markdown_text(app: ProxyApp) -> str:
    text = markdown(_results(app), {}, title=TITLE)
    refused, inferred = _refused(app)
    lines = ["", f"## {CLIENT_TITLE}", ""]
    if not refused:
        lines.append("None.")
    for v in refused:
        lines += [f"- `{v.operation}`: {v.message}" + (f" (x{v.count})" if v.count > 1 else "")]
        if v.curl:
            lines += ["", "  ```sh", f"  {v.curl}", "  ```"]
    if inferred:
        lines += ["", f"## {INFERRED_TITLE}", "", INFERRED_WHY, ""]
        for v in inferred:
            lines += [f"- `{v.operation}`: {v.message}" + (f" (x{v.count})" if v.count > 1 else "")]
            if v.curl:
                lines += ["", "  ```sh", f"  {v.curl}", "  ```"]
    lines += ["", TOKEN_NOTE]
    return text + "\n".join(lines) + "\n"


def write_reports(app: ProxyApp, path: str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if path.endswith(".xml"):
        junit_tree(app).write(target, encoding="utf-8", xml_declaration=True)
        return
    if path.endswith((".html", ".htm")):
        target.write_text(html_text(app), encoding="utf-8")
        return
    target.write_text(markdown_text(app), encoding="utf-8")


def _html_items(found: list[Violation]) -> str:
    return "".join(
        f"<li><code>{html.escape(v.operation)}</code>: {html.escape(v.message)}"
        + (f" (x{v.count})" if v.count > 1 else "")
        + (f"<pre>{html.escape(v.curl)}</pre>" if v.curl else "")
        + "</li>"
        for v in found
    )


def html_text(app: ProxyApp) -> str:
    """The conformance suite's HTML report of what the backend broke, and the client's side."""
    page = html_report(_results(app), {}, title=TITLE, token_vars=(TOKEN_VAR,))
    refused, inferred = _refused(app)
    items = _html_items(refused)
    section = (
        f'<section id="client-requests"><h2>{html.escape(CLIENT_TITLE)}</h2>'
        + (f"<ul>{items}</ul>" if items else "<p>None.</p>")
        + "</section>"
    )
    if inferred:
        section += (
            f'<section id="client-requests-inferred" class="apart"><h2>{html.escape(INFERRED_TITLE)}</h2>'
            f"<p>{html.escape(INFERRED_WHY)}</p><ul>{_html_items(inferred)}</ul></section>"
        )
    return page.replace("</body>", section + "</body>", 1)
