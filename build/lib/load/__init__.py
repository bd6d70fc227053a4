"""Load tests of the sandbox's four APIs, driven by their specs.

- `python -m load ratelimit ...`: the rate-limit contract verifier (`load.ratelimit`);
- `python -m load run ...`: a mixed Locust workload of one API (`load/<api>.py`);
- `locust -f load/<api>.py ...`: the same Locust files, standalone or distributed.

Importing this package imports neither Locust nor gevent: only `load.common` and the
per-API Locust files do (Locust monkey-patches the standard library when imported).
"""

# Spec name -> the Locust file (module under load/) holding that API's workload.
LOCUSTFILES = {
    "nurosentrix": "nurosentrix",
    "cloudnexus": "cloudnexus",
    "cloudnexus-io": "cloudnexus_io",
    "nexos": "nexos",
}


def token_env_vars(api: str) -> list[str]:
    """Environment variables a token is read from when none is given, most specific first."""
    return [api.upper().replace("-", "_") + "_TOKEN", "LOAD_TOKEN"]
