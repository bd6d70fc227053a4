"""Rule on writes: the same record is not created twice by a blind retry."""

from __future__ import annotations

from .rules import Context, Row, Verdict, failed, passed, rule, unseen

WINDOW = 60.0  # seconds within which an identical create looks like a retried one


@rule(
    "no-duplicate-create",
    "does not create the same record twice in a short time (a retried write with no way to deduplicate)",
    inferred=f"the window, {WINDOW:g} s, is ours; operations with an Idempotency-Key header are exempt",
)
def no_duplicate_create(ctx: Context) -> Verdict:
    basis = f"two successful creates with the same body on the same path within {WINDOW:g} s"
    creates = 0
    bad: list[str] = []
    for rows in ctx.by_token.values():
        made: dict[tuple[str, str], Row] = {}
        for r in rows:
            op = ctx.op(r)
            if (
                op is None
                or op.resource is None
                or op.resource.op != "create"
                or not 200 <= r["status"] < 300
            ):
                continue
            if any(p.name.lower() == "idempotency-key" for p in op.params):
                continue
            creates += 1
            key = (r["path"], str(r.get("body")))
            before = made.get(key)
            if before is not None and r["at"] - before["at"] < WINDOW:
                bad += [before["request_id"], r["request_id"]]
            made[key] = r
    if bad:
        return failed("created the same record twice within a short time", bad, basis)
    if not creates:
        return unseen("created nothing", basis)
    return passed(f"{creates} create(s), no two alike in a short time", basis)
