"""The dashboard (`/_mock/ui`) in a real browser, fed by the control API only: mint a token,
see a request made with it appear with its reason, revoke it after confirming (the next use says
"revoked"), browse a record, advance the clock (what was settling settles), reset after confirming.
No console errors."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import console_errors
from tests.live import live_sandbox

SERVER = {"name": "web-1", "provider": "digitalocean", "region": "nyc1", "size": "s-1vcpu-1gb"}


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with live_sandbox("--memory", "--async-delay", "5") as url:  # lifecycles wait for the clock
        yield url


def _row_with(browser: Any, table: str, *texts: str) -> Any:
    """The first row of `table` whose text holds every one of `texts` (or False). The page
    re-renders a table when its data changes: a row seen going stale is looked for again."""
    try:
        for row in browser.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr"):
            text = row.text
            if all(t in text for t in texts):
                return row
    except StaleElementReferenceException:
        pass
    return False


def _text(browser: Any, table: str, *texts: str) -> str | bool:
    try:
        row = _row_with(browser, table, *texts)
        return str(row.text) if row else False
    except StaleElementReferenceException:
        return False


def _click_collection(browser: Any, label: str) -> bool:
    try:
        for item in browser.find_elements(By.CSS_SELECTOR, "#collections li"):
            if item.text == label:
                item.click()
                return True
    except StaleElementReferenceException:
        pass
    return False


def _click(browser: Any, table: str, css: str, *texts: str) -> None:
    def attempt(d: Any) -> bool:
        row = _row_with(d, table, *texts)
        try:
            (row.find_element(By.CSS_SELECTOR, css) if css else row).click()
        except (StaleElementReferenceException, AttributeError):
            return False
        return True

    WebDriverWait(browser, 20).until(attempt)


def test_mint_use_revoke_advance_reset(browser: Any, base: str, shot: Callable[[str], Path]) -> None:
    started = time.monotonic()
    wait = WebDriverWait(browser, 20)
    browser.get(base + "/_mock/ui")
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#tokens tbody tr")))  # the banner's

    form = browser.find_element(By.ID, "mint-form")
    Select(form.find_element(By.NAME, "api")).select_by_visible_text("nurosentrix")
    form.find_element(By.NAME, "scopes").send_keys("servers:read")
    account = form.find_element(By.NAME, "account")
    account.clear()
    account.send_keys("acme")
    browser.find_element(By.ID, "mint").click()
    token = wait.until(ec.visibility_of_element_located((By.ID, "minted-token"))).text
    assert token.startswith("nsx_test_")
    token_id = str(wait.until(lambda d: _text(d, "tokens", "servers:read", "acme"))).split()[0]
    assert token_id.startswith("tok_")

    api = httpx.Client(base_url=f"{base}/nurosentrix/api/v1", headers={"Authorization": f"Bearer {token}"})
    assert api.get("/servers").status_code == 200
    assert api.post("/servers", json=SERVER).status_code == 403
    row = wait.until(lambda d: _text(d, "requests", "POST", "403"))
    assert "the token lacks servers:write (it has: servers:read)" in row
    assert f"{token[:9]}" in row and token not in row
    shot("request-with-reason")

    _click(browser, "tokens", "button.revoke", token_id)  # asks first: "Confirm revoke"
    wait.until(lambda d: "Confirm revoke" in (_text(d, "tokens", token_id) or ""))
    assert api.get("/servers").status_code == 200  # not revoked yet
    _click(browser, "tokens", "button.revoke", token_id)
    wait.until(lambda d: not _row_with(d, "tokens", token_id))
    assert api.get("/servers").status_code == 401
    row = wait.until(lambda d: _text(d, "requests", "GET", "401"))
    assert f"{token_id} (" in row and "was revoked at" in row

    # the filter by token keeps only its requests
    filters = browser.find_element(By.ID, "filters")
    filters.find_element(By.NAME, "token").send_keys(token_id)  # 200, 403, 200, 401
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#requests tbody tr")) == 4)
    shot("filtered-by-token")

    # a server still provisioning, settled by advancing the clock
    full = httpx.post(f"{base}/_mock/tokens", json={"api": "nurosentrix", "account": "acme"}).json()["token"]
    created = httpx.post(
        f"{base}/nurosentrix/api/v1/servers", json=SERVER, headers={"Authorization": f"Bearer {full}"}
    ).json()["data"]
    wait.until(lambda d: _text(d, "tokens", "acme", "backups:read"))  # minted elsewhere: listed too
    wait.until(lambda d: _row_with(d, "settling", created["id"], "provisioning", "active"))
    shot("settling")
    browser.find_element(By.ID, "advance").click()  # 5 s by default
    wait.until(lambda d: not _row_with(d, "settling", created["id"]))

    browse = browser.find_element(By.ID, "browse")
    Select(browse.find_element(By.NAME, "api")).select_by_visible_text("nurosentrix")
    wait.until(lambda d: _click_collection(d, "servers (1)"))
    _click(browser, "records", "", created["id"])
    record = wait.until(lambda d: d.find_element(By.ID, "record").text or False)
    assert f'"id": "{created["id"]}"' in record and '"status": "active"' in record
    shot("record")

    reset = browser.find_element(By.ID, "reset-form")
    reset.find_element(By.NAME, "requests").click()
    browser.find_element(By.ID, "reset").click()  # asks first, naming what will be lost
    question = wait.until(ec.visibility_of_element_located((By.ID, "reset-confirm"))).text
    assert "every record of every API" in question and "the request log" in question
    browser.find_element(By.ID, "reset-no").click()
    assert httpx.get(f"{base}/_mock/resources").json()["apis"]["nurosentrix"]["collections"]["servers"] == 1
    browser.find_element(By.ID, "reset").click()
    wait.until(ec.visibility_of_element_located((By.ID, "reset-yes"))).click()
    wait.until(ec.visibility_of_element_located((By.ID, "reset-result")))
    assert httpx.get(f"{base}/_mock/resources").json()["apis"]["nurosentrix"]["collections"]["servers"] == 0
    assert console_errors(browser) == []
    print(f"dashboard flow {time.monotonic() - started:.2f} s")


def test_paths_are_shown_as_text_never_markup(browser: Any, base: str) -> None:
    """A request path is whatever a client sent: the dashboard never renders it as HTML."""
    httpx.get(f"{base}/nurosentrix/api/v1/<img src=x onerror=alert(1)>")
    browser.get(base + "/_mock/ui")
    row = WebDriverWait(browser, 20).until(lambda d: _row_with(d, "requests", "onerror"))
    assert row.find_elements(By.TAG_NAME, "img") == []
    assert console_errors(browser) == []


def test_admin_token_guards_the_data_and_the_page_asks_for_it(
    browser: Any, shot: Callable[[str], Path]
) -> None:
    with live_sandbox("--memory", "--admin-token", "adm-s3cret", health_token="adm-s3cret") as url:
        browser.get(url + "/_mock/ui")
        wait = WebDriverWait(browser, 20)
        field = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#admin-login input")))
        assert browser.find_elements(By.CSS_SELECTOR, "#tokens tbody tr") == []  # no data without it
        shot("asks-for-admin-token")
        assert browser.find_elements(By.ID, "admin-refused") == []  # nothing was refused yet
        field.send_keys("not-the-token")
        browser.find_element(By.CSS_SELECTOR, "#admin-login button").click()
        refused = wait.until(ec.visibility_of_element_located((By.ID, "admin-refused"))).text
        assert "refused that admin token" in refused and "$SANDBOX_ADMIN_TOKEN" in refused
        shot("wrong-admin-token")
        field = browser.find_element(By.CSS_SELECTOR, "#admin-login input")
        field.send_keys("adm-s3cret")
        browser.find_element(By.CSS_SELECTOR, "#admin-login button").click()
        wait.until(lambda d: _text(d, "tokens", "startup", "nurosentrix"))
        errors = console_errors(browser)
        # the browser logs the control API's first 401 answers; nothing else
        assert errors and all("401 (Unauthorized)" in e for e in errors), errors
