"""Rule on polling a resource that settles by itself (`x-resources.<name>.lifecycle`)."""

from __future__ import annotations

from .rules import Context, Row, Verdict, failed, passed, rule, unseen

POLLS_PER_CHANGE = 5  # at most this many polls in the shortest time a state takes to change
BURST = 3  # this many polls in a row, each too soon after the last, make a busy loop


@rule(
    "poll-pace",
    "polls a settling resource no faster than it can change",
    inferred="lifecycle durations are the sandbox's (the documents say 'a few seconds'); "
    f"the pace, {POLLS_PER_CHANGE} polls per shortest transition, is ours",
)
def poll_pace(ctx: Context) -> Verdict:
    spacing: dict[str, float] = {}  # get operation -> the least time between two polls
    for res in ctx.spec.resources.values():
        durations = [t.after for t in res.lifecycle.transitions if t.after] if res.lifecycle else []
        if res.get_op is not None and durations:
            spacing[res.get_op.operation_id] = min(durations) / POLLS_PER_CHANGE
    if not spacing:
        return unseen(f"{ctx.spec.name} has no resource that settles by itself")
    basis = "; ".join(
        f"{op}: one poll per {s:g} s (shortest transition / {POLLS_PER_CHANGE})"
        for op, s in sorted(spacing.items())
    )
    polled = 0
    bad: list[str] = []
    for rows in ctx.by_token.values():
        runs: dict[str, list[Row]] = {}  # record path -> the polls of its current busy run
        last: dict[str, Row] = {}
        for r in rows:
            least = spacing.get(str(r.get("operation")))
            if least is None or r["method"] != "GET" or r["status"] != 200:
                continue
            before = last.get(r["path"])
            last[r["path"]] = r
            if before is None:
                continue
            polled += 1
            run = runs.setdefault(r["path"], [before])
            if r["at"] - before["at"] < least:
                run.append(r)
                if len(run) == BURST:
                    bad += [x["request_id"] for x in run]
                elif len(run) > BURST:
                    bad.append(r["request_id"])
            else:
                runs[r["path"]] = [r]
    if bad:
        return failed(
            f"polled a settling record {BURST}+ times in a row faster than it can change", bad, basis
        )
    if not polled:
        return unseen("never read the same settling record twice", basis)
    return passed(f"{polled} repeated read(s) of settling records, none in a busy loop", basis)
