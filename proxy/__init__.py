"""The validating proxy (`mock-server proxy`, `python -m proxy`): in front of a real backend,
it forwards an app's traffic unchanged and judges every exchange by the contract, in both
directions, by the judge (`judge.exchange`) the sandbox's self-check and the conformance suite
share. The top layer: nothing imports it."""

from judge.exchange import Finding, Judge

from .app import ProxyApp

__all__ = ["Finding", "Judge", "ProxyApp"]
