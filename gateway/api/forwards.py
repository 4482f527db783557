"""``/v1/credentials/{id}/forwards`` and ``/v1/credentials/{id}/sms-devices``.

Forwarding rules copy each message reaching a credential to a person; SMS
devices map a phone running SMS Gateway for Android (and optionally one of
its SIM slots) to the credential, as a second route for texts.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, StringConstraints

from ..services.forwards import ForwardInfo
from ..services.sms import DeviceInfo
from .base import SERVICES, iso, json_body, object_id, tenant_of


class ForwardIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    channel: Literal["email", "sms"]
    to: Annotated[str, StringConstraints(min_length=1, max_length=320)]


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    device_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    sim_number: int | None = None
    signing_key: Annotated[str, StringConstraints(max_length=256)] | None = None


def forward_json(info: ForwardInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "credential_id": info.credential_id,
        "channel": info.channel,
        "to": info.to,
        "created_at": iso(info.created_at),
        "last_status": info.last_status,
        "last_error": info.last_error,
        "last_attempt_at": iso(info.last_attempt_at),
        "pending": info.pending,
    }


def device_json(info: DeviceInfo, webhook_url: str) -> dict[str, Any]:
    return {
        "id": info.id,
        "credential_id": info.credential_id,
        "device_id": info.device_id,
        "sim_number": info.sim_number,
        "webhook_url": webhook_url,
        "created_at": iso(info.created_at),
    }


async def create_forward(request: web.Request) -> web.Response:
    tenant = await tenant_of(request)
    cred_id = object_id(request)
    body = await json_body(request, ForwardIn)
    info = await request.app[SERVICES].forwards.create(
        tenant, cred_id, channel=body.channel, to=body.to
    )
    return web.json_response(forward_json(info), status=201)


async def list_forwards(request: web.Request) -> web.Response:
    tenant = await tenant_of(request)
    items = await request.app[SERVICES].forwards.list(tenant, object_id(request))
    return web.json_response({"forwards": [forward_json(i) for i in items]})


async def get_forward(request: web.Request) -> web.Response:
    tenant = await tenant_of(request)
    info = await request.app[SERVICES].forwards.get(
        tenant, object_id(request), object_id(request, "forward_id")
    )
    return web.json_response(forward_json(info))


async def delete_forward(request: web.Request) -> web.Response:
    tenant = await tenant_of(request)
    await request.app[SERVICES].forwards.delete(
        tenant, object_id(request), object_id(request, "forward_id")
    )
    return web.Response(status=204)


def _webhook_url(request: web.Request) -> str:
    return request.app[SERVICES].settings.public_url + "/sms/android"


async def add_device(request: web.Request) -> web.Response:
    tenant = await tenant_of(request)
    body = await json_body(request, DeviceIn)
    info, key = await request.app[SERVICES].sms.add_device(
        tenant,
        object_id(request),
        device_id=body.device_id,
        sim_number=body.sim_number,
        signing_key=body.signing_key,
    )
    out = device_json(info, _webhook_url(request))
    out["signing_key"] = key  # shown once: the app must be given the same key
    return web.json_response(out, status=201, headers={"Cache-Control": "no-store"})


async def list_devices(request: web.Request) -> web.Response:
    tenant = await tenant_of(request)
    items = await request.app[SERVICES].sms.list_devices(tenant, object_id(request))
    url = _webhook_url(request)
    return web.json_response({"sms_devices": [device_json(i, url) for i in items]})


async def delete_device(request: web.Request) -> web.Response:
    tenant = await tenant_of(request)
    await request.app[SERVICES].sms.remove_device(
        tenant, object_id(request), object_id(request, "device")
    )
    return web.Response(status=204)


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/v1/credentials/{id}/forwards", create_forward)
    app.router.add_get("/v1/credentials/{id}/forwards", list_forwards, allow_head=False)
    app.router.add_get("/v1/credentials/{id}/forwards/{forward_id}", get_forward, allow_head=False)
    app.router.add_delete("/v1/credentials/{id}/forwards/{forward_id}", delete_forward)
    app.router.add_post("/v1/credentials/{id}/sms-devices", add_device)
    app.router.add_get("/v1/credentials/{id}/sms-devices", list_devices, allow_head=False)
    app.router.add_delete("/v1/credentials/{id}/sms-devices/{device}", delete_device)
