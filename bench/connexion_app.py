"""The connexion peer: connexion 3's own stateless mock (`--mock=all`), built exactly as
`connexion run SPEC --mock=all` builds it (`connexion.cli.create_app`: an `AsyncApp`, the
`MockResolver(mock_all=True)`, request validation on), served by
`python -m uvicorn ... --log-level warning`.

`BENCH_CONNEXION_SPEC` names the spec (the OpenAPI 3.0.3 copy made by `connexion_spec.py`).
Its `bearerAuth` scheme gets `x-bearerInfoFunc: bench.connexion_app.accept_bearer`: without an
info function connexion answers 401 to every request, token or not.
"""

from __future__ import annotations

import os
from typing import Any

import connexion
from connexion.mock import MockResolver


def accept_bearer(token: str) -> dict[str, Any]:
    """Any bearer token is accepted, as a stateless mock does (connexion checks no scopes for it)."""
    return {"sub": "bench", "token": token}


app = connexion.AsyncApp(__name__)
app.add_api(os.environ["BENCH_CONNEXION_SPEC"], resolver=MockResolver(mock_all=True))
