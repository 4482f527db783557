"""The SMTP adapter: turns mail for per-credential inboxes into calls on the gateway core.

It calls ``gateway``'s inbound service only (the import contracts in
pyproject.toml); the core never imports it (only the composition root,
``gateway.app``, wires it in), and it never imports ``sms``.
"""
