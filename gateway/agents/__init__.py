"""Integrations with agent frameworks, built on the SDK (``gateway.client``) only.

    mcp          ``otpgate mcp``: a Model Context Protocol server (the ``mcp`` extra)
    browser_use  actions for Browser Use's tools registry (the ``browser-use`` extra)

Like the SDK they talk to a gateway over HTTP and import nothing else of it
(an import contract in pyproject.toml keeps it so).  Skyvern needs nothing on
the agent's side: it polls the gateway's ``/skyvern/totp/...`` route itself.
"""
