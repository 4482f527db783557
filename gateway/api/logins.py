"""Login attempts: ``/v1/credentials/{id}/logins`` and ``/v1/logins/{id}``."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from ..roles import Access
from ..services.logins import LoginInfo
from ..timestamps import iso, iso_or_none
from .auth import actor_of, credential_of, login_of
from .codes import CODE, LINK, code_json, link_json
from .container import SERVICES
from .inputs import MAX_WAIT, json_body, json_object, json_raw, validate, wait_of
from .openapi import ERROR, NOT_FOUND, Operation, query, route
from .replies import json_response


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    ttl: Annotated[int, Field(ge=1, le=900)] = 300
    wait: Annotated[float, Field(ge=0, le=MAX_WAIT)] = 0


class FinishIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    outcome: Literal["succeeded", "failed"]


def login_json(info: LoginInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "credential_id": info.credential_id,
        "status": info.status,
        "started_at": iso(info.started_at),
        "expires_at": iso(info.expires_at),
        "finished_at": iso_or_none(info.finished_at),
    }


_NO_STORE = {"Cache-Control": "no-store"}


async def open_login(request: web.Request) -> web.Response:
    tenant, cred_id = await credential_of(request)
    raw = await json_raw(request)
    body = LoginIn() if not raw.strip() else validate(LoginIn, json_object(raw))
    info = await request.app[SERVICES].logins.open(
        tenant, cred_id, ttl=body.ttl, wait=body.wait, actor=actor_of(request)
    )
    return json_response(login_json(info), status=201)


async def get_login(request: web.Request) -> web.Response:
    tenant, login_id = await login_of(request)
    return json_response(login_json(await request.app[SERVICES].logins.get(tenant, login_id)))


async def login_code(request: web.Request) -> web.Response:
    tenant, login_id = await login_of(request)
    wait = wait_of(request)
    services = request.app[SERVICES]
    code = await services.logins.code(tenant, login_id, wait=wait, actor=actor_of(request))
    if code is None:
        return web.Response(status=204)
    services.metrics.codes_delivered.inc(code.source)
    if code.received_at is not None:
        services.metrics.code_wait.observe(max(0.0, time.time() - code.received_at))
    return json_response(code_json(code), headers=_NO_STORE)


async def login_link(request: web.Request) -> web.Response:
    tenant, login_id = await login_of(request)
    wait = wait_of(request)
    link = await request.app[SERVICES].logins.link(
        tenant, login_id, wait=wait, actor=actor_of(request)
    )
    if link is None:
        return web.Response(status=204)
    return json_response(link_json(link), headers=_NO_STORE)


async def reject(request: web.Request) -> web.Response:
    tenant, login_id = await login_of(request)
    await request.app[SERVICES].logins.reject(tenant, login_id)
    return web.Response(status=204)


async def finish(request: web.Request) -> web.Response:
    tenant, login_id = await login_of(request)
    body = await json_body(request, FinishIn)
    info = await request.app[SERVICES].logins.finish(
        tenant, login_id, body.outcome, actor=actor_of(request)
    )
    return json_response(login_json(info))


LOGIN = {
    "type": "object",
    "required": ["id", "credential_id", "status", "started_at", "expires_at"],
    "properties": {
        "id": {"type": "string"},
        "credential_id": {"type": "string"},
        "status": {"enum": ["open", "succeeded", "failed"]},
        "started_at": {"type": "string", "format": "date-time"},
        "expires_at": {"type": "string", "format": "date-time"},
        "finished_at": {"type": ["string", "null"], "format": "date-time"},
    },
}
_FINISHED = ("The login has finished (login_finished)", ERROR)
_WAIT = query(
    "wait", {"type": "number", "minimum": 0, "maximum": MAX_WAIT}, "seconds to wait for one"
)


def setup_routes(app: web.Application) -> None:
    route(
        app,
        "POST",
        "/v1/credentials/{id}/logins",
        open_login,
        Operation(
            "Open a login: the credential's codes and links go to it alone",
            {
                201: ("Opened", LOGIN),
                404: NOT_FOUND,
                409: ("Another login is open (login_in_progress)", ERROR),
            },
            body=LoginIn,
            optional_body=True,
            auth=Access.USE,
        ),
    )
    route(
        app,
        "GET",
        "/v1/logins/{id}",
        get_login,
        Operation("One login", {200: ("Found", LOGIN), 404: NOT_FOUND}, auth=Access.USE),
    )
    route(
        app,
        "GET",
        "/v1/logins/{id}/code",
        login_code,
        Operation(
            "A code that arrived since the login opened (TOTP: a step not refused)",
            {200: ("A code", CODE), 204: ("None within 'wait'", None), 404: NOT_FOUND,
             410: _FINISHED},
            params=[_WAIT],
            auth=Access.SECRET,
        ),
    )  # fmt: skip
    route(
        app,
        "GET",
        "/v1/logins/{id}/link",
        login_link,
        Operation(
            "A link that arrived since the login opened",
            {200: ("A link", LINK), 204: ("None within 'wait'", None), 404: NOT_FOUND,
             410: _FINISHED},
            params=[_WAIT],
            auth=Access.SECRET,
        ),
    )  # fmt: skip
    route(
        app,
        "POST",
        "/v1/logins/{id}/reject",
        reject,
        Operation(
            "The site refused the code or link handed out last: only a newer one comes next",
            {
                204: ("Recorded", None),
                404: NOT_FOUND,
                409: ("Nothing handed out to reject (nothing_handed_out)", ERROR),
                410: _FINISHED,
            },
            auth=Access.USE,
        ),
    )
    route(
        app,
        "POST",
        "/v1/logins/{id}/finish",
        finish,
        Operation(
            "Finish the login; the credential is free again",
            {200: ("Finished", LOGIN), 404: NOT_FOUND, 409: _FINISHED},
            body=FinishIn,
            auth=Access.USE,
        ),
    )
