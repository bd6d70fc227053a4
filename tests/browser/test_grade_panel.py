"""The dashboard's client grade panel (`/_mock/ui`, `ui/grade.js`) in a real browser: a token's
"Grade" button shows each rule's verdict for what that token sent, failed rules first, with the
request ids that show it; a rule never exercised is not praised. No console errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import console_errors
from tests.live import live_sandbox


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with live_sandbox("--memory") as url:
        yield url


def _grade_button(browser: Any, token_id: str) -> Any:
    try:
        row = browser.find_element(By.ID, f"token-{token_id}")
        return row.find_element(By.CSS_SELECTOR, "button.grade")
    except Exception:  # not rendered yet, or re-rendered under us
        return False


def _verdicts(browser: Any) -> dict[str, tuple[str, str]] | bool:
    try:
        rows = browser.find_elements(By.CSS_SELECTOR, "#grades tbody tr")
        out = {}
        for row in rows:
            cells = row.find_elements(By.TAG_NAME, "td")
            out[cells[0].text] = (cells[1].text, cells[3].text)
        return out or False
    except StaleElementReferenceException:
        return False


def test_a_tokens_grade_shows_its_broken_rules_with_their_requests(
    browser: Any, base: str, shot: Callable[[str], Path]
) -> None:
    wait = WebDriverWait(browser, 20)
    minted = httpx.post(f"{base}/_mock/tokens", json={"api": "nurosentrix", "name": "app"}).json()
    token, token_id = minted["token"], minted["id"]
    api = httpx.Client(base_url=f"{base}/nurosentrix/api/v1", headers={"Authorization": f"Bearer {token}"})
    assert api.get("/servers").status_code == 200
    stray = api.get("/stats")
    assert stray.status_code == 404

    browser.get(base + "/_mock/ui")
    wait.until(lambda d: _grade_button(d, token_id)).click()
    verdicts = wait.until(_verdicts)
    assert verdicts["documented-operations"] == ("fail", stray.headers["X-Request-ID"])
    assert verdicts["least-privilege"][0] == "fail"  # every scope minted, one used
    assert verdicts["scopes-sufficient"][0] == "pass"
    assert verdicts["retry-after"][0] == "not exercised"
    first = browser.find_elements(By.CSS_SELECTOR, "#grades tbody tr td.verdict")[0].text
    assert first == "fail"  # failed rules first
    summary = browser.find_element(By.ID, "grade-summary").text
    assert f"nurosentrix: 2 request(s) of {token_id}" in summary and "2 rule(s) broken" in summary
    shot("grade")
    assert console_errors(browser) == []


def test_an_unknown_api_is_said_not_thrown(browser: Any, base: str) -> None:
    browser.get(base + "/_mock/ui")
    form = browser.find_element(By.ID, "grade-form")
    browser.execute_script("arguments[0].api.add(new Option('nope', 'nope', true, true))", form)
    browser.find_element(By.ID, "grade").click()
    text = WebDriverWait(browser, 20).until(lambda d: d.find_element(By.ID, "grade-summary").text or False)
    assert text.startswith("Could not grade: api must be one of")
