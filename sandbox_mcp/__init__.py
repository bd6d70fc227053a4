"""`mock-server mcp`: an MCP server (official `mcp` SDK) through which a coding agent drives a
running sandbox (its control API, over HTTP) and the conformance and rate-limit suites (as
subprocesses), as a developer does. On the top layer, beside `proxy`: it uses the sandbox and the
suites, and nothing below imports it."""
