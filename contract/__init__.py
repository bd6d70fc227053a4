"""One reading of the contract: each spec compiled once into the model that the engine
(`mock_server`), the conformance suite and the load suite all judge by.

Layering: `contract` imports nothing of the project; `mock_server`, `conformance` and `load`
import it (and `conformance`/`load` no longer import the mock server to read a spec)."""

from .compile import HTTP_METHODS, SPECS_DIR, available_specs, compile_spec, load, load_all, load_path
from .envelope import MISSING, Template, placeholders
from .errors import SpecError
from .examples import body_for, synthesize
from .extensions import (
    Action,
    ActionSet,
    Counter,
    Credential,
    Event,
    Lifecycle,
    Parent,
    Requirement,
    ResourceOp,
    Signature,
    Transition,
    at_path,
)
from .model import (
    Bucket,
    Contract,
    Header,
    Operation,
    Pagination,
    Param,
    Resource,
    Response,
    format_seconds,
)
from .provenance import DOCUMENTED, Provenance

__all__ = [
    "DOCUMENTED",
    "HTTP_METHODS",
    "MISSING",
    "SPECS_DIR",
    "Action",
    "ActionSet",
    "Bucket",
    "Contract",
    "Counter",
    "Credential",
    "Event",
    "Header",
    "Lifecycle",
    "Operation",
    "Pagination",
    "Param",
    "Parent",
    "Provenance",
    "Requirement",
    "Resource",
    "ResourceOp",
    "Response",
    "Signature",
    "SpecError",
    "Template",
    "Transition",
    "at_path",
    "available_specs",
    "body_for",
    "compile_spec",
    "format_seconds",
    "load",
    "load_all",
    "load_path",
    "placeholders",
    "synthesize",
]
