"""Serve one honest backend on 127.0.0.1 and print the conformance command to check it:

    python -m tests.conformance.honest nurosentrix_a [--delay 2] [--window 60] [--defect NAME]

Runs until interrupted (Ctrl-C)."""

from __future__ import annotations

import argparse
import importlib
import time

from tests.conformance.honest.common import DEFECTS, serve

BACKENDS = {  # module: (API, base path)
    "nurosentrix_a": ("nurosentrix", "/api/v1"),
    "nurosentrix_b": ("nurosentrix", "/api/v1"),
    "cloudnexus_com": ("cloudnexus", "/v1"),
    "cloudnexus_io": ("cloudnexus-io", "/v1"),
    "nexos": ("nexos", "/api"),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.conformance.honest", description=__doc__)
    parser.add_argument("backend", choices=sorted(BACKENDS))
    parser.add_argument("--delay", type=float, default=2.0, help="seconds until asynchronous work settles")
    parser.add_argument("--window", type=float, default=60.0, help="rate-limit window in seconds")
    parser.add_argument("--defect", choices=sorted(DEFECTS), help="plant one defect")
    args = parser.parse_args(argv)
    module = importlib.import_module(f"tests.conformance.honest.{args.backend}")
    if args.defect is not None and args.defect not in module.DEFECTS:
        parser.error(f"{args.backend} supports the defects {', '.join(module.DEFECTS) or '(none)'}")
    app = module.make_app(args.window, delay=args.delay, defect=args.defect)
    api, base = BACKENDS[args.backend]
    with serve(app) as url:
        t = app.state.backend.test_tokens()
        print(
            f"python -m conformance run --api {api} --base-url {url}{base} "
            f"--token {t.full} --limited-token {t.limited} --other-token {t.other}",
            flush=True,
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
