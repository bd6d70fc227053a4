"""The command line against a live sandbox: tokens given by hand, missing tokens skipped loudly,
a rejected token is a usage error, and the reports are written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conformance.conftest import Outcome


def _mint(url: str, api: str, **body: object) -> str:
    r = httpx.post(f"{url}/_mock/tokens", json={"api": api, **body})
    r.raise_for_status()
    return str(r.json()["token"])


def test_missing_tokens_are_skipped_loudly_and_reports_written(
    broken: Callable[..., str], suite: Callable[..., Outcome], tmp_path: Path
) -> None:
    url = broken(None)
    token = _mint(url, "cloudnexus", account="by-hand")
    report = tmp_path / "report.html"
    out = suite(
        "--api", "cloudnexus", "--base-url", f"{url}/cloudnexus/v1", "--token", token,
        "--phases", "none", "--checks", "auth,scopes,tenancy", "--report", str(report),
    )  # fmt: skip
    assert out.code == 0, out
    assert {"scopes", "tenancy"} <= out.skipped
    assert "needs --limited-token" in out.stdout and "needs --other-token" in out.stdout
    assert token not in out.stdout and token not in report.read_text()
    assert report.read_text().startswith("<!doctype html>")


def test_hand_given_limited_token_is_checked_by_inference(
    broken: Callable[..., str], suite: Callable[..., Outcome]
) -> None:
    url = broken("scopes-ignored")
    token = _mint(url, "nurosentrix", account="by-hand")
    limited = _mint(url, "nurosentrix", account="by-hand", scopes=["servers:read", "instances:read"])
    out = suite(
        "--api", "nurosentrix", "--base-url", f"{url}/nurosentrix/api/v1", "--token", token,
        "--limited-token", limited, "--phases", "none", "--checks", "scopes",
    )  # fmt: skip
    assert out.code == 1 and out.failing == {"scopes"}, out


def test_rejected_token_is_a_usage_error(broken: Callable[..., str], suite: Callable[..., Outcome]) -> None:
    url = broken(None)
    out = suite(
        "--api", "cloudnexus", "--base-url", f"{url}/cloudnexus/v1", "--token", "cn_test_sk_" + "x" * 32
    )
    assert out.code == 2, out
    assert "rejected" in out.stderr
