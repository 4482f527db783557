"""The owners' pages: API keys (create, shown once; revoke) and the audit log.

Both go through the same services as ``/v1/keys`` and ``/v1/audit``, with
the signed-in key as the actor, so the audit trail records which person's
key created or revoked another.  A manager gets a 403 page here, and the
navigation does not offer these pages to them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from ..api.container import SERVICES
from ..errors import Invalid, RequestError
from ..roles import TENANT_ROLES
from ..services.audit import ACTIONS
from .identity import PREFIX, Person, form, owner
from .render import render, see_other, sentence

#: Events per page of the audit log.
AUDIT_PAGE = 50
_MAX_NAME = 200


#: Audit outcomes that mean it went as asked (others are shown as warnings).
GOOD_OUTCOMES = frozenset({"ok", "succeeded", "approved"})

#: Each audit action in words, for the credential's recent activity.
ACTION_WORDS = {
    "password.read": "Password read",
    "password.set": "Password changed",
    "code.read": "Code handed to an agent",
    "authenticator.read": "Authenticator code handed to an agent",
    "link.read": "Link handed to an agent",
    "backup_code.read": "Backup code handed out",
    "authenticator.set": "Authenticator saved",
    "authenticator.removed": "Authenticator removed",
    "phone.set": "Phone number set",
    "phone.removed": "Phone number removed",
    "backup_codes.set": "Backup codes replaced",
    "credential.created": "Credential created",
    "credential.deleted": "Credential deleted",
    "key.created": "API key created",
    "key.revoked": "API key revoked",
    "interaction.answered": "Request answered",
    "login.opened": "Login started",
    "login.finished": "Login finished",
}


def actor_label(actor: dict[str, Any], key_names: dict[str, str]) -> str:
    """Who did it, in words: a key by its name, the admin, a submit link, or otpgate itself."""
    if "key_id" in actor:
        name = key_names.get(actor["key_id"])
        return f"key “{name}”" if name else f"key {actor['key_id']} (revoked)"
    if actor.get("admin"):
        return "the admin key"
    if "submit_link" in actor:
        return "a person with the request's link"
    return "otpgate"


async def key_names(request: web.Request, tenant_id: str) -> dict[str, str]:
    keys = await request.app[SERVICES].apikeys.list(tenant_id)
    return {k.id: k.name or k.prefix for k in keys}


async def keys(request: web.Request) -> web.Response:
    """GET /ui/keys: the tenant's keys (never a key itself) and a form for a new one."""
    who = owner(request)
    notice = "The key was revoked." if "revoked" in request.query else None
    return await _keys_page(request, who, notice=notice)


async def _keys_page(
    request: web.Request,
    who: Person,
    *,
    notice: str | None = None,
    error: str | None = None,
    values: dict[str, str] | None = None,
    chosen: list[str] | None = None,
    status: int = 200,
) -> web.Response:
    services = request.app[SERVICES]
    listed = await services.apikeys.list(who.tenant_id)
    credentials = await services.credentials.search(who.tenant_id, limit=500)
    names = await services.credentials.names(
        who.tenant_id, sorted({c for k in listed for c in k.credential_ids or ()})
    )
    return render(
        request,
        "keys.html",
        {
            "title": "API keys",
            "keys": listed,
            "cred_names": names,
            "roles": [r.value for r in TENANT_ROLES],
            "notice": notice,
            "error": error,
            "values": values or {},
            "own_key": who.principal.key_id,
            "credentials": credentials,
            "chosen": set(chosen or ()),
        },
        status=status,
    )


async def create_key(request: web.Request) -> web.Response:
    """POST /ui/keys: a new key, shown on the page this once."""
    who = owner(request)
    fields = await form(request)
    values = {k: fields.get(k, "").strip() for k in ("name", "role", "expires")}
    limited = fields.getall("credentials", [])
    try:
        name = values["name"]
        if not name or len(name) > _MAX_NAME:
            raise Invalid(f"give the key a name of 1 to {_MAX_NAME} characters")
        if values["role"] not in {r.value for r in TENANT_ROLES}:
            raise Invalid("choose a role: owner, manager or agent")
        expires_at = _expiry(values["expires"])
        new = await request.app[SERVICES].apikeys.create(
            who.tenant_id,
            who.principal.actor,
            name=name,
            role=values["role"],
            credential_ids=limited or None,
            expires_at=expires_at,
        )
    except RequestError as exc:
        return await _keys_page(
            request, who, error=sentence(exc.message), values=values, chosen=limited, status=422
        )
    return render(request, "key_created.html", {"title": "New API key", "new": new})


def _expiry(raw: str) -> float | None:
    """A ``YYYY-MM-DD`` date (the key ends at that day's end, UTC), or None for no expiry."""
    if not raw:
        return None
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise Invalid("the expiry date must be a date such as 2027-01-31") from None
    end = dt.datetime.combine(day, dt.time.max, tzinfo=dt.UTC)
    return end.timestamp()


async def revoke_key(request: web.Request) -> web.StreamResponse:
    """POST /ui/keys/{id}/revoke: the key stops working everywhere within a second."""
    who = owner(request)
    await form(request)
    key_id = request.match_info["id"]
    try:
        await request.app[SERVICES].apikeys.revoke(who.tenant_id, who.principal.actor, key_id)
    except RequestError as exc:
        return await _keys_page(request, who, error=sentence(exc.message), status=409)
    return see_other(f"{PREFIX}/keys?revoked=1")


async def audit(request: web.Request) -> web.Response:
    """GET /ui/audit?credential=&action=&after=: the audit trail, filtered, a page at a time."""
    who = owner(request)
    services = request.app[SERVICES]
    credential = request.query.get("credential", "").strip()[:40] or None
    action = request.query.get("action", "").strip() or None
    if action is not None and action not in ACTIONS:
        action = None
    raw_after = request.query.get("after", "0")
    after = int(raw_after) if raw_after.isdigit() and len(raw_after) < 19 else 0
    page = await services.audit.page(
        who.tenant_id, after=after, limit=AUDIT_PAGE, credential_id=credential, action=action
    )
    names = await key_names(request, who.tenant_id)
    creds = await services.credentials.search(who.tenant_id, limit=500)
    cred_names = {c.id: c.name for c in creds}
    rows = [
        {
            "seq": e["seq"],
            "at": timestamp(e["at"]),
            "actor": actor_label(e["actor"], names),
            "action": e["action"],
            "credential_id": e["credential_id"],
            "credential": cred_names.get(e["credential_id"] or "", e["credential_id"]),
            "object_id": e["object_id"],
            "outcome": e["outcome"],
            "good": e["outcome"] in GOOD_OUTCOMES,
        }
        for e in page.events
    ]
    return render(
        request,
        "audit.html",
        {
            "title": "Audit log",
            "events": rows,
            "next": page.next,
            "after": after,
            "credential": credential or "",
            "action": action or "",
            "actions": ACTIONS,
            "credentials": creds,
        },
    )


def timestamp(iso: str) -> float:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/keys", keys)
    app.router.add_post("/keys", create_key)
    app.router.add_post("/keys/{id}/revoke", revoke_key)
    app.router.add_get("/audit", audit)
