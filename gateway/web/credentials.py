"""The credentials: a searchable list, a form for a new one, and one credential's page.

A credential's page shows its factors at a glance (whether a password is
set, never the password; the authenticator's kind, never its secret; the
inbox; the phone number; backup codes), its forwarding rules with their last
delivery, its open requests, its recent activity and a chart of the codes
it received and the logins made with it.  Its "Authenticator" form takes an
``otpauth://`` URI or a QR image (a photo or screenshot of the enrolment
code, up to 5 MB).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .. import enrolment, otp
from ..api.container import SERVICES
from ..api.credentials import CredentialIn
from ..api.inputs import validate
from ..errors import BadInput, Invalid, NotFound, RequestError, TooLarge
from ..services.credentials import CredentialInfo
from ..services.interactions import MAX_CODE
from .charts import Series, bar_chart
from .identity import PREFIX, Person, form, person, upload, whole_tenant
from .owner import ACTION_WORDS, GOOD_OUTCOMES, actor_label, key_names, timestamp
from .render import render, see_other, sentence

PER_PAGE = 25
#: The audit action that marks a login made with a credential (its chart counts them).
LOGIN_FINISHED = "login.finished"
#: Largest QR image the authenticator form takes (the API's limit too).
MAX_QR_IMAGE = enrolment.MAX_IMAGE_BYTES
_MAX_QUERY = 200


def _page_number(request: web.Request) -> int:
    raw = request.query.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < int(raw) <= 10_000 else 1


async def credentials(request: web.Request) -> web.Response:
    """GET /ui/credentials?q=&page=: one row per credential, searchable, a page at a time."""
    who = person(request)
    query = request.query.get("q", "").strip()[:_MAX_QUERY]
    page = _page_number(request)
    found = await request.app[SERVICES].credentials.search(
        who.tenant_id,
        text=query or None,
        offset=(page - 1) * PER_PAGE,
        limit=PER_PAGE + 1,
        only=who.principal.credential_ids,
    )
    return render(
        request,
        "credentials.html",
        {
            "title": "Credentials",
            "credentials": found[:PER_PAGE],
            "query": query,
            "page": page,
            "has_next": len(found) > PER_PAGE,
        },
    )


async def new_credential(request: web.Request) -> web.Response:
    """GET /ui/credentials/new: the form ("Name", "Username", "Password", "Create")."""
    whole_tenant(person(request))
    return _new_form(request, {}, None)


def _new_form(
    request: web.Request, values: dict[str, str], error: str | None, status: int = 200
) -> web.Response:
    return render(
        request,
        "credential_new.html",
        {"title": "New credential", "values": values, "error": error},
        status=status,
    )


async def create_credential(request: web.Request) -> web.StreamResponse:
    """POST /ui/credentials: create it and open its page; a bad field re-renders the form."""
    who = whole_tenant(person(request))
    fields = await form(request)
    values = {k: fields.get(k, "") for k in ("name", "username")}
    data: dict[str, Any] = {"name": values["name"]}
    if values["username"].strip():
        data["username"] = values["username"].strip()
    if fields.get("password", ""):
        data["password"] = fields.get("password", "")
    try:
        body = validate(CredentialIn, data)
        info = await request.app[SERVICES].credentials.create(
            who.tenant_id,
            name=body.name,
            username=body.username,
            password=body.password,
            actor=who.principal.actor,
        )
    except RequestError as exc:
        return _new_form(request, values, sentence(exc.message), status=422)
    return see_other(f"{PREFIX}/credentials/{info.id}?created=1")


async def _credential(who: Person, request: web.Request) -> CredentialInfo:
    cred_id = request.match_info["id"]
    if not who.may_see(cred_id):
        raise NotFound("no such credential")
    return await request.app[SERVICES].credentials.get(who.tenant_id, cred_id)


async def credential(request: web.Request) -> web.Response:
    """GET /ui/credentials/{id}: the credential at a glance."""
    who = person(request)
    info = await _credential(who, request)
    notice = None
    if "created" in request.query:
        notice = "Credential created."
    elif "saved" in request.query:
        notice = "Authenticator saved."
    return await _credential_page(request, who, info, notice=notice)


async def _credential_page(
    request: web.Request,
    who: Person,
    info: CredentialInfo,
    *,
    notice: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> web.Response:
    services = request.app[SERVICES]
    forwards = await services.forward_rules.list(who.tenant_id, info.id)
    backup_codes = await services.backup_codes.remaining(who.tenant_id, info.id)
    requests = await services.interactions.open_requests(who.tenant_id, credential_id=info.id)
    daily = await services.message_counts.daily(who.tenant_id, credential_id=info.id)
    codes = [c.codes for c in daily.per_day()]
    finished = await services.audit.daily(
        who.tenant_id, actions=[LOGIN_FINISHED], credential_id=info.id, days=len(daily.days)
    )
    logins = [finished.get(day, {}).get(LOGIN_FINISHED, 0) for day in daily.days]
    activity = await _activity(request, who, info.id) if who.is_owner else None
    chart = bar_chart(
        daily.days,
        [Series("codes received", "series-1", codes), Series("logins", "series-3", logins)],
        stacked=False,
        what="codes received and logins",
    )
    return render(
        request,
        "credential.html",
        {
            "title": info.name,
            "cred": info,
            "forwards": forwards,
            "backup_codes": backup_codes,
            "requests": requests,
            "activity": activity,
            "chart": chart,
            "notice": notice,
            "error": error,
            "max_mb": MAX_QR_IMAGE // (1024 * 1024),
            "error_for": None,
            "max_code": MAX_CODE,
        },
        status=status,
    )


async def _activity(request: web.Request, who: Person, cred_id: str) -> list[dict[str, Any]]:
    """The credential's newest audit events, in words."""
    services = request.app[SERVICES]
    events = await services.audit.latest(who.tenant_id, credential_id=cred_id, limit=10)
    names = await key_names(request, who.tenant_id)
    return [
        {
            "action": e["action"],
            "label": ACTION_WORDS.get(e["action"], e["action"]),
            "actor": actor_label(e["actor"], names),
            "at": timestamp(e["at"]),
            "outcome": e["outcome"],
            "good": e["outcome"] in GOOD_OUTCOMES,
        }
        for e in events
    ]


