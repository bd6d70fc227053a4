"""Nurosentrix, variant B: another team's choices where documents 000/001 are silent.

- validation errors are `400 VALIDATION_ERROR` (as is malformed JSON); the Content-Type is not
  checked (the body is parsed as JSON whatever it says);
- DELETE answers `204` with no body; deleting a server that still has instances is
  `409 CONFLICT`;
- `per_page` above 100 is refused (400); `meta` adds `has_more`; every body carries a top-level
  `request_id` (no `X-Request-ID` header);
- error codes `NOT_FOUND`, `CONFLICT`, `TOO_MANY_REQUESTS` (429 with `Retry-After`), and no
  rate-limit headers at all;
- a new server has `ip_address: null` until it is active; new instances are `provisioning`, new
  backups `pending`; server names are unique per account (409 on reuse);
- `GET`/`DELETE /instances/{id}` exist; `/backups/{id}` is 404 whatever the method;
  `PATCH /servers/{id}` is 405; `GET /settings` exists (settings:read) with its own fields;
  clone needs `instances:write` and `backups:read`; actions and restores answer 202.
"""

from __future__ import annotations

from starlette.applications import Starlette

from tests.conformance.honest.common import Clock
from tests.conformance.honest.nurosentrix import SUPPORTED_DEFECTS, Choices, build

DEFECTS = SUPPORTED_DEFECTS
CHOICES = Choices(
    validation_status=400,
    delete_status=204,
    per_page_above_max="refuse",
    meta_extra="has_more",
    meta_on_single=False,
    request_id_in_body=True,
    not_found_code="NOT_FOUND",
    conflict_code="CONFLICT",
    rate_limited_code="TOO_MANY_REQUESTS",
    bad_json_code="VALIDATION_ERROR",
    rate_headers="none",
    require_json_content_type=False,
    instance_initial="provisioning",
    backup_initial="pending",
    server_ip_while_provisioning=False,
    unique_instance_fields=(),
    unique_server_name=True,
    delete_server_with_instances="refuse",
    instance_routes=("GET", "DELETE"),
    backup_routes=(),
    settings_route=True,
    clone_needs_backups_read=True,
    restore_status=202,
    action_status=202,
)


def make_app(
    window: float = 60.0, *, clock: Clock | None = None, delay: float = 5.0, defect: str | None = None
) -> Starlette:
    """The backend; `app.state.backend.test_tokens()` mints tokens. `window`: the rate-limit
    window in seconds (documented: a minute); `delay`: seconds until asynchronous work settles."""
    return build(CHOICES, window, clock, delay, defect)
