"""``/v1/audit``: the tenant's audit trail, oldest first, a page at a time."""

from __future__ import annotations

from aiohttp import web

from ..errors import Invalid
from ..roles import Access
from ..services.audit import ACTIONS
from .auth import tenant_of
from .container import SERVICES
from .inputs import query_number
from .openapi import Operation, query, route
from .replies import json_response

_MAX_SEQ = 2**62


async def list_events(request: web.Request) -> web.Response:
    tenant = await tenant_of(request)
    after = int(query_number(request, "after", default=0, low=0, high=_MAX_SEQ, integer=True))
    limit = int(query_number(request, "limit", default=100, low=1, high=1000, integer=True))
    credential_id = request.query.get("credential_id") or None
    if credential_id is not None and len(credential_id) > 40:
        raise Invalid("'credential_id' is not a credential id")
    action = request.query.get("action")  # an empty value names no action: 422
    if action is not None and action not in ACTIONS:
        raise Invalid(f"'action' must be one of {', '.join(ACTIONS)}")
    page = await request.app[SERVICES].audit.page(
        tenant, after=after, limit=limit, credential_id=credential_id, action=action
    )
    return json_response({"events": page.events, "next": page.next})


EVENT = {
    "type": "object",
    "required": [
        "seq",
        "at",
        "actor",
        "action",
        "credential_id",
        "object_id",
        "outcome",
        "prev_hash",
        "hash",
    ],
    "properties": {
        "seq": {"type": "integer"},
        "at": {"type": "string", "format": "date-time"},
        "actor": {"type": "object"},
        "action": {"enum": list(ACTIONS)},
        "credential_id": {"type": ["string", "null"]},
        "object_id": {"type": ["string", "null"]},
        "outcome": {"type": "string"},
        "prev_hash": {"type": "string"},
        "hash": {"type": "string"},
    },
}


def setup_routes(app: web.Application) -> None:
    route(
        app,
        "GET",
        "/v1/audit",
        list_events,
        Operation(
            "The audit trail, oldest first",
            {
                200: (
                    "A page of events; 'next' is the 'after' of the next page",
                    {
                        "type": "object",
                        "required": ["events", "next"],
                        "properties": {
                            "events": {"type": "array", "items": EVENT},
                            "next": {"type": ["integer", "null"]},
                        },
                    },
                )
            },
            params=[
                query("after", {"type": "integer", "minimum": 0}, "events after this seq"),
                query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "page size"),
                query("credential_id", {"type": "string"}, "only this credential's events"),
                query("action", {"enum": list(ACTIONS)}, "only this action"),
            ],
            auth=Access.OWNER,
        ),
    )
