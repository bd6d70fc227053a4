"""A real gateway: Debian's nginx `limit_req` (keyed by the bearer token, `nodelay`, refusals
as 429) in front of an honest backend (the sandbox with its own limiter off). nginx's limiter
is a leaky bucket counted in milliseconds: `rate=R` drains the excess at R per second and a
request is refused when the excess would pass `burst`, so it admits `burst + 1` at once and
then R per second: a token bucket of `burst + 1` refilled at R. The fingerprinter must say
exactly that, keyed per token, and find it keeps "100 per W" documented with `--window W`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import HOST, Sandbox, free_port, run, spawn, stop, wait_http

MISSING = "NGINX TEST NOT RUN: nginx is not installed (as root: make system-tools, or apt-get install nginx)"
W = 4.0  # the window the run is told (--window): documented 100 per W
RATE, BURST = 25, 99  # nginx: 25 r/s, 99 excess: a bucket of 100 refilled at 100 per 4 s

CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    limit_req_zone $http_authorization zone=api:1m rate={rate}r/s;
    limit_req_status 429;
    upstream backend {{ server {backend}; keepalive 16; }}
    server {{
        listen {host}:{port};
        location / {{
            limit_req zone=api burst={burst} nodelay;
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


@pytest.fixture
def gateway(tmp_path: Path) -> object:
    binary = shutil.which("nginx") or (p if Path(p := "/usr/sbin/nginx").exists() else None)
    if binary is None:
        pytest.skip(MISSING)
    port = free_port()
    args = [sys.executable, "-m", "mock_server", "serve", "--host", HOST, "--port", str(port)]
    backend = spawn([*args, "--memory", "--async-delay", "0", "--api", "nurosentrix", "--no-rate-limit"])
    assert wait_http(f"http://{HOST}:{port}/_mock/health", backend), stop(backend)
    gw_port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        CONF.format(tmp=tmp_path, rate=RATE, burst=BURST, backend=f"{HOST}:{port}", host=HOST, port=gw_port)
    )
    nginx = subprocess.Popen(
        [binary, "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "error.log")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_http(f"http://{HOST}:{gw_port}/_mock/health", nginx), stop(nginx)
        yield Sandbox(f"http://{HOST}:{port}", ["nurosentrix"], backend), f"http://{HOST}:{gw_port}"
    finally:
        stop(nginx)
        stop(backend)


def test_nginx_limit_req_is_a_token_bucket_of_burst_plus_one(gateway: object, tmp_path: Path) -> None:
    sandbox, url = gateway  # type: ignore[misc]
    out = tmp_path / "fp.json"
    args = [sys.executable, "-m", "load", "fingerprint", "--api", "nurosentrix", "--base-url", url]
    args += ["--token", sandbox.token("nurosentrix"), "--other-token", sandbox.token("nurosentrix")]
    r = run([*args, "--operation", "listServers", "--window", str(W), "--json", str(out)], timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    (g,) = json.loads(out.read_text())["groups"]
    assert g["algorithm"] == "token-bucket", g
    assert abs(g["burst"] - (BURST + 1)) <= 2, g  # +1: the request that meets an empty excess
    rate = g["limit"] / g["window_s"]
    assert abs(rate - RATE) <= 0.1 * RATE, g
    assert g["key"] == "token" and g["verdict"] == "keeps", g
    assert g["headers"]["retry_after"] == "absent"  # nginx sends none; the documents name none
    print(f"nginx: {g['requests']} requests, {g['wall_s']} s; {g['evidence']}")
