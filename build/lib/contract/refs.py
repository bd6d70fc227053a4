"""The one `$ref` resolver, for the engine and both suites."""

from __future__ import annotations

from typing import Any

from .errors import SpecError


def deref(node: Any, root: dict[str, Any], _seen: tuple[str, ...] = ()) -> Any:
    """Inline every local `$ref` (specs here have no recursive schemas); sibling keys of a
    `$ref` (an `x-inferred` mark, a description) are kept over the target's."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            if not ref.startswith("#/"):
                raise SpecError(f"only local $refs are supported: {ref}")
            if ref in _seen:
                raise SpecError(f"recursive $ref: {ref}")
            target: Any = root
            try:
                for part in ref[2:].split("/"):
                    target = target[part.replace("~1", "/").replace("~0", "~")]
            except (KeyError, TypeError, IndexError):
                raise SpecError(f"$ref {ref} points at nothing") from None
            resolved = deref(target, root, (*_seen, ref))
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            if siblings and isinstance(resolved, dict):
                return {**resolved, **deref(siblings, root, _seen)}
            return resolved
        return {k: deref(v, root, _seen) for k, v in node.items()}
    if isinstance(node, list):
        return [deref(v, root, _seen) for v in node]
    return node
