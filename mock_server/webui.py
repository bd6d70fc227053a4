"""The sandbox's pages for people: an index of the APIs (`/`, `/_mock/docs`), Swagger UI per API
(`/_mock/docs/<api>`) and the dashboard (`/_mock/ui`).

Pages are rendered here and hold no state: every figure on them comes from the control API,
fetched by a little vanilla JS (`ui/*.js`), so `--admin-token` guards the data, not the page
(the page asks for the admin token when the control API answers 401 and keeps it in the tab's
sessionStorage). Swagger UI's assets come from the `openapi-ui-bundles` package: no CDN, no build
step, the pages work offline."""

from __future__ import annotations

import html
import json
import mimetypes
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response

if TYPE_CHECKING:
    from .sandbox import Sandbox

UI_DIR = Path(__file__).parent / "ui"
SWAGGER_ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png", "favicon-16x16.png")
OWN_ASSETS = ("sandbox.css", "sandbox.js", "docs.js", "dashboard.js", "grade.js")
# Swagger UI sets inline styles; every script is a file of this server.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def swagger_dir() -> Path:
    import openapi_ui_bundles.swagger_ui  # Swagger UI 5 (OpenAPI 3.1), as static files

    return Path(openapi_ui_bundles.swagger_ui.static_path)


def is_page(subpath: str) -> bool:
    """Paths under /_mock that are pages or their assets (served without the admin token)."""
    parts = subpath.strip("/").split("/")
    return parts[0] in ("ui", "docs", "static") and subpath.strip("/") != ""


def serve(sandbox: Sandbox, request: Request, subpath: str) -> Response:
    """A page or asset under /_mock (`is_page`), or the index at `/`."""
    path = subpath.strip("/")
    if request.method not in ("GET", "HEAD"):
        return _text(405, "method not allowed")
    if path in ("", "docs"):
        return _html(index(sandbox))
    if path == "ui":
        return _html(dashboard(sandbox))
    if path.startswith("docs/assets/"):
        return _asset(swagger_dir(), path.removeprefix("docs/assets/"), SWAGGER_ASSETS)
    if path.startswith("static/"):
        return _asset(UI_DIR, path.removeprefix("static/"), OWN_ASSETS)
    if path.startswith("docs/"):
        name = path.removeprefix("docs/")
        if name in sandbox.specs:
            return _html(docs_page(sandbox, name))
    return _text(404, f"no page /_mock/{path}")


def favicon() -> Response:
    return _asset(swagger_dir(), "favicon-32x32.png", SWAGGER_ASSETS)


def _asset(folder: Path, name: str, allowed: tuple[str, ...]) -> Response:
    if name not in allowed:  # a fixed list: no path from the URL ever reaches the file system
        return _text(404, "no such asset")
    media = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return FileResponse(folder / name, media_type=media, headers={"Cache-Control": "max-age=3600"})


def _text(status: int, message: str) -> Response:
    return Response(message + "\n", status_code=status, media_type="text/plain")


def _html(body: str) -> HTMLResponse:
    return HTMLResponse(body, headers=HEADERS)


def _layout(title: str, body: str, head: str = "", scripts: str = "") -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="icon" type="image/png" href="/_mock/docs/assets/favicon-32x32.png">
{head}<link rel="stylesheet" href="/_mock/static/sandbox.css">
</head>
<body>
<header class="bar"><a class="brand" href="/">API sandbox</a>
<nav><a href="/_mock/docs">API docs</a> <a href="/_mock/ui">Dashboard</a></nav></header>
{body}
{scripts}
</body>
</html>
"""


def _scripts(page: str) -> str:
    return f'<script src="/_mock/static/sandbox.js"></script>\n<script src="/_mock/static/{page}"></script>'


def _config(data: dict[str, Any]) -> str:
    """Data for the page's script: JSON in a non-executed script element (`</` cannot end it)."""
    text = json.dumps(data).replace("</", "<\\/")
    return f'<script type="application/json" id="config">{text}</script>'


def _apis(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "title": spec.title,
            "version": spec.version,
            "base_path": spec.base_path,
            "scopes": list(spec.scopes),
            "collections": list(spec.resources),
            "prefixes": spec.token_prefixes,
        }
        for name, spec in sandbox.specs.items()
    ]


