"""The conformance suite's HTML report in a real browser: a real run against a backend with a
planted defect (the wrong envelope), opened from disk. The page loads without console errors,
shows its verdict in colour and its metadata, every summary link jumps to its violation, the JSON
is pretty-printed and the curl lines are whole and copyable, with `$CONFORMANCE_*` variables."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import console_errors
from tests.conformance.backends import Defective, make_sandbox, serve
from tests.conformance.conftest import run_suite


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    tmp = tmp_path_factory.mktemp("report")
    with serve(Defective(make_sandbox(rate_window=1.0), "wrong-envelope")) as url:
        out = run_suite(
            tmp, "--api", "cloudnexus", "--sandbox", url, "--checks", "envelope,lifecycle",
            "--phases", "examples", "--max-examples", "2", "--report", str(tmp / "report.html"),
        )  # fmt: skip
    assert out.code == 1, out
    yield tmp / "report.html"


def test_the_report_in_a_browser(browser: Any, report: Path, shot: Callable[[str], Path]) -> None:
    started = time.monotonic()
    browser.get(report.as_uri())
    badge = browser.find_element(By.ID, "verdict")
    assert badge.text == "FAIL"
    assert badge.value_of_css_property("background-color") == "rgba(207, 34, 46, 1)"  # red
    meta = browser.find_element(By.CSS_SELECTOR, "dl.meta").text
    for key in ("date", "tool", "spec", "backend", "profile", "seed", "duration", "requests"):
        assert f"{key}\n" in meta, key
    assert "CloudNexus API 1.4.2" in meta
    shot("top")
    links = browser.find_elements(By.CSS_SELECTOR, "#summary-table a.to-violation")
    assert len(links) >= 3
    targets = [str(a.get_attribute("href")).rsplit("#", 1)[1] for a in links]
    for target in targets:  # every summary link lands on its violation
        link = browser.find_element(By.CSS_SELECTOR, f"#summary-table a[href='#{target}']")
        browser.execute_script("arguments[0].scrollIntoView(); window.scrollBy(0, -100);", link)
        link.click()
        assert browser.execute_script("return location.hash") == f"#{target}"
        top = browser.execute_script(
            f"return document.getElementById('{target}').getBoundingClientRect().top"
        )
        height = browser.execute_script("return window.innerHeight")
        assert -2 <= top < height - 40, (target, top)  # scrolled to it (the last ones: into view)
    shot("violation")
    assert browser.find_elements(By.CSS_SELECTOR, ".violation:target")
    bodies = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "pre.json")]
    assert any(b.startswith("{\n  ") for b in bodies)  # pretty-printed JSON
    curls = browser.find_elements(By.CSS_SELECTOR, ".curl pre")
    assert curls and all(c.text.startswith("curl ") for c in curls)
    assert any("Bearer $CONFORMANCE_TOKEN" in c.text for c in curls)
    assert all(c.text.rstrip().endswith(("'", '"')) or "--data" not in c.text for c in curls)  # not cut
    button = browser.find_element(By.CSS_SELECTOR, "button.copy")
    button.click()  # the clipboard answers asynchronously: wait for the button to say what happened
    WebDriverWait(browser, 5).until(lambda _: button.text in ("copied", "selected: press Ctrl+C"))
    assert console_errors(browser) == []
    print(f"browser start {browser.started_in:.2f} s, report checks {time.monotonic() - started:.2f} s")
