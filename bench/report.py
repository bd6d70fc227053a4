"""Tables: the printed one, and `latest.md` / `latest.json`."""

from __future__ import annotations

from typing import Any


def _f(x: Any, nd: int = 1) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:,.{nd}f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


def _ratio(x: Any) -> str:
    return "–" if x is None else f"{x:.2f}×" if x >= 0.995 else f"{x * 100:.0f}%"


MAIN_HEAD = ["target", "request", "conns", "req/s", "req/s range", "p50 ms", "p99 ms", "errors"]
MAIN_HEAD += ["peak RSS MiB", "÷ ceiling", "÷ handler"]
SCALE_HEAD = [
    "stored",
    "file MB",
    "start s",
    "request",
    "conns",
    "req/s",
    "p50 ms",
    "p99 ms",
    "errors",
    "peak RSS MiB",
]
GOAL_HEAD = ["goal", "measured", "target", "met"]


def main_rows(res: dict[str, Any]) -> list[list[str]]:
    rows = []
    for m in res["measurements"]:
        rows.append(
            [
                m["target"],
                m["request"],
                str(m["connections"]),
                _f(m["rps"]),
                f"{m['rps_min']:,.0f}–{m['rps_max']:,.0f}",
                _f(m["p50_ms"], 2),
                _f(m["p99_ms"], 2),
                str(m["socket_errors"] + m["non2xx"]),
                _f(m["peak_rss_mib"]),
                _ratio(m.get("ratio_vs_ceiling")),
                _ratio(m.get("ratio_vs_handler")),
            ]
        )
    return rows


def scale_rows(res: dict[str, Any]) -> list[list[str]]:
    rows = []
    for m in res["scaling"]:
        rows.append(
            [
                f"{m['stored']:,}",
                _f(m["file_mb"]),
                _f(m["start_s"], 2),
                m["request"],
                str(m["connections"]),
                _f(m["rps"]),
                _f(m["p50_ms"], 2),
                _f(m["p99_ms"], 2),
                str(m["socket_errors"] + m["non2xx"]),
                _f(m["peak_rss_mib"]),
            ]
        )
    return rows


def goal_rows(res: dict[str, Any]) -> list[list[str]]:
    return [
        [g["goal"], g["measured"], g["target"], {True: "yes", False: "NO", None: "n/a"}[g["met"]]]
        for g in res["goals"]
    ]


def text_table(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    line = "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    for r in rows:
        out.append(
            "  ".join(
                c.rjust(w) if c[:1].isdigit() or c[:1] in "–" else c.ljust(w)
                for c, w in zip(r, widths, strict=True)
            )
        )
    return "\n".join(out)


def md_table(head: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def render_text(res: dict[str, Any]) -> str:
    meta = res["meta"]
    parts = [
        f"Load generator: {meta['generator']} · {meta['duration_s']} s per measurement "
        f"(+{meta['warmup_s']} s warm-up), side by side = median of {meta['rounds']} rounds · "
        f"{meta['cpus']} CPUs, pinning: {meta['pinning']} · load average {meta['loadavg_start'][0]} → "
        f"{meta['loadavg_end'][0]}",
        "",
        "Side by side (sandbox: 1,000 servers stored in the account; GET /servers = first page of 20)",
        text_table(MAIN_HEAD, main_rows(res)),
    ]
    if res["scaling"]:
        parts += ["", "Cost vs stored servers (one account)", text_table(SCALE_HEAD, scale_rows(res))]
    if res.get("seed_path"):
        parts += ["", "Loading servers through `--seed` (journal lines, one fsync once applied):"]
        parts += [f"  {s['servers']:>6,} servers: ready after {s['ready_s']:.2f} s" for s in res["seed_path"]]
    parts += ["", "Goals", text_table(GOAL_HEAD, goal_rows(res))]
    if res["notes"]:
        parts += ["", "Notes"] + [f"- {n}" for n in res["notes"]]
    return "\n".join(parts)


def render_md(res: dict[str, Any]) -> str:
    meta = res["meta"]
    parts = [
        "# Sandbox benchmark",
        "",
        f"`{meta['command']}` · {meta['started']} · Python {meta['python']} · {meta['cpus']} CPUs "
        f"(server pinned to CPU {meta['server_cpus']}, generator to CPU {meta['generator_cpus']})"
        if meta["pinning"]
        else f"`{meta['command']}` · {meta['started']} · Python {meta['python']} · {meta['cpus']} CPUs",
        "",
        f"Load generator: **{meta['generator']}**, closed loop, {meta['duration_s']} s per measurement "
        f"after {meta['warmup_s']} s of warm-up; side by side: median of {meta['rounds']} interleaved "
        f"rounds; 1-minute load average {meta['loadavg_start'][0]} at the start, "
        f"{meta['loadavg_end'][0]} at the end; loopback only. Latencies in ms; `errors` = socket errors "
        "+ non-2xx answers; peak RSS = the server process's VmHWM during that measurement.",
        "",
        "## Side by side",
        "",
        "- **ceiling** bare Starlette answering the sandbox's own bytes, precomputed "
        "(`bench/baselines.py --mode ceiling`), on the sandbox's uvicorn settings.",
        "- **minimal handler** the same routes with a token dict lookup and the same documents encoded "
        "per request by the sandbox's encoder (`bench/baselines.py --mode handler`).",
        "- **Prism static mock** `npx @stoplight/prism-cli@5 mock --verboseLevel error "
        "specs/nurosentrix.yaml` (when npx exists).",
        "- Per-request logging is off in every server: the sandbox and the baselines (no access log), "
        "connexion and Granian (`--log-level warning`, no access log), Prism (`--verboseLevel error`: "
        "it logs each request at `info` by default).",
        "- **connexion --mock** connexion's stateless `--mock=all` on the same contract "
        "(`bench/connexion_app.py`).",
        "- **sandbox** `python -m mock_server serve --api nurosentrix --data <file> --seed <token> "
        f"--rate-window {meta['rate_window']}`: auth, scopes, validation, rate limiting on "
        "(see notes), TinyDB file store with 1,000 servers in the token's account.",
        "- **sandbox, no rate limit** the same with `--no-rate-limit`.",
        "",
        md_table(MAIN_HEAD, main_rows(res)),
    ]
    if res["scaling"]:
        parts += ["", "## Cost vs stored servers (one account)", "", md_table(SCALE_HEAD, scale_rows(res))]
    if res.get("seed_path"):
        parts += ["", "## Loading through `--seed`", ""]
        parts += [f"- {s['servers']:,} servers: ready after {s['ready_s']:.2f} s" for s in res["seed_path"]]
    parts += ["", "## Goals", "", md_table(GOAL_HEAD, goal_rows(res))]
    if res["notes"]:
        parts += ["", "## Notes", ""] + [f"- {n}" for n in res["notes"]]
    return "\n".join(parts) + "\n"