async def save_authenticator(request: web.Request) -> web.StreamResponse:
    """POST /ui/credentials/{id}/authenticator: from a QR image or an otpauth URI."""
    who = person(request)
    info = await _credential(who, request)
    services = request.app[SERVICES]
    try:
        sent = await upload(request, file_field="qr_image", cap=MAX_QR_IMAGE)
        uri = sent.fields.get("otpauth_uri", "").strip()
        if sent.file is not None and uri:
            raise Invalid("choose a QR image or paste an otpauth URI, not both")
        if sent.file is not None:
            auth = await services.credentials.authenticator_in_image(sent.file)
        elif uri:
            auth = otp.parse_otpauth_uri(uri)
        else:
            raise Invalid("choose a QR image or paste an otpauth URI")
        await services.credentials.set_authenticator(
            who.tenant_id, info.id, auth, actor=who.principal.actor
        )
    except TooLarge as exc:
        return await _credential_page(request, who, info, error=sentence(exc.message), status=413)
    except (Invalid, BadInput) as exc:
        return await _credential_page(request, who, info, error=sentence(exc.message), status=422)
    return see_other(f"{PREFIX}/credentials/{info.id}?saved=1")


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/credentials", credentials)
    app.router.add_get("/credentials/new", new_credential)
    app.router.add_post("/credentials", create_credential)
    app.router.add_get("/credentials/{id}", credential)
    app.router.add_post("/credentials/{id}/authenticator", save_authenticator)
