"""The proxy's report on exit: the conformance suite's JUnit and Markdown (or HTML) writers over
what the backend broke, and a section of its own for the requests the contract refuses (the
client's side). Reproductions never hold a credential (`$TOKEN`)."""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

from conformance.report import grouped, html_report, junit, markdown

if TYPE_CHECKING:
    from .app import ProxyApp

CLIENT_TITLE = "Requests the contract refuses (the client's, not the backend's)"


def junit_tree(app: ProxyApp) -> ET.ElementTree:
    app.results.requests = app.exchanges
    tree = junit(app.results, {})
    root = tree.getroot()
    assert root is not None
    root.set("name", f"proxy {app.contract.name}")
    refused = app.requests.failing
    if refused:
        suite = ET.SubElement(root, "testsuite", name=f"{app.contract.name}.client-requests")
        for check, ops in grouped(app.requests).items():
            for op, found in ops.items():
                failing = [v for v in found if v.failing]
                if not failing:
                    continue
                tc = ET.SubElement(suite, "testcase", classname=f"proxy.{app.contract.name}.{check}", name=op)
                failure = ET.SubElement(tc, "failure", message=failing[0].message[:300], type=check)
                failure.text = "\n\n".join(f"{v.message}\nReproduce with:\n{v.curl}" for v in failing)
        count = len(suite)
        suite.set("tests", str(count))
        suite.set("failures", str(count))
        root.set("tests", str(int(root.get("tests", "0")) + count))
        root.set("failures", str(int(root.get("failures", "0")) + count))
        ET.indent(root)
    return tree


def markdown_text(app: ProxyApp) -> str:
    app.results.requests = app.exchanges
    text = markdown(app.results, {}).replace(
        f"# Conformance report: {app.contract.name}", f"# Proxy report: {app.contract.name}", 1
    )
    refused = [v for v in app.requests.violations if v.failing]
    lines = ["", f"## {CLIENT_TITLE}", ""]
    if not refused:
        lines.append("None.")
    for v in refused:
        lines += [f"- `{v.operation}`: {v.message}" + (f" (x{v.count})" if v.count > 1 else "")]
        if v.curl:
            lines += ["", "  ```sh", f"  {v.curl}", "  ```"]
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


def html_text(app: ProxyApp) -> str:
    """The conformance suite's HTML report of what the backend broke, and the client's side."""
    app.results.requests = app.exchanges
    page = html_report(app.results, {})
    refused = [v for v in app.requests.violations if v.failing]
    items = "".join(
        f"<li><code>{html.escape(v.operation)}</code>: {html.escape(v.message)}"
        + (f"<pre>{html.escape(v.curl)}</pre>" if v.curl else "")
        + "</li>"
        for v in refused
    )
    section = (
        f'<section id="client-requests"><h2>{html.escape(CLIENT_TITLE)}</h2>'
        + (f"<ul>{items}</ul>" if items else "<p>None.</p>")
        + "</section>"
    )
    return page.replace("</body>", section + "</body>", 1)
