"""The dashboard at scale, in Chromium: every section reachable from the bar at the top, the
request log a page at a time (older/newer), each request's bodies on a click with secrets masked,
and Swagger UI's "Try it out" sending a fresh X-Request-ID each time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import console_errors
from tests.browser.test_dashboard import _click
from tests.live import live_sandbox

SERVER = {"name": "web-1", "provider": "digitalocean", "region": "nyc1", "size": "s-1vcpu-1gb"}


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with live_sandbox("--memory", "--async-delay", "0") as url:
        yield url


def _in_view(browser: Any, element_id: str) -> bool:
    top = browser.execute_script(
        f"return document.getElementById('{element_id}').getBoundingClientRect().top"
    )
    return bool(0 <= top < browser.execute_script("return window.innerHeight"))


def test_every_section_is_one_click_away_and_the_log_pages(
    browser: Any, base: str, shot: Callable[[str], Path]
) -> None:
    token = httpx.post(f"{base}/_mock/tokens", json={"api": "nurosentrix"}).json()["token"]
    api = httpx.Client(base_url=f"{base}/nurosentrix/api/v1", headers={"Authorization": f"Bearer {token}"})
    for _ in range(60):
        api.get("/servers")
    wait = WebDriverWait(browser, 20)
    browser.set_window_size(1280, 800)
    browser.get(base + "/_mock/ui")
    wait.until(lambda d: "of 60" in d.find_element(By.ID, "page-info").text)
    assert browser.find_element(By.ID, "page-info").text.startswith("1–50 of 60")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#requests tbody tr")) == 50
    links = browser.find_elements(By.CSS_SELECTOR, "#sections a")
    assert [a.text for a in links] == ["Requests", "Tokens", "Client grade", "Resources", "Clock", "Reset"]
    for link in links[::-1]:  # each section from the bar, the sticky bar still there
        target = str(link.get_attribute("href")).rsplit("#", 1)[1]
        link.click()
        wait.until(lambda d, t=target: _in_view(d, t))
        assert browser.find_element(By.ID, "sections").is_displayed()
    shot("reset-from-the-bar")
    browser.find_element(By.CSS_SELECTOR, "#sections a[href='#requests-panel']").click()
    browser.find_element(By.ID, "older").click()
    wait.until(lambda d: d.find_element(By.ID, "page-info").text.startswith("51–60 of 60"))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#requests tbody tr")) == 10
    assert browser.find_element(By.ID, "older").get_attribute("disabled") is not None
    browser.find_element(By.ID, "newer").click()
    wait.until(lambda d: d.find_element(By.ID, "page-info").text.startswith("1–50 of 60"))
    assert console_errors(browser) == []


def test_a_logged_request_shows_its_bodies_with_secrets_masked(
    browser: Any, base: str, shot: Callable[[str], Path]
) -> None:
    token = httpx.post(f"{base}/_mock/tokens", json={"api": "nurosentrix"}).json()["token"]
    headers = {"Authorization": f"Bearer {token}", "X-Request-ID": "req_with_a_secret"}
    sent = {**SERVER, "api_key": "sk_live_do_not_show_me"}
    r = httpx.post(f"{base}/nurosentrix/api/v1/servers", json=sent, headers=headers)
    assert r.status_code == 400
    wait = WebDriverWait(browser, 20)
    browser.get(base + "/_mock/ui")
    _click(browser, "requests", "", "req_with_a_secret")
    shown = wait.until(ec.visibility_of_element_located((By.ID, "request-body"))).text
    assert '"api_key": "•••"' in shown and "do_not_show_me" not in shown, shown
    assert '"region": "nyc1"' in shown
    answer = browser.find_element(By.ID, "response-body").text
    assert "VALIDATION_ERROR" in answer and "api_key" in answer
    assert "POST /nurosentrix/api/v1/servers → 400" in browser.find_element(By.ID, "exchange-title").text
    shot("bodies")
    assert "do_not_show_me" not in browser.page_source
    assert console_errors(browser) == []


def test_try_it_out_sends_a_fresh_request_id_each_time(browser: Any, base: str) -> None:
    wait = WebDriverWait(browser, 30)
    browser.get(base + "/_mock/docs/nurosentrix")
    block = wait.until(
        ec.presence_of_element_located((By.CSS_SELECTOR, ".opblock-get [data-path='/servers']"))
    )
    browser.find_element(By.ID, "mint").click()
    wait.until(ec.visibility_of_element_located((By.ID, "minted-token")))
    block.click()
    op = block.find_element(By.XPATH, "ancestor::div[contains(@class,'opblock-get')]")
    wait.until(lambda d: op.find_element(By.CSS_SELECTOR, ".try-out__btn")).click()
    field = wait.until(lambda d: op.find_element(By.CSS_SELECTOR, "tr[data-param-name='X-Request-ID'] input"))
    assert field.get_attribute("value") == "req_7f3c9a12"  # the spec's example, as Swagger UI fills it
    for _ in range(2):
        wait.until(lambda d: op.find_element(By.CSS_SELECTOR, "button.execute")).click()
        wait.until(lambda d: op.find_elements(By.CSS_SELECTOR, ".live-responses-table .response-col_status"))
        op.find_element(By.CSS_SELECTOR, "button.btn-clear").click()
    log = httpx.get(f"{base}/_mock/requests", params={"path": "/nurosentrix/api/v1/servers"}).json()
    ids = [r["request_id"] for r in log["requests"] if r["method"] == "GET"][-2:]
    assert len(set(ids)) == 2 and "req_7f3c9a12" not in ids, ids
    assert console_errors(browser) == []
