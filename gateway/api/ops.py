"""Health, readiness, metrics and the OpenAPI document (no API key needed)."""

from __future__ import annotations

import logging

from aiohttp import web

from ..metrics import CONTENT_TYPE
from ..services.replicas import backlog
from .container import SERVICES
from .openapi import ROUTES, DocumentedRoute, Operation, Schema, document, route, text
from .replies import json_response

log = logging.getLogger("otpgate.http")


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    if request.app[SERVICES].lifecycle.draining:
        return json_response({"status": "draining"}, status=503)
    try:
        await request.app[SERVICES].db.ping()
    except Exception as exc:  # any failure means "not ready", never a 500
        log.warning("readiness check failed", extra={"error": type(exc).__name__})
        return json_response({"status": "unavailable", "database": "unreachable"}, status=503)
    return json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    try:
        waiting = await backlog(services.db)
    except Exception as exc:  # the counters still render; the backlog keeps its last value
        log.warning("could not count the backlog for /metrics", extra={"error": type(exc).__name__})
    else:
        services.metrics.webhook_backlog.set(waiting["webhook_deliveries_pending"])
        services.metrics.forward_backlog.set(waiting["forwards_pending"])
    services.metrics.code_waiters.set(services.codes.waiting())
    text = services.metrics.render()
    return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})


async def openapi(request: web.Request) -> web.Response:
    routes: list[DocumentedRoute] = request.app[ROUTES]
    return json_response(document(request.app[SERVICES].settings.public_url, routes))


def _status(*values: str) -> Schema:
    return {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"enum": list(values)}},
    }


_DOCUMENT: Schema = {
    "type": "object",
    "required": ["openapi", "info", "paths"],
    "properties": {
        "openapi": {"type": "string"},
        "info": {"type": "object"},
        "paths": {"type": "object"},
    },
    "description": "an OpenAPI 3.1 document",
}


def setup_routes(app: web.Application) -> None:
    route(
        app,
        "GET",
        "/healthz",
        healthz,
        Operation("Liveness", {200: ("Alive", _status("ok"))}, auth=None),
        head=True,
    )
    route(
        app,
        "GET",
        "/readyz",
        readyz,
        Operation(
            "Readiness: the database answers",
            {
                200: ("Ready", _status("ready")),
                503: (
                    "Draining, or the database does not answer",
                    {
                        **_status("draining", "unavailable"),
                        "properties": {
                            "status": {"enum": ["draining", "unavailable"]},
                            "database": {"enum": ["unreachable"]},
                        },
                    },
                ),
            },
            auth=None,
        ),
        head=True,
    )
    route(
        app,
        "GET",
        "/metrics",
        metrics,
        Operation(
            "Prometheus metrics",
            {200: ("Text format 0.0.4", text("text/plain", "Prometheus exposition"))},
            auth=None,
        ),
        head=True,
    )
    route(
        app,
        "GET",
        "/openapi.json",
        openapi,
        Operation("This document", {200: ("OpenAPI 3.1", _DOCUMENT)}, auth=None),
        head=True,
    )
