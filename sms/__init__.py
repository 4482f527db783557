"""The SMS adapter: turns inbound-SMS webhooks into calls on the gateway core.

It imports ``gateway``'s services; the core never imports it (only the
composition root, ``gateway.app``, wires it in), and it never imports ``smtp``.
"""
