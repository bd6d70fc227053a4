"""In Chromium: a page on another origin cannot reset, mint or read through the control API,
even with `--cors '*'` and through DNS rebinding (`--host-resolver-rules` maps the attacker's
name to 127.0.0.1, as a rebound DNS answer would). Before: its `text/plain` POST reset the
sandbox (token 200 → 401) and, under `--cors '*'`, it minted a token and read it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import CHROMEDRIVER, CHROMIUM, CHROMIUM_FLAGS, _missing
from tests.proxy_helpers import serve
from tests.robustness.support import ServerProcess

N = "/nurosentrix/api/v1"

ATTACK = """
const [sandbox, done] = arguments;
const out = {};
async function attempt(name, url, init) {
  try {
    const r = await fetch(url, init);
    out[name] = {status: r.status, type: r.type, body: r.type === "opaque" ? "" : await r.text()};
  } catch (e) { out[name] = {error: String(e)}; }
}
(async () => {
  const plain = {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"},
                 body: JSON.stringify({tokens: true})};
  await attempt("reset_text_plain", sandbox + "/_mock/reset", plain);
  const form = new URLSearchParams(); form.set("tokens", "true");
  await attempt("reset_form", sandbox + "/_mock/reset", {method: "POST", mode: "no-cors", body: form});
  await attempt("reset_empty", sandbox + "/_mock/reset", {method: "POST", mode: "no-cors"});
  const json = {"Content-Type": "application/json"};
  await attempt("mint_json", sandbox + "/_mock/tokens",
                {method: "POST", headers: json, body: JSON.stringify({api: "nexos", name: "stolen"})});
  await attempt("read_tokens", sandbox + "/_mock/tokens", {});
  await attempt("rebound_read", "/_mock/tokens", {});
  await attempt("rebound_reset", "/_mock/reset",
                {method: "POST", headers: json, body: JSON.stringify({tokens: true})});
  done(out);
})();
"""


async def _page(scope: Any, receive: Any, send: Any) -> None:
    """The other site: an empty page."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]})
    await send({"type": "http.response.body", "body": b"<!doctype html><title>another site</title>"})


@pytest.fixture(scope="module")
def rebinding_browser() -> Iterator[Any]:
    missing = _missing()
    if missing is not None:
        pytest.skip(f"BROWSER TESTS NOT RUN: {missing} is absent (`make system-tools`)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    # the attacker's names resolve to this machine, as after a DNS rebinding
    options.add_argument("--host-resolver-rules=MAP rebound.test 127.0.0.1")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def test_a_page_on_another_origin_cannot_reset_mint_or_read(rebinding_browser: Any, tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path, "--memory", "--cors", "*")
    proc.start()
    try:
        base = proc.base
        token = httpx.post(f"{base}/_mock/tokens", json={"api": "nurosentrix"}).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{base}{N}/servers", headers=auth).status_code == 200
        minted = len(httpx.get(f"{base}/_mock/tokens").json()["tokens"])
        # a page of another site on this machine (another port: another origin), calling the sandbox
        with serve(_page) as other:
            rebinding_browser.get(other.replace("127.0.0.1", "localhost") + "/")
            cross = rebinding_browser.execute_async_script(ATTACK, base)
            # the API itself stays open to that page, as --cors '*' says
            api = rebinding_browser.execute_async_script(
                "const [u, t, done] = arguments; fetch(u, {headers: {Authorization: 'Bearer ' + t}})"
                ".then(r => done(r.status), e => done(String(e)));",
                f"{base}{N}/servers",
                token,
            )
        assert api == 200, api
        # a page whose name was rebound to the sandbox: its requests are "same-origin" to the browser
        rebinding_browser.get(f"http://rebound.test:{proc.port}/")
        rebound = rebinding_browser.execute_async_script(ATTACK, f"http://rebound.test:{proc.port}")
        time.sleep(0.2)
        # nothing was reset, minted or read
        assert httpx.get(f"{base}{N}/servers", headers=auth).status_code == 200, (cross, rebound)
        assert len(httpx.get(f"{base}/_mock/tokens").json()["tokens"]) == minted, (cross, rebound)
        for name in ("mint_json", "read_tokens"):
            assert cross[name].get("status") in (None, 403), (name, cross[name])  # None: CORS blocked it
            assert "nxs_" not in cross[name].get("body", "") and "tokens" not in cross[name].get("body", "")
        for name in ("rebound_read", "rebound_reset", "read_tokens", "mint_json"):
            assert rebound[name].get("status") == 403, (name, rebound[name])
            assert "nsx_" not in rebound[name]["body"]
    finally:
        proc.stop()
