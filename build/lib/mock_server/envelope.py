"""Each API's own response and error envelopes, rendered from its spec's templates."""

from __future__ import annotations

from typing import Any

from contract import Template, placeholders

from .errors import ApiError

_ABSENT = object()


def render(template: Any, values: dict[str, Any]) -> Any:
    """Fill `$name` placeholders; a `$name?` key whose value is None is dropped."""
    if isinstance(template, str) and template.startswith("$"):
        name = template[1:].rstrip("?")
        value = values.get(name)
        if template.endswith("?") and value is None:
            return _ABSENT
        return value
    if isinstance(template, dict):
        out = {}
        for k, v in template.items():
            filled = render(v, values)
            if filled is not _ABSENT:
                out[k] = filled
        return out
    if isinstance(template, list):
        return [x for x in (render(v, values) for v in template) if x is not _ABSENT]
    return template


class Envelope:
    """The three templates of one API (`x-sandbox.envelope`)."""

    def __init__(self, templates: dict[str, Template]) -> None:
        self.templates = {kind: t.value for kind, t in templates.items()}
        self._placeholders = placeholders(self.templates)

    def uses(self, name: str) -> bool:
        """Whether any template has `$name` (so costly values are computed only when shown)."""
        return name in self._placeholders

    def single(self, data: Any, common: dict[str, Any]) -> Any:
        return render(self.templates["single"], {**common, "data": data})

    def list(self, items: list[Any], meta: dict[str, Any], common: dict[str, Any]) -> Any:
        return render(self.templates["list"], {**common, **meta, "items": items})

    def error(self, err: ApiError, common: dict[str, Any]) -> Any:
        details = [p.as_dict() for p in err.details] or None
        return render(
            self.templates["error"],
            {
                **common,
                "code": err.code,
                "message": err.message,
                "detail": details[0] if details else None,
                "details": details,
            },
        )
