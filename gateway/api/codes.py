"""``GET /v1/credentials/{id}/code``: what an agent calls to get its code."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from ..errors import Invalid
from ..roles import Access
from ..services.codes import AUTHENTICATOR_SOURCES, RECEIVED_SOURCES, Code, Link
from ..timestamps import iso
from .auth import actor_of, credential_of
from .container import SERVICES
from .inputs import MAX_WAIT, query_number, query_time, wait_of
from .openapi import NOT_FOUND, Operation, query, route
from .replies import json_response


async def get_code(request: web.Request) -> web.Response:
    tenant, cred_id = await credential_of(request)
    wait = wait_of(request)
    min_validity = int(
        query_number(request, "min_validity", default=0, low=0, high=MAX_WAIT, integer=True)
    )
    since = query_time(request, "since")
    source = request.query.get("source")  # an empty value is no source: 422
    if source is not None and source not in AUTHENTICATOR_SOURCES + RECEIVED_SOURCES:
        raise Invalid("'source' must be one of totp, hotp, email, sms, user")
    services = request.app[SERVICES]
    code = await services.codes.code(
        tenant,
        cred_id,
        wait=wait,
        since=since,
        source=source,
        min_validity=min_validity,
        actor=actor_of(request),
    )
    if code is None:
        return web.Response(status=204)
    services.metrics.codes_delivered.inc(code.source)
    if code.received_at is not None:
        services.metrics.code_wait.observe(max(0.0, time.time() - code.received_at))
    return json_response(code_json(code), headers={"Cache-Control": "no-store"})


def code_json(code: Code) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code.code, "source": code.source}
    if code.expires_at is not None:
        body["expires_at"] = iso(code.expires_at)
    if code.received_at is not None:
        body["received_at"] = iso(code.received_at)
        body["sender"] = code.sender
    return body


def link_json(link: Link) -> dict[str, Any]:
    return {
        "url": link.url,
        "kind": link.kind,
        "source": link.source,
        "received_at": iso(link.received_at),
        "sender": link.sender,
    }


async def get_link(request: web.Request) -> web.Response:
    tenant, cred_id = await credential_of(request)
    wait = wait_of(request)
    since = query_time(request, "since")
    link = await request.app[SERVICES].codes.link(
        tenant, cred_id, wait=wait, since=since, actor=actor_of(request)
    )
    if link is None:
        return web.Response(status=204)
    return json_response(link_json(link), headers={"Cache-Control": "no-store"})


CODE = {
    "type": "object",
    "required": ["code", "source"],
    "properties": {
        "code": {"type": "string"},
        "source": {"enum": ["totp", "hotp", "email", "sms", "user"]},
        "expires_at": {"type": "string", "format": "date-time"},
        "received_at": {"type": "string", "format": "date-time"},
        "sender": {"type": ["string", "null"]},
    },
}


LINK = {
    "type": "object",
    "required": ["url", "source", "received_at"],
    "properties": {
        "url": {"type": "string"},
        "kind": {"enum": ["sign_in", "confirm", "approve", "reset", None]},
        "source": {"enum": ["email", "sms"]},
        "received_at": {"type": "string", "format": "date-time"},
        "sender": {"type": ["string", "null"]},
    },
}


def setup_routes(app: web.Application) -> None:
    route(
        app,
        "GET",
        "/v1/credentials/{id}/link",
        get_link,
        Operation(
            "The newest sign-in or confirmation link received, handed out once",
            {200: ("A link", LINK), 204: ("None within 'wait'", None), 404: NOT_FOUND},
            params=[
                query(
                    "wait",
                    {"type": "number", "minimum": 0, "maximum": 300},
                    "seconds to hold the request open for a link",
                ),
                query(
                    "since",
                    {"type": "string", "format": "date-time"},
                    "only links received at or after this time",
                ),
            ],
            auth=Access.SECRET,
        ),
    )
    route(
        app,
        "GET",
        "/v1/credentials/{id}/code",
        get_code,
        Operation(
            "The current code for the agent",
            {200: ("A code", CODE), 204: ("No code within 'wait'", None), 404: NOT_FOUND},
            params=[
                query(
                    "wait",
                    {"type": "number", "minimum": 0, "maximum": 300},
                    "seconds to hold the request open for a code",
                ),
                query(
                    "since",
                    {"type": "string", "format": "date-time"},
                    "only codes received at or after this time",
                ),
                query(
                    "source",
                    {"enum": ["totp", "hotp", "email", "sms", "user"]},
                    "only codes from this source",
                ),
                query(
                    "min_validity",
                    {"type": "integer", "minimum": 0},
                    "TOTP: wait for the next step rather than hand out a code "
                    "expiring sooner than this many seconds",
                ),
            ],
            auth=Access.SECRET,
        ),
    )