def index(sandbox: Sandbox) -> str:
    rows = "".join(
        f"<tr><td><a href='/_mock/docs/{html.escape(a['name'])}'>{html.escape(a['title'])}</a></td>"
        f"<td>{html.escape(a['version'])}</td><td><code>{html.escape(a['base_path'])}</code></td>"
        f"<td><code>{html.escape(a['prefixes']['test'])}</code></td>"
        f"<td><a href='/_mock/specs/{html.escape(a['name'])}'>JSON</a></td></tr>"
        for a in _apis(sandbox)
    )
    body = f"""<main>
<h1>APIs served by this sandbox</h1>
<table class="grid" id="apis"><thead><tr><th>API docs (Swagger UI, "Try it out")</th><th>version</th>
<th>base path</th><th>test token prefix</th><th>spec</th></tr></thead><tbody>{rows}</tbody></table>
<p>Open an API, press <b>Mint a test token and authorize</b>, then <b>Try it out</b> on any operation.
The <a href="/_mock/ui">dashboard</a> shows every request the sandbox answered, and why it refused one.</p>
<p>From a shell: <code>export SANDBOX_URL=<span id="origin"></span></code> then
<code>python -m mock_server token create --api nurosentrix</code>.</p>
</main>"""
    return _layout("API sandbox", body, scripts=_scripts("docs.js"))


def docs_page(sandbox: Sandbox, name: str) -> str:
    spec = sandbox.specs[name]
    api = next(a for a in _apis(sandbox) if a["name"] == name)
    schemes = list(spec.bearer_schemes)
    scopes = "".join(
        f"<label><input type='checkbox' name='scope' value='{v}' checked> {v}</label>"
        for v in map(html.escape, list(spec.scopes))
    )
    body = f"""<section class="helper" id="authorize-helper">
<h1>{html.escape(api["title"])} <small>{html.escape(api["version"])}</small></h1>
<p>A test token for "Try it out": minted by this sandbox's control API, then entered in Swagger UI's
<b>Authorize</b> dialog for you.</p>
<form id="mint-form">
<fieldset><legend>scopes</legend>{scopes or "<i>this API has no scopes</i>"}</fieldset>
<label>mode <select name="mode"><option>test</option><option>live</option></select></label>
<label>account <input name="account" value="default" size="12"></label>
<button type="submit" id="mint">Mint a test token and authorize</button>
</form>
<p id="minted" class="note" hidden></p>
</section>
<div id="swagger-ui"></div>
{_config({"api": name, "specUrl": f"/_mock/specs/{name}", "schemes": schemes})}"""
    head = '<link rel="stylesheet" href="/_mock/docs/assets/swagger-ui.css">\n'
    scripts = '<script src="/_mock/docs/assets/swagger-ui-bundle.js"></script>\n' + _scripts("docs.js")
    return _layout(f"{api['title']} — sandbox docs", body, head, scripts)


def dashboard(sandbox: Sandbox) -> str:
    """One page, one section per panel, each reachable from the bar at the top (`#<id>` anchors):
    a new panel is one more entry in `dashboard_sections`."""
    options = "".join(f"<option>{html.escape(a['name'])}</option>" for a in _apis(sandbox))
    sections = dashboard_sections(options)
    nav = "".join(f'<a href="#{sid}">{html.escape(title)}</a>' for sid, title, _ in sections)
    panels = "\n".join(
        f'<section id="{sid}" class="panel">\n<h2>{html.escape(title)}{inner}</section>'
        for sid, title, inner in sections
    )
    body = f"""<nav class="sections" id="sections">{nav}</nav>
<main class="dash">
{panels}
</main>
{_config({"apis": _apis(sandbox)})}"""
    scripts = _scripts("dashboard.js") + '\n<script src="/_mock/static/grade.js"></script>'
    return _layout("Sandbox dashboard", body, scripts=scripts)


