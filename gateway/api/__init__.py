"""The HTTP API: thin views that parse, call one service and render.

``setup_routes(app)`` wires every concern's routes, each registered with its
OpenAPI operation (``openapi.route``); the composition root (``gateway.app``)
puts the services in ``app[SERVICES]`` first, then calls it.
"""

from __future__ import annotations

from aiohttp import web

from . import (
    android,
    audit,
    backup_codes,
    codes,
    credentials,
    forwards,
    interactions,
    keys,
    logins,
    ops,
    skyvern,
    tenants,
    webhooks,
)
from .container import SERVICES, AdapterPaths, Lifecycle, Services
from .errors import error_middleware

__all__ = [
    "SERVICES",
    "AdapterPaths",
    "Lifecycle",
    "Services",
    "error_middleware",
    "setup_routes",
]


def setup_routes(app: web.Application) -> None:
    ops.setup_routes(app)
    tenants.setup_routes(app)
    keys.setup_routes(app)
    audit.setup_routes(app)
    credentials.setup_routes(app)
    codes.setup_routes(app)
    forwards.setup_routes(app)
    android.setup_routes(app)
    webhooks.setup_routes(app)
    interactions.setup_routes(app)
    logins.setup_routes(app)
    backup_codes.setup_routes(app)
    skyvern.setup_routes(app)
