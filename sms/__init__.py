"""The SMS adapters: inbound-SMS webhooks turned into calls on the gateway's services.

``twilio`` and ``android`` receive texts (each owns its URL path, :data:`PATHS`);
``twilio_rest`` is Twilio's REST API, through which the services buy numbers
and send forwarded texts.  The package uses the core's services and the API's
HTTP edge only (the import contracts in pyproject.toml); the core never
imports it (only the composition root, ``gateway.app``, wires it in), and it
never imports ``smtp``.
"""

from typing import Any

from aiohttp import web

from gateway.api.container import AdapterPaths, Services
from gateway.services.sms import TWILIO

from . import android, twilio

#: Where the inbound-SMS webhooks listen; the composition root hands this to the core.
PATHS = AdapterPaths(twilio_sms=twilio.PATH, android_sms=android.PATH)


def setup_routes(app: web.Application) -> None:
    """The inbound-SMS webhooks, at :data:`PATHS`, each with its documentation."""
    twilio.setup_routes(app)
    android.setup_routes(app)


async def replay(services: Services, kind: str, request: dict[str, Any]) -> None:
    """Take in a request the webhook kept in the spool while the store was away."""
    if kind == TWILIO:
        await twilio.replay(services, request)
    else:
        await android.replay(services, request)
