"""Pages from the templates: the context every page shares, the filters, and error pages.

Templates are Jinja2 through aiohttp-jinja2, with autoescape on for every
template, so anything a tenant or an agent typed (a credential's name, a
prompt) is shown as text.  Times are shown relative to now ("3 min ago")
inside a ``<time datetime=...>`` element carrying the exact instant.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from markupsafe import Markup, escape

from ..api import submit_page
from ..timestamps import iso
from .identity import (
    PREFIX,
    PRESESSION_COOKIE,
    cookie_secure,
    csrf_seed,
    csrf_token,
    maybe_person,
    set_seed,
)

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

#: The navigation: (label, path, owners only).
NAV = (
    ("Home", "/", False),
    ("Credentials", "/credentials", False),
    ("Interactions", "/interactions", False),
    ("Webhooks", "/webhooks", False),
    ("API keys", "/keys", True),
    ("Audit log", "/audit", True),
)

#: What a person reads for each refusal: a title and one sentence.
_ERRORS = {
    400: ("That did not work", "The request was not understood."),
    403: ("Not allowed", "You may not do this with the key you signed in with."),
    404: ("Not found", "There is nothing here, or it was deleted."),
    405: ("Not allowed", "This page does not take that kind of request."),
    409: ("Already done", "Someone changed this meanwhile; reload the page."),
    410: ("Expired", "It is too late for this."),
    413: ("Too large", "That is more than this page takes."),
    422: ("That did not work", "The form held something the gateway cannot take."),
    429: ("Too many tries", "Wait a minute, then try again."),
    500: ("Something went wrong", "The gateway failed to show this page; see its log."),
}


def setup(app: web.Application) -> None:
    """Templates (autoescaped) and the filters they use."""
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ago"] = ago
    env.filters["left"] = time_left
    env.filters["iso"] = iso


def render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
) -> web.Response:
    """The page *template* with the shared context: who is signed in, the nav, the form token."""
    who = maybe_person(request)
    new_seed = None
    if who is None and csrf_seed(request) is None:
        new_seed = secrets.token_urlsafe(32)
        set_seed(request, new_seed)
    shared: dict[str, Any] = {
        "person": who,
        "csrf": csrf_token(request),
        "prefix": PREFIX,
        "nav": [
            (label, PREFIX + path, _current(request.path, PREFIX + path))
            for label, path, owners in NAV
            if who is not None and (who.is_owner or not owners)
        ],
        "title": "",
        "error": None,
        "asset": lambda name: str(request.app.router["static"].url_for(filename=name)),
    }
    shared.update(context or {})
    response = aiohttp_jinja2.render_template(template, request, shared, status=status)
    if new_seed is not None:
        response.set_cookie(
            PRESESSION_COOKIE,
            new_seed,
            path=PREFIX + "/",
            httponly=True,
            samesite="Strict",
            secure=cookie_secure(request),
        )
    return response


def _current(path: str, target: str) -> bool:
    if target == PREFIX + "/":
        return path == target
    return path == target or path.startswith(target + "/")


def error_page(request: web.Request, status: int, detail: str | None) -> web.Response:
    """A clear error page for *status*, with the gateway's own words for the reason."""
    title, text = _ERRORS.get(status, ("That did not work", "Something went wrong."))
    if detail and status < 500:
        text = sentence(detail)
    try:
        return render(request, "error.html", {"title": title, "message": text}, status=status)
    except Exception:
        # The templates themselves failed: a plain page still says something.
        return web.Response(status=status, text=f"{title}. {text}", content_type="text/plain")


def ago(ts: float | None, now: float | None = None) -> Markup:
    """``<time datetime="...">3 min ago</time>`` (or ``in 4 min`` for a time to come)."""
    if ts is None:
        return Markup("never")
    now = time.time() if now is None else now
    delta = now - ts
    words = _span(abs(delta))
    if words == "just now":
        text = words
    elif delta >= 0:
        text = f"{words} ago"
    else:
        text = f"in {words}"
    return Markup('<time datetime="{}" title="{}">{}</time>').format(iso(ts), iso(ts), escape(text))


def _span(seconds: float) -> str:
    if seconds < 10:
        return "just now"
    if seconds < 60:
        return f"{int(seconds)} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h"
    days = int(seconds // 86400)
    return f"{days} day" if days == 1 else f"{days} days"


def time_left(expires_at: float, now: float | None = None) -> str:
    """``4 min 05 s``, ``42 s``: what remains until *expires_at*."""
    now = time.time() if now is None else now
    return submit_page.time_left(int(expires_at - now))


def sentence(message: str) -> str:
    """A service's message as a sentence: a capital first, a full stop last."""
    text = message[:1].upper() + message[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def see_other(location: str) -> web.Response:
    """303 to *location*: where a form's POST sends the browser next."""
    return web.Response(status=303, headers={"Location": location})
