"""The SMTP adapter: turns mail for per-credential inboxes into calls on the gateway core.

It imports ``gateway``'s services; the core never imports it (only the
composition root, ``gateway.app``, wires it in), and it never imports ``sms``.
"""
