"""``/v1/credentials/{id}/sms-devices``: phones running SMS Gateway for Android.

A device (and optionally one of its SIM slots) mapped to a credential is a
second route for its texts: the phone posts each one to ``/sms/android``,
signed with the key shown once when the device is added.
"""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, StringConstraints

from ..services.android import DeviceInfo
from .base import SERVICES, iso, json_body, object_id, tenant_of


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    device_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    sim_number: int | None = None
    signing_key: Annotated[str, StringConstraints(max_length=256)] | None = None


def device_json(info: DeviceInfo, webhook_url: str) -> dict[str, Any]:
    return {
        "id": info.id,
        "credential_id": info.credential_id,
        "device_id": info.device_id,
        "sim_number": info.sim_number,
        "webhook_url": webhook_url,
        "created_at": iso(info.created_at),
    }


def _webhook_url(request: web.Request) -> str:
    return request.app[SERVICES].settings.public_url + "/sms/android"


async def add_device(request: web.Request) -> web.Response:
    tenant = await tenant_of(request)
    body = await json_body(request, DeviceIn)
    info, key = await request.app[SERVICES].android.add_device(
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
    items = await request.app[SERVICES].android.list_devices(tenant, object_id(request))
    url = _webhook_url(request)
    return web.json_response({"sms_devices": [device_json(i, url) for i in items]})


async def delete_device(request: web.Request) -> web.Response:
    tenant = await tenant_of(request)
    await request.app[SERVICES].android.remove_device(
        tenant, object_id(request), object_id(request, "device")
    )
    return web.Response(status=204)


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/v1/credentials/{id}/sms-devices", add_device)
    app.router.add_get("/v1/credentials/{id}/sms-devices", list_devices, allow_head=False)
    app.router.add_delete("/v1/credentials/{id}/sms-devices/{device}", delete_device)
