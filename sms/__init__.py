"""The SMS adapter: turns inbound-SMS webhooks into calls on the gateway core.

It imports ``gateway``'s services; the core never imports it (only the
composition root, ``gateway.app``, wires it in), and it never imports ``smtp``.
"""

from aiohttp import web

from . import android, twilio


def setup_routes(app: web.Application) -> None:
    """The inbound-SMS webhooks: ``POST /sms/twilio`` and ``POST /sms/android``."""
    twilio.setup_routes(app)
    android.setup_routes(app)
