"""A request refused: its status, code, message and the problems found (field, reason).

The sandbox raises it anywhere below HTTP and renders it in the API's envelope
(`mock_server.errors.ApiError` is this class); the judge's request validator raises it too."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    field: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


@dataclass
class Refusal(Exception):
    status: int
    code: str
    message: str
    details: list[Problem] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


def validation(message: str, *problems: Problem) -> Refusal:
    return Refusal(400, "VALIDATION_ERROR", message, list(problems))
