"""Browser tests: the system Chromium (Debian's `chromium`), driven by Selenium through the
system `chromedriver`: no browser download. `make test` and `.ci/run` install both with apt-get
when absent (`make browsers`); without them these tests skip, saying so loudly.

One browser per module; screenshots go to `artifacts/browser/` (gitignored)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live import ROOT

ARTIFACTS = ROOT / "artifacts" / "browser"
CHROMIUM = os.environ.get("SANDBOX_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("SANDBOX_CHROMEDRIVER", "/usr/bin/chromedriver")
# What Chromium needs on this machine's closed network (no sandbox: tests run as root).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,1000",
)


def _missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (Path(path).exists() or shutil.which(path)):
            return path
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = _missing()
    if missing is not None:
        reason = (
            f"BROWSER TESTS NOT RUN: {missing} is absent. Install Debian's chromium and chromium-driver "
            "(`make system-tools`, as root: apt-get install chromium chromium-driver)"
        )
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    started = time.monotonic()
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    driver.started_in = time.monotonic() - started  # type: ignore[attr-defined]
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def shot(browser: Any, request: pytest.FixtureRequest) -> Callable[[str], Path]:
    """Save a screenshot as `artifacts/browser/<test>-<label>.png`."""

    def take(label: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{request.node.name}-{label}.png"
        browser.save_screenshot(str(path))
        return path

    return take


def console_errors(driver: Any) -> list[str]:
    """The browser console's errors (and uncaught exceptions) since the last call."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
