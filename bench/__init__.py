"""Side-by-side benchmark of the sandbox against a bare Starlette app (baseline A) and
connexion's stateless `--mock=all` (baseline B): `python -m bench` (see bench/README.md)."""
