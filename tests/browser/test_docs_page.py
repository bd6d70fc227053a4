"""The docs pages in a real browser: the index, then Swagger UI for Nurosentrix with its assets
from the Python package; "Mint a test token and authorize", then "Try it out" on `GET /servers`
answers 200 from this sandbox, and the request log saw it with the token minted."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.apis import APIS
from tests.browser.conftest import console_errors
from tests.live import live_sandbox


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with live_sandbox("--memory", "--async-delay", "0") as url:
        yield url


def test_index_lists_every_api(browser: Any, base: str, shot: Callable[[str], Path]) -> None:
    started = time.monotonic()
    browser.get(base + "/")
    links = WebDriverWait(browser, 20).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#apis a[href^='/_mock/docs/']")
    )
    names = sorted(str(a.get_attribute("href")).rsplit("/", 1)[1] for a in links)
    assert names == sorted(APIS)
    assert browser.find_element(By.ID, "origin").text == base
    shot("index")
    assert console_errors(browser) == []
    print(f"browser start {browser.started_in:.2f} s, index {time.monotonic() - started:.2f} s")


def test_authorize_then_try_it_out(browser: Any, base: str, shot: Callable[[str], Path]) -> None:
    started = time.monotonic()
    wait = WebDriverWait(browser, 30)
    browser.get(base + "/_mock/docs/nurosentrix")
    block = wait.until(
        ec.presence_of_element_located((By.CSS_SELECTOR, ".opblock-get [data-path='/servers']"))
    )
    # the spec's servers entry points at this sandbox
    servers = browser.find_element(By.CSS_SELECTOR, ".servers select").text
    assert f"{base}/nurosentrix/api/v1" in servers
    # only servers:read: the minted token is the one Swagger UI sends
    for box in browser.find_elements(By.CSS_SELECTOR, "input[name=scope]"):
        if box.get_attribute("value") != "servers:read":
            box.click()
    browser.find_element(By.ID, "mint").click()
    token = wait.until(ec.visibility_of_element_located((By.ID, "minted-token"))).text
    assert token.startswith("nsx_test_")
    assert "servers:read)." in browser.find_element(By.ID, "minted").text
    assert browser.find_elements(By.CSS_SELECTOR, ".auth-wrapper .authorize.locked"), "Authorize shows locked"

    block.click()
    op = block.find_element(By.XPATH, "ancestor::div[contains(@class,'opblock-get')]")
    wait.until(lambda d: op.find_element(By.CSS_SELECTOR, ".try-out__btn")).click()
    wait.until(lambda d: op.find_element(By.CSS_SELECTOR, "button.execute")).click()
    status = wait.until(
        lambda d: op.find_element(By.CSS_SELECTOR, ".live-responses-table tbody .response-col_status")
    )
    assert status.text.strip().startswith("200"), status.text
    body = op.find_element(By.CSS_SELECTOR, ".live-responses-table .microlight").text
    assert '"success": true' in body
    browser.execute_script("arguments[0].scrollIntoView()", status)
    shot("try-it-out")

    log = httpx.get(f"{base}/_mock/requests", params={"api": "nurosentrix"}).json()["requests"]
    assert [(r["method"], r["path"], r["status"]) for r in log][-1:] == [
        ("GET", "/nurosentrix/api/v1/servers", 200)
    ]
    assert log[-1]["token"] is not None and log[-1]["token"].startswith(token[:9])
    assert console_errors(browser) == []
    print(f"authorize + try it out {time.monotonic() - started:.2f} s")


def test_assets_come_from_this_sandbox(base: str) -> None:
    page = httpx.get(f"{base}/_mock/docs/nurosentrix").text
    assert "https://" not in page and "cdn" not in page.lower()
    for asset in ("/_mock/docs/assets/swagger-ui-bundle.js", "/_mock/docs/assets/swagger-ui.css"):
        assert asset in page
        assert httpx.get(base + asset).status_code == 200
