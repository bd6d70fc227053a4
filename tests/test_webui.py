"""The pages (`/`, `/_mock/docs[/<api>]`, `/_mock/ui`) and their assets, without a browser: served
without the admin token (they hold no data) while every route they read needs it; assets only
from a fixed list; a content security policy allowing no script but this server's files."""

from __future__ import annotations

import re

from mock_server.app import SandboxApp
from tests.conftest import Harness
from tests.sandbox_client import SyncASGIClient

PAGES = ["/", "/_mock/docs", "/_mock/docs/nurosentrix", "/_mock/docs/nexos", "/_mock/ui"]


def test_pages_and_assets(harness: Harness) -> None:
    c = harness.client()
    for page in PAGES:
        r = c.get(page)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), page
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'self'" in csp
        assert "http://" not in r.text and "https://" not in r.text, f"{page}: nothing from elsewhere"
        for src in re.findall(r'(?:src|href)="(/[^"]+)"', r.text):
            assert c.get(src).status_code == 200, (page, src)
    docs = c.get("/_mock/docs/nurosentrix").text
    assert "/_mock/docs/assets/swagger-ui-bundle.js" in docs and '"schemes": ["bearerAuth"]' in docs
    assert docs.count("name='scope'") == len(harness.sandbox.specs["nurosentrix"].scopes)
    index = c.get("/").text
    assert all(f"/_mock/docs/{api}" in index for api in harness.sandbox.specs)
    for missing in (
        "/_mock/docs/nope",
        "/_mock/docs/assets/index.html",
        "/_mock/static/../cli.py",
        "/_mock/static/%2e%2e/cli.py",
        "/_mock/static/control.py",
    ):
        assert c.get(missing).status_code == 404, missing
    assert c.post("/_mock/ui").status_code == 405
    assert c.get("/favicon.ico").headers["content-type"] == "image/png"
    moved = c.get("/docs")
    assert moved.status_code == 307 and moved.headers["location"] == "/_mock/docs"


def test_the_pages_are_open_but_their_data_is_not(harness: Harness) -> None:
    guarded = SyncASGIClient(SandboxApp(harness.sandbox, admin_token="adm"))
    try:
        for page in [*PAGES, "/_mock/static/dashboard.js", "/_mock/docs/assets/swagger-ui.css"]:
            assert guarded.get(page).status_code == 200, page
        for data in ("/_mock/requests", "/_mock/tokens", "/_mock/specs/nurosentrix", "/_mock/settling"):
            assert guarded.get(data).status_code == 401, data
            assert guarded.get(data, headers={"Authorization": "Bearer adm"}).status_code == 200, data
    finally:
        guarded.close()
