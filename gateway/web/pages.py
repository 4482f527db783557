"""The home page, the open requests a person answers, and the webhooks.

Answering a request here goes through the interaction service exactly as the
API's ``POST /v1/interactions/{id}/code`` (or, for an approval, its decision
route) does: the same checks, the same count of tries, the same wake-up of
the agent waiting for the answer.
"""

from __future__ import annotations

from aiohttp import web

from ..api.container import SERVICES
from ..api.errors import status_of
from ..errors import Conflict, Expired, Invalid, NotFound, RateLimited, RequestError
from ..services.interactions import MAX_CODE
from .charts import Series, bar_chart
from .identity import PREFIX, form, maybe_person, person, whole_tenant
from .render import render, see_other, sentence
from .signin import sign_in_page

#: Each attempt's outcome in words, and whether it went well.
ATTEMPT_OUTCOMES = {
    "delivered": ("delivered", True),
    "retrying": ("failed, will retry", False),
    "given_up": ("failed, given up", False),
    "disabled": ("endpoint disabled (410 Gone)", False),
}

#: Channels in the order the charts stack them, with their colour class and label.
CHANNELS = (("email", "series-1", "emails"), ("sms", "series-2", "texts"))


async def home(request: web.Request) -> web.Response:
    """GET /ui/: the sign-in form, or (signed in) the messages of the last 30 days."""
    if maybe_person(request) is None:
        return sign_in_page(request)
    who = person(request)
    services = request.app[SERVICES]
    daily = await services.message_counts.daily(who.tenant_id, only=who.principal.credential_ids)
    known = [c for c, _, _ in CHANNELS]
    series = [
        Series(label, css, [c.messages for c in daily.per_day(channel)])
        for channel, css, label in CHANNELS
    ]
    others = sorted(set(daily.channels) - set(known))
    for k, channel in enumerate(others):
        series.append(
            Series(channel, f"series-{3 + k % 2}", [c.messages for c in daily.per_day(channel)])
        )
    chart = bar_chart(daily.days, series, stacked=True, what="messages received")
    totals = [(label, daily.total(channel)) for channel, _, label in CHANNELS]
    totals += [(channel, daily.total(channel)) for channel in others]
    open_requests = await services.interactions.open_requests(who.tenant_id)
    visible = [r for r in open_requests if who.may_see(r.interaction.credential_id)]
    return render(
        request,
        "home.html",
        {
            "title": "Home",
            "chart": chart,
            "totals": totals,
            "all": daily.total(),
            "open_count": len(visible),
        },
    )


async def interactions(request: web.Request) -> web.Response:
    """GET /ui/interactions: the open requests, each with its time left and a form to answer."""
    notice = None
    if request.query.get("answered"):
        notice = "The code was passed on to the agent."
    elif request.query.get("decided") in ("approved", "denied"):
        notice = f"The sign-in was {request.query['decided']}; the agent knows."
    return await _interactions_page(request, notice=notice)


async def _interactions_page(
    request: web.Request,
    *,
    notice: str | None = None,
    error_for: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> web.Response:
    who = person(request)
    found = await request.app[SERVICES].interactions.open_requests(who.tenant_id)
    rows = [r for r in found if who.may_see(r.interaction.credential_id)]
    return render(
        request,
        "interactions.html",
        {
            "title": "Interactions",
            "requests": rows,
            "notice": notice,
            "error_for": error_for,
            "error": error,
            "max_code": MAX_CODE,
        },
        status=status,
    )


async def answer(request: web.Request) -> web.StreamResponse:
    """POST /ui/interactions/{id}/code: a person's answer, as the API takes it."""
    return await _respond(request, "code", "answered=1")


async def decide(request: web.Request) -> web.StreamResponse:
    """POST /ui/interactions/{id}/decision: a person approves or denies, as the API takes it."""
    return await _respond(request, "decision", "decided={}")


async def _respond(request: web.Request, field: str, done: str) -> web.StreamResponse:
    """Hand the form's *field* to the interaction service; back to the list, or the reason.

    *done* is the list's query afterwards (``{}`` stands for the value given).
    """
    who = person(request)
    interaction_id = request.match_info["id"]
    value = (await form(request)).get(field, "")
    interactions = request.app[SERVICES].interactions
    try:
        info = await interactions.get(who.tenant_id, interaction_id)
        if not who.may_see(info.credential_id):
            raise NotFound("no such interaction")
        act = interactions.submit if field == "code" else interactions.decide
        await act(who.tenant_id, interaction_id, value, actor=who.principal.actor)
    except (Invalid, NotFound, Conflict, Expired, RateLimited) as exc:
        return await _answer_refused(request, interaction_id, exc, status_of(exc))
    return see_other(f"{PREFIX}/interactions?{done.format(value)}")


async def _answer_refused(
    request: web.Request, interaction_id: str, exc: RequestError, status: int
) -> web.Response:
    return await _interactions_page(
        request, error_for=interaction_id, error=sentence(exc.message), status=status
    )


async def webhooks(request: web.Request) -> web.Response:
    """GET /ui/webhooks: the endpoints and the deliveries still on their way (never a secret)."""
    who = whole_tenant(person(request))
    services = request.app[SERVICES]
    endpoints = await services.webhook_endpoints.list(who.tenant_id)
    queued = await services.webhook_endpoints.queued(who.tenant_id)
    attempts = await services.webhook_endpoints.recent_attempts(who.tenant_id)
    urls = {e.id: e.url for e in endpoints}
    return render(
        request,
        "webhooks.html",
        {
            "title": "Webhooks",
            "endpoints": endpoints,
            "queued": queued,
            "attempts": attempts,
            "urls": urls,
            "outcomes": ATTEMPT_OUTCOMES,
        },
    )


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/", home)
    app.router.add_get("/interactions", interactions)
    app.router.add_post("/interactions/{id}/code", answer)
    app.router.add_post("/interactions/{id}/decision", decide)
    app.router.add_get("/webhooks", webhooks)
