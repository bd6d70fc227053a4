"""Nurosentrix, variant A: an Express-style team's choices where documents 000/001 are silent.

- validation errors are `422 VALIDATION_ERROR`; malformed JSON `400 BAD_REQUEST`; a body that is
  not `application/json` is 415 (the document: "Must be application/json");
- DELETE answers `200` with the envelope `{success, data: {id, deleted: true}}` ("All responses are
  JSON");
- `per_page` above 100 is capped to 100; `meta` adds `total_pages`; single responses carry
  `meta: {request_id}` (the document's "All responses" structure shows `meta`);
- error codes `RESOURCE_NOT_FOUND`, `INVALID_STATE`, `RATE_LIMIT_EXCEEDED` (429 with
  `details {limit, retry_after}` and `Retry-After`);
- `X-RateLimit-Limit/Remaining/Reset` with the reset as a Unix epoch (GitHub's convention);
- new instances are `creating`, new backups `in_progress`;
- an instance's `domain` and `database_name` are unique per account (409 on reuse);
- deleting a server deletes its instances; `GET`/`DELETE /instances/{id}` and `GET /backups/{id}`
  exist, `DELETE /backups/{id}` is 405, `PATCH /servers/{id}` 405 and `/settings` 404.
"""

from __future__ import annotations

from starlette.applications import Starlette

from tests.conformance.honest.common import Clock
from tests.conformance.honest.nurosentrix import SUPPORTED_DEFECTS, Choices, build

DEFECTS = SUPPORTED_DEFECTS
CHOICES = Choices(
    validation_status=422,
    delete_status=200,
    per_page_above_max="cap",
    meta_extra="total_pages",
    meta_on_single=True,
    request_id_in_body=False,
    not_found_code="RESOURCE_NOT_FOUND",
    conflict_code="INVALID_STATE",
    rate_limited_code="RATE_LIMIT_EXCEEDED",
    bad_json_code="BAD_REQUEST",
    rate_headers="x-ratelimit-epoch",
    require_json_content_type=True,
    instance_initial="creating",
    backup_initial="in_progress",
    server_ip_while_provisioning=True,
    unique_instance_fields=("domain", "database_name"),
    unique_server_name=False,
    delete_server_with_instances="cascade",
    instance_routes=("GET", "DELETE"),
    backup_routes=("GET",),
    settings_route=False,
    clone_needs_backups_read=False,
    restore_status=202,
    action_status=200,
)


def make_app(
    window: float = 60.0, *, clock: Clock | None = None, delay: float = 5.0, defect: str | None = None
) -> Starlette:
    """The backend; `app.state.backend.test_tokens()` mints tokens. `window`: the rate-limit
    window in seconds (documented: a minute); `delay`: seconds until asynchronous work settles."""
    return build(CHOICES, window, clock, delay, defect)
