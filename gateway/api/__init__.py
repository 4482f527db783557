"""The HTTP API: thin views that parse, call one service and render.

``setup_routes(app)`` wires every concern's routes; the composition root
(``gateway.app``) calls it and puts the services in ``app[SERVICES]``.
"""

from __future__ import annotations

from aiohttp import web

from . import android, codes, credentials, forwards, interactions, ops, tenants, webhooks
from .base import SERVICES, Lifecycle, Services, error_middleware

__all__ = ["SERVICES", "Lifecycle", "Services", "error_middleware", "setup_routes"]


def setup_routes(app: web.Application) -> None:
    ops.setup_routes(app)
    tenants.setup_routes(app)
    credentials.setup_routes(app)
    codes.setup_routes(app)
    forwards.setup_routes(app)
    android.setup_routes(app)
    webhooks.setup_routes(app)
    interactions.setup_routes(app)
