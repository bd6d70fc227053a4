"""The load suite's reading of the specs and the verifier's judgement, without any server."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from jsonschema import Draft202012Validator

from contract import Template
from judge.headers import parse_retry_after, parse_structured
from load import LOCUSTFILES
from load.ratelimit import certain_peak, observed_peak
from load.roles import ApiContract
from tests.load.conftest import ROOT, run

APIS = list(LOCUSTFILES)


@pytest.mark.parametrize("api", APIS)
def test_limits_and_operations_come_from_the_spec(api: str) -> None:
    c = ApiContract.load(api)
    documented = c.spec.raw["x-sandbox"]["rate-limits"]  # as written in the spec
    assert {n: (b.limit, b.window) for n, b in c.buckets.items()} == {
        n: (b["limit"], b["window"]) for n, b in documented.items()
    }
    assert c.error_code_path == ("error", "code")  # every API's envelope, read from its template
    read = c.read_op_for("all")
    assert read is not None and read.method == "get" and read.rate_buckets == ("all",)
    assert read.resource is not None and read.resource.op == "list"
    pair = c.write_pair_for("write")
    assert pair is not None
    create, delete = pair
    assert create.method == "post" and "write" in create.rate_buckets
    assert delete is not None and delete.method == "delete" and delete.path.startswith(create.path + "/{")
    schema = create.body_schema or {}
    assert not list(Draft202012Validator(schema).iter_errors(c.new_body(create, "load-x")))


def test_window_override_and_base_url() -> None:
    c = ApiContract.load("nurosentrix", window=3)
    assert {b.window for b in c.buckets.values()} == {3.0}
    assert c.documented_windows == {"all": 60.0, "write": 60.0}
    assert c.base_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080/nurosentrix/api/v1"
    assert c.base_url("http://127.0.0.1:8080/") == "http://127.0.0.1:8080/nurosentrix/api/v1"
    assert c.base_url("https://app.nurosentrix.com/api/v1/") == "https://app.nurosentrix.com/api/v1"


def test_envelope_placeholders() -> None:
    assert Template({"success": False, "error": {"code": "$code"}}).locate("code") == ("error", "code")
    assert Template("$data").locate("data") == ()
    assert Template({"details": "$detail?"}).locate("detail") == ("details",)
    assert Template({"a": 1}).locate("code") is None


def test_the_sliding_judge_gives_each_request_its_round_trip() -> None:
    # 3 requests each taking 0.1 s, 0.95 s apart: a 2-per-second limit holds...
    spans = [(0.0, 0.1), (0.95, 1.05), (1.9, 2.0)]
    assert certain_peak(spans, 1.0)[0] == 1
    # ...but 3 answered within less than a window of the first send cannot be
    spans = [(0.0, 0.1), (0.3, 0.4), (0.6, 0.7)]
    assert certain_peak(spans, 1.0) == (3, pytest.approx(0.7))
    # a slow answer is given the benefit of the doubt: admitted as late as it arrived
    spans = [(0.0, 0.1), (0.5, 1.2)]
    assert certain_peak(spans, 1.0)[0] == 1
    assert observed_peak(spans, 1.0) == 2  # midpoints 0.05 and 0.85: the estimate
    assert observed_peak([(0.0, 0.0), (1.0, 1.0)], 1.0) == 1  # a window is half-open


def test_header_parsing() -> None:
    assert parse_structured('"all";q=100;w=60, "write";q=20;w=60') == {
        "all": {"q": "100", "w": "60"},
        "write": {"q": "20", "w": "60"},
    }
    assert parse_structured('"all";r=0;t=12') == {"all": {"r": "0", "t": "12"}}
    assert parse_structured("limit=100, remaining=99, reset=60") is None  # another format: not judged
    assert parse_retry_after("12") == 12
    assert parse_retry_after(" 3 ") == 3
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0  # a date in the past


@pytest.mark.parametrize("api", APIS)
def test_every_operation_a_workload_calls_is_in_the_spec(api: str) -> None:
    source = (ROOT / "load" / f"{LOCUSTFILES[api]}.py").read_text()
    called = set(re.findall(r'self\.(?:call|create|walk|body)\(\s*"([A-Za-z]+)"', source))
    called |= {
        f"{verb}{kind}" for verb in ("create", "delete") for kind in re.findall(r'_create\("(\w+)"\)', source)
    }
    ops = {op.operation_id for op in ApiContract.load(api).spec.operations}
    assert called and called <= ops, called - ops


def test_plain_locust_finds_one_user_class_per_api_file() -> None:
    for api, module in LOCUSTFILES.items():
        r = run([sys.executable, "-m", "locust", "-f", f"load/{module}.py", "--list"], 60)
        assert r.returncode == 0, r.stderr
        classes = [line.strip() for line in r.stdout.splitlines()[1:] if line.strip()]
        assert len(classes) == 1 and classes[0].endswith("User"), (api, r.stdout)


def test_load_run_builds_a_headless_locust_command() -> None:
    from load.cli import build_parser, locust_command

    argv = [
        "run",
        "--api",
        "cloudnexus-io",
        "--base-url",
        "http://127.0.0.1:1",
        "-u",
        "2",
        "-r",
        "2",
        "-t",
        "3s",
    ]
    argv += ["--html", "r.html", "--csv", "out/r", "--respect-limits", "--", "--stop-timeout", "2"]
    args = build_parser().parse_args(argv)
    cmd = locust_command(args, None)
    assert cmd[cmd.index("-f") + 1].endswith("load/cloudnexus_io.py")
    assert "--headless" in cmd and "--respect-limits" in cmd
    assert cmd[-2:] == ["--stop-timeout", "2"] and "--" not in cmd
    assert subprocess.list2cmdline(cmd)
