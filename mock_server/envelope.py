"""Each API's own response and error envelopes, rendered from its spec's templates."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contract import Template, placeholders

from .errors import ApiError

_ABSENT = object()
Filler = Callable[[dict[str, Any]], Any]


def render(template: Any, values: dict[str, Any]) -> Any:
    """Fill `$name` placeholders; a `$name?` key whose value is None is dropped."""
    return compile_template(template)(values)


def compile_template(template: Any) -> Filler:
    """`template` as a function of the placeholder values: the walk over the template is done
    once, at start, instead of on every response."""
    if isinstance(template, str) and template.startswith("$"):
        name = template[1:].rstrip("?")
        if template.endswith("?"):
            return lambda values: _ABSENT if values.get(name) is None else values[name]
        return lambda values: values.get(name)
    if isinstance(template, dict):
        parts = [(k, compile_template(v)) for k, v in template.items()]

        def fill_dict(values: dict[str, Any]) -> dict[str, Any]:
            out = {}
            for k, fill in parts:
                filled = fill(values)
                if filled is not _ABSENT:
                    out[k] = filled
            return out

        return fill_dict
    if isinstance(template, list):
        items = [compile_template(v) for v in template]
        return lambda values: [x for x in (fill(values) for fill in items) if x is not _ABSENT]
    return lambda values: template


class Envelope:
    """The three templates of one API (`x-sandbox.envelope`)."""

    def __init__(self, templates: dict[str, Template]) -> None:
        self.templates = {kind: t.value for kind, t in templates.items()}
        self._placeholders = placeholders(self.templates)
        self._fill = {kind: compile_template(t) for kind, t in self.templates.items()}

    def uses(self, name: str) -> bool:
        """Whether any template has `$name` (so costly values are computed only when shown)."""
        return name in self._placeholders

    def single(self, data: Any, common: dict[str, Any]) -> Any:
        return self._fill["single"]({**common, "data": data})

    def list(self, items: list[Any], meta: dict[str, Any], common: dict[str, Any]) -> Any:
        return self._fill["list"]({**common, **meta, "items": items})

    def error(self, err: ApiError, common: dict[str, Any]) -> Any:
        details = [p.as_dict() for p in err.details] or None
        return self._fill["error"](
            {
                **common,
                "code": err.code,
                "message": err.message,
                "detail": details[0] if details else None,
                "details": details,
            },
        )
