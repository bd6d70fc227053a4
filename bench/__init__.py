"""Side-by-side benchmark of the sandbox against two baselines on its own uvicorn settings (the
ceiling and a minimal handler) and two peers (Prism, connexion): `python -m bench` (see
bench/README.md)."""
