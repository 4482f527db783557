"""Interactions: an agent asks a person for a code, the person answers.

With the tenant's API key:

- ``POST /v1/credentials/{id}/interactions`` opens one (``submit_url`` in the answer);
- ``GET /v1/interactions/{id}`` shows it;
- ``POST /v1/interactions/{id}/code`` answers it;
- ``GET /v1/interactions/{id}/code?wait=`` hands the answer to the agent, once.

Without a key, at ``submit_url`` (``/submit/{token}``): ``GET`` shows a form
(see ``submit_page``) and ``POST`` answers it, as a form (an HTML page back)
or as JSON (204, or the contract's JSON errors).  The token in the URL is
the authority, so a cross-site post would need it already; still, a POST
whose ``Origin`` is not the gateway's public origin is refused (403).
"""

from __future__ import annotations

import math
import time
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

from aiohttp import web
from pydantic import BaseModel, ConfigDict, StringConstraints

from ..errors import BadInput, Forbidden, Invalid, RateLimited, RequestError
from ..roles import Access
from ..services.interactions import InteractionInfo
from ..timestamps import iso, iso_or_none
from ..validation import origin_header, origin_of
from . import submit_page
from .auth import actor_of, attempt, credential_of, interaction_of
from .container import SERVICES
from .errors import status_of
from .inputs import json_body, json_object, json_raw, read_capped, validate, wait_of
from .openapi import ERROR, NOT_FOUND, Answer, Operation, query, route, text
from .replies import json_response

#: Largest body the submit URL reads: a code is at most 64 characters.
MAX_SUBMIT_BODY = 4096
_FORM = "application/x-www-form-urlencoded"
_JSON = "application/json"
_NO_STORE = {"Cache-Control": "no-store"}


class InteractionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    prompt: Annotated[str, StringConstraints(max_length=500)] | None = None
    kind: Literal["code", "approval"] = "code"
    match: Annotated[str, StringConstraints(max_length=64)] | None = None


class CodeIn(BaseModel):
    """An answer.  Its content is checked (and counted as a try) by the service."""

    model_config = ConfigDict(extra="forbid", strict=True)
    code: Annotated[str, StringConstraints(max_length=MAX_SUBMIT_BODY)]


class DecisionIn(BaseModel):
    """A person's decision on an approval."""

    model_config = ConfigDict(extra="forbid", strict=True)
    decision: Literal["approved", "denied"]


#: The contract's statuses: a code given is ``answered``, whether taken yet or not.
_STATUS = {"submitted": "answered", "delivered": "answered"}


def interaction_json(info: InteractionInfo) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": info.id,
        "credential_id": info.credential_id,
        "kind": info.kind,
        "status": _STATUS.get(info.status, info.status),
        # An answered code request: whether an agent took the code already.
        "delivered": info.status == "delivered",
        "prompt": info.prompt,
        "attempts": info.attempts,
        "created_at": iso(info.created_at),
        "expires_at": iso(info.expires_at),
        "submitted_at": iso_or_none(info.submitted_at),
    }
    if info.submit_url is not None:
        body["submit_url"] = info.submit_url
    return body


# -- with the tenant's key -----------------------------------------------------------


async def create_interaction(request: web.Request) -> web.Response:
    tenant, cred_id = await credential_of(request)
    raw = await json_raw(request)
    body = InteractionIn() if not raw.strip() else validate(InteractionIn, json_object(raw))
    info = await request.app[SERVICES].interactions.create(
        tenant, cred_id, prompt=body.prompt, kind=body.kind, match=body.match
    )
    # The answer holds the submit URL's token: keep it out of every cache.
    return json_response(interaction_json(info), status=201, headers=_NO_STORE)


async def get_interaction(request: web.Request) -> web.Response:
    tenant, interaction_id = await interaction_of(request)
    wait = wait_of(request)
    info = await request.app[SERVICES].interactions.get(tenant, interaction_id, wait=wait)
    return json_response(interaction_json(info))


async def decide(request: web.Request) -> web.Response:
    tenant, interaction_id = await interaction_of(request)
    body = await json_body(request, DecisionIn)
    await request.app[SERVICES].interactions.decide(
        tenant, interaction_id, body.decision, actor=actor_of(request)
    )
    return web.Response(status=204)


async def submit_code(request: web.Request) -> web.Response:
    tenant, interaction_id = await interaction_of(request)
    body = await json_body(request, CodeIn)
    await request.app[SERVICES].interactions.submit(
        tenant, interaction_id, body.code, actor=actor_of(request)
    )
    return web.Response(status=204)


