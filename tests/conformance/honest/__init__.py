"""Independent, honest vendor-style backends, written from the vendor documents in
`../shared/seeds/` (not from our specs): honest where the documents speak, making other reasonable
choices where they are silent. They exist so the conformance suite can be proven against backends
that a real vendor team could have written (issue 21, point 7).

| module | API | document |
|---|---|---|
| `nurosentrix_a` | Nurosentrix | 000 + 001 |
| `nurosentrix_b` | Nurosentrix (other choices) | 000 + 001 |
| `cloudnexus_com` | CloudNexus v1.4.2 | 002 |
| `cloudnexus_io` | CloudNexus .io | 003 |
| `nexos` | Nexos | 004 |

Each module has `make_app(window=60.0, *, clock=None, delay=..., defect=None) -> Starlette` and the
app's `state.backend` mints tokens (`backend.mint(...)`, `backend.test_tokens()`); `common.serve`
serves any of them on 127.0.0.1. `common.DEFECTS` lists the defects that can be planted with
`defect=`; each module's `DEFECTS` says which of them it supports.
"""
