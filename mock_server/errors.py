"""The errors a client can cause, independent of any API's envelope."""

from __future__ import annotations

from judge.refusal import Problem, Refusal
from judge.refusal import validation as validation

# Defined by the judge, whose request validator raises it too; the sandbox's name for it.
ApiError = Refusal
"""Raised anywhere below HTTP; the engine renders it in the API's error envelope."""


def not_found(what: str = "Resource") -> ApiError:
    return ApiError(404, "NOT_FOUND", f"{what} not found")


def conflict(message: str, *problems: Problem) -> ApiError:
    return ApiError(409, "CONFLICT", message, list(problems))


class StorageError(ApiError):
    """The store could not make a write durable (a full disk, a folder it may not write, an
    I/O error). Raised only once the write is undone, in memory and on disk: the client is
    told nothing was saved, and that is true. `507 INSUFFICIENT_STORAGE` when space ran out,
    `503 STORAGE_UNAVAILABLE` for any other failure; a retry succeeds once the cause is gone."""

    def __init__(
        self,
        errno_: int | None,
        reason: str,
        message: str = "The sandbox could not write its data: nothing was saved",
    ) -> None:
        import errno

        if errno_ in (errno.ENOSPC, errno.EDQUOT):
            super().__init__(507, "INSUFFICIENT_STORAGE", "The sandbox's disk is full: nothing was saved")
        else:
            super().__init__(503, "STORAGE_UNAVAILABLE", message, headers={"Retry-After": "1"})
        self.errno = errno_
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.reason}"


class StoreUnavailable(StorageError):
    """The store's server (Redis) did not answer, or refused a commit: `503 STORAGE_UNAVAILABLE`
    with `Retry-After`, for a read as for a write. A write is then undone (not saved, or, if
    the reply alone was lost, saved whole: the next read shows which); a retry succeeds once the
    server is back."""

    def __init__(self, reason: str) -> None:
        super().__init__(None, reason, "The sandbox's store is unreachable; retry shortly")
