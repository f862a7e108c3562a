"""``kai mcp``: Kai as a Model Context Protocol server for coding agents.

A front end beside the CLI and the REPL: each ``ask_kai`` call is a
:class:`~kai_core.session.Session` whose ``ask`` is an MCP elicitation to the
agent's user (:mod:`.approval`); the tools are in :mod:`.tools`, the
streamable-HTTP transport with its bearer token in :mod:`.http`. Nothing
here is imported unless ``kai mcp`` runs (the ``mcp`` extra).
"""
