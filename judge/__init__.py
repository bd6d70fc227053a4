"""One judge of an exchange by the contract, for the sandbox's self-check, the proxy, the
conformance suite and the load verifier alike.

* `request`: the request validator (parameters, JSON body), raising `refusal.Refusal`;
* `response`: the response judge (status, content type, headers, body schema, envelope,
  rate-limit headers);
* `headers`: the one reader and writer of rate-limit headers and `Retry-After`;
* `profile`: which view fails a backend, and why a finding is only inferred;
* `exchange`: both directions at once, as the proxy sees them;
* `schema`: JSON Schema, compiled once; with `contract/`, the only importer of jsonschema.

Imports only `contract/` (and jsonschema, the standard library)."""
