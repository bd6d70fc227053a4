"""The Locust users of the Redis soak (`tests/redis_soak.py`): each request picks one of the
soak's tokens at random, lists its servers or creates one, and writes what happened (token,
kind, send and answer times, status, the created id) as a JSON line to a file of its own process
in `$SOAK_OUT`. A 429 is an expected answer at 10× the limits, not a failure."""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any

from locust import FastHttpUser, constant_throughput, task

TOKENS: list[str] = json.loads(Path(os.environ["SOAK_TOKENS"]).read_text())
WRITES = float(os.environ.get("SOAK_WRITES", "0.3"))
SERVERS = "/cloudnexus/v1/servers"
_out = open(Path(os.environ["SOAK_OUT"]) / f"{os.getpid()}.jsonl", "a", buffering=1)  # noqa: SIM115


class SoakUser(FastHttpUser):
    wait_time = constant_throughput(float(os.environ.get("SOAK_RATE", "5")))

    @task
    def one(self) -> None:
        k = random.randrange(len(TOKENS))
        write = random.random() < WRITES
        headers = {"Authorization": f"Bearer {TOKENS[k]}"}
        sent = time.time()
        row: dict[str, Any] = {"token": k, "write": write, "sent": sent}
        if write:
            body = {"name": f"soak-{random.getrandbits(40):x}", "plan": "pro", "region": "us-east-1"}
            ctx = self.client.post(SERVERS, json=body, headers=headers, name="create", catch_response=True)
        else:
            ctx = self.client.get(SERVERS, headers=headers, name="list", catch_response=True)
        with ctx as r:
            row["answered"], row["status"] = time.time(), r.status_code
            if r.status_code == 0:
                row["error"] = str(r.error)[:200]
            if r.status_code == 201:
                row["id"] = r.json()["data"]["id"]
            if r.status_code in (200, 201, 429):
                r.success()
            else:
                r.failure(f"status {r.status_code}")
        _out.write(json.dumps(row) + "\n")
