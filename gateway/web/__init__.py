"""The authentication center: server-rendered pages under ``/ui`` for the people around agents.

Owners and managers sign in with their API key and work here: enrol
credentials (a password, an authenticator from its QR code), answer the codes
agents ask for, watch webhooks, and (owners) hand out and revoke keys and
read the audit trail.  The pages are Jinja2 templates through aiohttp-jinja2,
one stylesheet and one small optional script; every flow works without
JavaScript (forms post, the server redirects).

:func:`make_ui` builds the pages as a sub-application that the composition
root mounts at :data:`PREFIX` (:func:`mount`); its own middleware (``guard``) gives every
page its strict headers, its session and HTML error pages.
"""

from __future__ import annotations

from aiohttp import web

from ..api.container import SERVICES, Services
from . import credentials, docs, owner, pages, signin
from .guard import guard
from .identity import PREFIX
from .render import STATIC, see_other, setup

__all__ = ["PREFIX", "make_ui", "mount"]


def mount(app: web.Application, services: Services) -> None:
    """Serve the pages at :data:`PREFIX` of *app* (``/ui`` itself leads to ``/ui/``)."""
    app.router.add_get(PREFIX, _to_index)  # first: the sub-app would answer it with a 404
    ui = make_ui(services)
    app.add_subapp(PREFIX, ui)
    docs.setup_routes(app, ui)  # after: the stylesheet's URL carries the prefix


async def _to_index(request: web.Request) -> web.Response:
    return see_other(PREFIX + "/")


def make_ui(services: Services) -> web.Application:
    """The pages, to be mounted at :data:`PREFIX` (``app.add_subapp(PREFIX, make_ui(...))``)."""
    ui = web.Application(middlewares=[guard])
    ui[SERVICES] = services
    setup(ui)
    signin.setup_routes(ui)
    pages.setup_routes(ui)
    credentials.setup_routes(ui)
    owner.setup_routes(ui)
    ui.router.add_static("/static/", STATIC, name="static", append_version=True)
    return ui