async def take_code(request: web.Request) -> web.Response:
    tenant, interaction_id = await interaction_of(request)
    wait = wait_of(request)
    services = request.app[SERVICES]
    code = await services.interactions.take(
        tenant, interaction_id, wait=wait, actor=actor_of(request)
    )
    if code is None:
        return web.Response(status=204)
    services.metrics.codes_delivered.inc(code.source)
    if code.received_at is not None:
        services.metrics.code_wait.observe(max(0.0, time.time() - code.received_at))
    return json_response(
        {"code": code.code, "submitted_at": iso_or_none(code.received_at)}, headers=_NO_STORE
    )


# -- at the submit URL (no key: the token is the authority) ----------------------------


async def submit_form(request: web.Request) -> web.Response:
    """The page a person answers on."""
    interactions = request.app[SERVICES].interactions
    token = request.match_info["token"]
    try:
        async with attempt(request, token, "links"):
            page = await interactions.page(token)
    except RequestError as exc:
        return _refused(exc)
    if page.status in ("submitted", "delivered", "approved", "denied"):
        return submit_page.refusal(409)
    if page.status == "expired":
        return submit_page.refusal(410)
    if page.attempts_left == 0:
        return submit_page.refusal(429)
    if page.kind == "approval":
        return submit_page.approval(page)
    return submit_page.form(page)


async def submit_answer(request: web.Request) -> web.StreamResponse:
    """A person's answer: a form post gets an HTML page back, a JSON post 204 or JSON."""
    is_form = request.content_type == _FORM
    token = request.match_info["token"]
    interactions = request.app[SERVICES].interactions
    try:
        _check_origin(request)
        if request.content_type not in (_FORM, _JSON):
            raise web.HTTPUnsupportedMediaType(
                reason=f"send the code as {_FORM} or {_JSON}",
            )
        async with attempt(request, token, "links"):
            await interactions.page(token)
        raw = await read_capped(request, MAX_SUBMIT_BODY)
    except RequestError as exc:
        if is_form:
            return _refused(exc)
        raise
    if not is_form:
        data = json_object(raw)
        if "decision" in data:
            decision = validate(DecisionIn, data)
            await interactions.decide_by_token(token, decision.decision)
        else:
            body = validate(CodeIn, data)
            await interactions.submit_by_token(token, body.code)
        return web.Response(status=204, headers=_NO_STORE)
    fields = _form_fields(raw)
    if "decision" in fields:
        try:
            await interactions.decide_by_token(token, fields["decision"])
        except RequestError as exc:
            return submit_page.refusal(status_of(exc), exc.message)
        return submit_page.decided(fields["decision"])
    try:
        await interactions.submit_by_token(token, fields.get("code", ""))
    except Invalid as exc:
        # Show the form again, with the reason and the tries left.
        try:
            page = await interactions.page(token)
        except RequestError as again:
            return submit_page.refusal(status_of(again), again.message)
        if page.attempts_left == 0:
            return submit_page.refusal(429)
        return submit_page.form(page, error=exc.message, status=422)
    except RequestError as exc:
        return submit_page.refusal(status_of(exc), exc.message)
    return submit_page.done()


def _refused(exc: RequestError) -> web.Response:
    """The page for a refusal, with ``Retry-After`` when the address must wait."""
    response = submit_page.refusal(status_of(exc), exc.message)
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    return response


def _check_origin(request: web.Request) -> None:
    """Refuse a post that a page of another origin made (a missing Origin is allowed)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return
    if origin_header(origin) != origin_of(request.app[SERVICES].settings.public_url):
        raise Forbidden("this form can only be sent from its own page", code="cross_origin")


def _form_fields(raw: bytes) -> dict[str, str]:
    """A form body's fields, the first value of each (a missing ``code`` counts as a wrong try)."""
    try:
        fields = parse_qs(
            raw.decode("utf-8"), keep_blank_values=True, errors="strict", max_num_fields=10
        )
    except ValueError:  # bad UTF-8 or percent-escapes, or too many fields
        raise BadInput("the form could not be read") from None
    return {name: values[0] for name, values in fields.items()}


