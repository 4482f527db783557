"""``/v1/credentials/{id}/sms-devices``: phones running SMS Gateway for Android.

A device (and optionally one of its SIM slots) mapped to a credential is a
second route for its texts: the phone posts each one to the Android adapter's
webhook (its URL is in every device's JSON), signed with the key shown once
when the device is added.
"""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, StringConstraints

from ..roles import Access
from ..services.android import DeviceInfo
from ..timestamps import iso
from .auth import credential_of, tenant_of
from .container import SERVICES
from .inputs import json_body, object_id
from .openapi import ERROR, NOT_FOUND, Operation, listing, route
from .replies import json_response


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
    services = request.app[SERVICES]
    return services.settings.public_url + services.adapters.android_sms


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
    return json_response(out, status=201, headers={"Cache-Control": "no-store"})


async def list_devices(request: web.Request) -> web.Response:
    tenant, cred_id = await credential_of(request)
    items = await request.app[SERVICES].android.list_devices(tenant, cred_id)
    url = _webhook_url(request)
    return json_response({"sms_devices": [device_json(i, url) for i in items]})


async def delete_device(request: web.Request) -> web.Response:
    tenant, cred_id = await credential_of(request)
    await request.app[SERVICES].android.remove_device(tenant, cred_id, object_id(request, "device"))
    return web.Response(status=204)


DEVICE = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "credential_id": {"type": "string"},
        "device_id": {"type": "string"},
        "sim_number": {"type": ["integer", "null"]},
        "webhook_url": {"type": "string", "format": "uri"},
        "signing_key": {"type": "string", "description": "only when created"},
        "created_at": {"type": "string", "format": "date-time"},
    },
}


def setup_routes(app: web.Application) -> None:
    route(
        app,
        "POST",
        "/v1/credentials/{id}/sms-devices",
        add_device,
        Operation(
            "Map a phone running SMS Gateway for Android (or one SIM slot) to the "
            "credential; the signing key is shown once",
            {201: ("Mapped", DEVICE), 404: NOT_FOUND, 409: ("Taken", ERROR)},
            body=DeviceIn,
            auth=Access.CONFIGURE,
        ),
    )
    route(
        app,
        "GET",
        "/v1/credentials/{id}/sms-devices",
        list_devices,
        Operation(
            "The credential's devices",
            {200: ("Devices", listing("sms_devices", DEVICE)), 404: NOT_FOUND},
            auth=Access.USE,
        ),
    )
    route(
        app,
        "DELETE",
        "/v1/credentials/{id}/sms-devices/{device}",
        delete_device,
        Operation(
            "Unmap a device",
            {204: ("Deleted", None), 404: NOT_FOUND},
            auth=Access.CONFIGURE,
        ),
    )
