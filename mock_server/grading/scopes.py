"""Rules on the credentials a client holds: a test token, with just the scopes it uses."""

from __future__ import annotations

from .rules import Context, Verdict, failed, passed, rule, scopes_inferred, unseen


@rule(
    "least-privilege",
    "holds only the scopes its calls need",
    inferred="least privilege is a practice, not a vendor rule; each operation's x-scopes says what it needs",
)
def least_privilege(ctx: Context) -> Verdict:
    basis = "the x-scopes of the operations the token called"
    judged = 0
    bad: list[str] = []
    spare: set[str] = set()
    for tid, rows in ctx.by_token.items():
        record = ctx.tokens.get(tid) if tid else None
        if record is None:
            continue
        judged += 1
        used: set[str] = set()
        for name in {r.get("operation") for r in rows}:
            used.update(ctx.scopes_of.get(name, ()))
        unused = set(record.get("scopes") or ()) - used
        if unused:
            spare |= unused
            bad.append(rows[0]["request_id"])
    if bad:
        return failed(f"holds scopes none of its calls needed: {', '.join(sorted(spare))}", bad, basis)
    if not judged:
        return unseen("no request with a token this sandbox still knows", basis)
    return passed(f"{judged} token(s), each using every scope it holds", basis)


@rule("scopes-sufficient", "calls only operations its token has the scopes for")
def scopes_sufficient(ctx: Context) -> Verdict:
    verdict = _scopes_sufficient(ctx)
    verdict.inferred = scopes_inferred(ctx.spec)
    return verdict


def _scopes_sufficient(ctx: Context) -> Verdict:
    basis = "each operation's x-scopes"
    calls = 0
    bad: list[str] = []
    needs = ctx.scopes_of
    for r in ctx.rows:
        if not needs.get(r.get("operation")) or not r.get("token_id"):
            continue
        calls += 1
        if r["status"] == 403 and str(r.get("reason") or "").startswith("the token lacks"):
            bad.append(r["request_id"])
    if bad:
        return failed(f"{len(bad)} call(s) refused for a missing scope", bad, basis)
    if not calls:
        return unseen("called no operation that needs a scope", basis)
    return passed(f"{calls} call(s) needing scopes; the token had them", basis)


@rule("test-token", "uses a test-mode token against the sandbox, never a live one")
def test_token(ctx: Context) -> Verdict:
    basis = "x-sandbox.token-prefixes: " + ", ".join(
        f"{m} {p}" for m, p in sorted(ctx.spec.token_prefixes.items())
    )
    judged = 0
    bad: list[str] = []
    for tid, rows in ctx.by_token.items():
        record = ctx.tokens.get(tid) if tid else None
        if record is None:
            continue
        judged += 1
        if record.get("mode") != "test":
            bad += [r["request_id"] for r in rows]
    if bad:
        return failed("sent a live-mode token: a live key does not belong in a sandbox or a test", bad, basis)
    if not judged:
        return unseen("no request with a token this sandbox still knows", basis)
    return passed(f"{judged} token(s), all test-mode", basis)