INTERACTION = {
    "type": "object",
    "required": ["id", "status", "expires_at"],
    "properties": {
        "id": {"type": "string"},
        "credential_id": {"type": "string"},
        "kind": {"enum": ["code", "approval"]},
        "status": {"enum": ["pending", "answered", "approved", "denied", "expired"]},
        "delivered": {"type": "boolean", "description": "an answered code was taken"},
        "prompt": {"type": ["string", "null"]},
        "attempts": {"type": "integer", "description": "answers tried (at most 5)"},
        "created_at": {"type": "string", "format": "date-time"},
        "expires_at": {
            "type": "string",
            "format": "date-time",
            "description": "pending: the time to answer; submitted: the time the code "
            "waits for its agent",
        },
        "submitted_at": {"type": ["string", "null"], "format": "date-time"},
        "submit_url": {
            "type": "string",
            "format": "uri",
            "description": "only when created: where a person answers, without a key",
        },
    },
}
_ANSWERED: Answer = ("A code was already given", ERROR)
_EXPIRED: Answer = ("Expired", ERROR)
_TRIES: Answer = ("Five tries were used up", ERROR)
_HTML = text("text/html", "an HTML page")


def _page_or_error(description: str) -> Answer:
    """An error the submit page answers as an HTML page to a form, as JSON to JSON."""
    return (description, text("text/html", "an HTML page", or_json=ERROR))


def setup_routes(app: web.Application) -> None:
    route(
        app,
        "POST",
        "/v1/credentials/{id}/interactions",
        create_interaction,
        Operation(
            "Ask a person for a code: queues interaction.code_required with the "
            "submit_url (the body may be empty)",
            {201: ("Opened", INTERACTION), 404: NOT_FOUND},
            body=InteractionIn,
            optional_body=True,
            auth=Access.USE,
        ),
    )
    route(
        app,
        "GET",
        "/v1/interactions/{id}",
        get_interaction,
        Operation(
            "One interaction; with 'wait', as soon as it is no longer pending",
            {200: ("Found", INTERACTION), 404: NOT_FOUND},
            params=[
                query(
                    "wait",
                    {"type": "number", "minimum": 0, "maximum": 300},
                    "seconds to wait for the status to leave pending",
                )
            ],
            auth=Access.USE,
        ),
    )
    route(
        app,
        "POST",
        "/v1/interactions/{id}/decision",
        decide,
        Operation(
            "Approve or deny an approval request",
            {
                204: ("Recorded", None),
                404: NOT_FOUND,
                409: ("Decided already", ERROR),
                410: _EXPIRED,
                422: ("Not an approval, or not approved/denied", ERROR),
            },
            body=DecisionIn,
            auth=Access.USE,
        ),
    )
    route(
        app,
        "POST",
        "/v1/interactions/{id}/code",
        submit_code,
        Operation(
            "Answer with a code (1 to 64 printable characters, trimmed)",
            {204: ("Stored", None), 404: NOT_FOUND, 409: _ANSWERED, 410: _EXPIRED, 429: _TRIES},
            body=CodeIn,
            auth=Access.USE,
        ),
    )
    route(
        app,
        "GET",
        "/v1/interactions/{id}/code",
        take_code,
        Operation(
            "The answer, handed out once (also by GET /v1/credentials/{id}/code)",
            {
                200: (
                    "The code",
                    {
                        "type": "object",
                        "required": ["code"],
                        "properties": {"code": {"type": "string"}},
                    },
                ),
                204: ("No answer within 'wait'", None),
                404: NOT_FOUND,
                410: ("Expired, or its code was already handed out", ERROR),
            },
            params=[
                query(
                    "wait",
                    {"type": "number", "minimum": 0, "maximum": 300},
                    "seconds to hold the request open for the answer",
                )
            ],
            auth=Access.SECRET,
        ),
    )
    route(
        app,
        "GET",
        "/submit/{token}",
        submit_form,
        Operation(
            "The form a person answers on (HTML; 404, 409, 410, 429 as HTML pages)",
            {
                200: ("The form", _HTML),
                404: ("Unknown token", _HTML),
                409: ("Already answered", _HTML),
                410: ("Expired", _HTML),
                429: ("Five tries were used up", _HTML),
            },
            auth=None,
        ),
    )
    route(
        app,
        "POST",
        "/submit/{token}",
        submit_answer,
        Operation(
            "Answer: JSON {code} or {decision} -> 204, or a form (code=... or "
            "decision=approved|denied) -> an HTML page",
            {
                200: ("Form: the confirmation page", _HTML),
                204: ("JSON: stored", None),
                400: _page_or_error("Malformed JSON or form"),
                403: _page_or_error("Posted from another origin"),
                404: _page_or_error("Unknown token"),
                409: _page_or_error(_ANSWERED[0]),
                410: _page_or_error(_EXPIRED[0]),
                413: _page_or_error("Body over 4 KB"),
                415: ("Neither JSON nor a form", ERROR),
                422: _page_or_error("Not 1 to 64 printable characters (counts as a try)"),
                429: _page_or_error(_TRIES[0]),
            },
            form=CodeIn,
            auth=None,
        ),
    )