def dashboard_sections(options: str) -> list[tuple[str, str, str]]:
    """(anchor id, title, the section's HTML after its title) for each panel, in page order."""
    return [
        ("requests-panel", "Requests", _requests_panel(options)),
        ("tokens-panel", "Tokens", _tokens_panel(options)),
        ("grade-panel", "Client grade", _grade_panel(options)),
        ("resources-panel", "Resources", _resources_panel(options)),
        ("clock-panel", "Clock", _clock_panel()),
        ("reset-panel", "Reset", _reset_panel(options)),
    ]


def _requests_panel(options: str) -> str:
    return f""" <small id="live">live</small></h2>
<form id="filters" class="row">
<label>API <select name="api"><option value="">all</option>{options}</select></label>
<label>status <input name="status" placeholder="401 or 4xx" size="8"></label>
<label>token <input name="token" placeholder="masked or tok_ id" size="22"></label>
<label><input type="checkbox" name="paused"> pause</label>
</form>
<div class="pager row"><button type="button" id="newer" disabled>&larr; newer</button>
<span id="page-info"></span><button type="button" id="older" disabled>older &rarr;</button></div>
<table class="grid" id="requests"><thead><tr><th>at</th><th>API</th><th>method</th><th>path</th>
<th>status</th><th>ms</th><th>request id</th><th>token</th><th>why</th></tr></thead><tbody></tbody></table>
<div id="exchange" class="exchange" hidden><h3 id="exchange-title"></h3>
<div class="cols"><div><h4>request body</h4><pre id="request-body"></pre></div>
<div><h4>response body</h4><pre id="response-body"></pre></div></div></div>
"""


def _tokens_panel(options: str) -> str:
    return f"""</h2>
<form id="mint-form" class="row">
<label>API <select name="api">{options}</select></label>
<label>scopes <input name="scopes" placeholder="all (or a,b)" size="24"></label>
<label>mode <select name="mode"><option>test</option><option>live</option></select></label>
<label>account <input name="account" value="default" size="10"></label>
<button type="submit" id="mint">Mint</button>
</form>
<p id="minted" class="note" hidden></p>
<table class="grid" id="tokens"><thead><tr><th>id</th><th>API</th><th>masked</th><th>scopes</th>
<th>mode</th><th>account</th><th>name</th><th>created</th><th></th></tr></thead><tbody></tbody></table>
"""


def _grade_panel(options: str) -> str:
    return f""" <small>the rules an app keeps or breaks, from the requests it sent</small></h2>
<form id="grade-form" class="row">
<label>API <select name="api">{options}</select></label>
<label>token <input name="token" placeholder="tok_ id, masked, or empty: every caller" size="26"></label>
<button type="submit" id="grade">Grade</button>
</form>
<p id="grade-summary" class="note" hidden></p>
<table class="grid" id="grades"><thead><tr><th>rule</th><th>verdict</th><th>what was seen</th>
<th>requests</th><th>basis</th></tr></thead><tbody></tbody></table>
"""


def _resources_panel(options: str) -> str:
    return f"""</h2>
<form id="browse" class="row">
<label>API <select name="api">{options}</select></label>
<label>owner <select name="owner"></select></label>
</form>
<div class="cols"><ul id="collections"></ul><table class="grid" id="records"><tbody></tbody></table>
<pre id="record"></pre></div>
"""


def _clock_panel() -> str:
    return """ <small id="now"></small></h2>
<form id="advance-form" class="row">
<label>advance <input name="seconds" type="number" min="0" step="any" value="5" size="6"> s</label>
<button type="submit" id="advance">Advance</button>
</form>
<table class="grid" id="settling"><thead><tr><th>API</th><th>collection</th><th>id</th><th>account</th>
<th>status</th><th>next</th><th>in (s)</th></tr></thead><tbody></tbody></table>
"""


def _reset_panel(options: str) -> str:
    return f"""</h2>
<form id="reset-form" class="row">
<label>API <select name="api"><option value="">all</option>{options}</select></label>
<label><input type="checkbox" name="tokens"> tokens and users too</label>
<label><input type="checkbox" name="requests"> the request log too</label>
<button type="submit" id="reset">Reset</button>
</form>
<p id="reset-confirm" class="note confirm" hidden><span></span>
<button type="button" id="reset-yes">Yes, reset</button>
<button type="button" id="reset-no">Cancel</button></p>
<p id="reset-result" class="note" hidden></p>
"""
