"""The validating proxy (`mock-server proxy`, `python -m proxy`): in front of a real backend,
it forwards an app's traffic unchanged and judges every exchange by the contract, in both
directions. The top layer: it uses the sandbox's request validation (`mock_server`) and the
conformance suite's per-response judgement (`conformance.checks.responses`); neither imports it."""

from .app import ProxyApp
from .judge import Finding, Judge

__all__ = ["Finding", "Judge", "ProxyApp"]
