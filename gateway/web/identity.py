"""Who is signed in, and what every form of the pages must carry.

A page handler asks :func:`person` (or :func:`owner`) who is signed in; the
middleware in :mod:`.guard` put them there after checking their session and
key.  Each POST handler reads its fields through :func:`form` or
:func:`upload`, which check the form's CSRF token first: the keyed hash of
the session token (before sign-in, of a random pre-session cookie), so a
token is worthless outside its own session.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import BodyPartReader, web
from multidict import MultiDict, MultiDictProxy

from ..api.container import SERVICES
from ..errors import Forbidden, TooLarge
from ..roles import Role
from ..services.tenants import Principal
from ..services.websessions import WebSession

PREFIX = "/ui"
SESSION_COOKIE = "otpgate_session"
#: Before sign-in: the random value the sign-in form's CSRF token is derived from.
PRESESSION_COOKIE = "otpgate_presession"
CSRF_FIELD = "csrf"
#: Parts a multipart form of the pages may have (the authenticator form has three).
_MAX_PARTS = 20
_SEED = web.RequestKey("csrf_seed", str)
#: The roles whose keys may sign in (agents use the API; the admin has no tenant).
SIGN_IN_ROLES = frozenset({Role.OWNER.value, Role.MANAGER.value})


@dataclass(frozen=True, slots=True)
class Person:
    """The person signed in: the key's principal and their session."""

    principal: Principal
    session: WebSession
    #: The session token from the cookie (the seed of the CSRF token).
    token: str

    @property
    def tenant_id(self) -> str:
        return self.session.tenant_id

    @property
    def is_owner(self) -> bool:
        return self.principal.role == Role.OWNER

    @property
    def role(self) -> str:
        return self.principal.role

    @property
    def limited(self) -> bool:
        """Whether the key reaches only some of the tenant's credentials."""
        return self.principal.credential_ids is not None

    def may_see(self, credential_id: str) -> bool:
        return self.principal.reaches(credential_id)


def whole_tenant(who: Person) -> Person:
    """*who*, whose key must reach every credential (403 for a key limited to some)."""
    if who.limited:
        raise Forbidden("this key is limited to some credentials; this page covers them all")
    return who


#: Where the middleware puts the person signed in.
PERSON = web.RequestKey("person", Person)


class SignInNeeded(Exception):
    """No live session: the person is sent to the sign-in page."""


def person(request: web.Request) -> Person:
    """The person signed in; :class:`SignInNeeded` when nobody is."""
    found = maybe_person(request)
    if found is None:
        raise SignInNeeded
    return found


def maybe_person(request: web.Request) -> Person | None:
    found: Person | None = request.get(PERSON)
    return found


def owner(request: web.Request) -> Person:
    """The person signed in, who must hold an owner's key (403 otherwise)."""
    who = person(request)
    if not who.is_owner:
        raise Forbidden("this page is for the tenant's owners")
    return who


def csrf_seed(request: web.Request) -> str | None:
    """What this request's CSRF token derives from: the session, or the pre-session cookie."""
    who = maybe_person(request)
    if who is not None:
        return who.token
    seed = request.get(_SEED)
    return seed if seed is not None else request.cookies.get(PRESESSION_COOKIE)


def set_seed(request: web.Request, seed: str) -> None:
    """Use *seed* for this request's forms (a pre-session cookie set on this response)."""
    request[_SEED] = seed


def csrf_token(request: web.Request) -> str:
    seed = csrf_seed(request)
    return "" if seed is None else request.app[SERVICES].web_sessions.csrf_token(seed)


def _check_csrf(request: web.Request, presented: str | None) -> None:
    seed = csrf_seed(request)
    sessions = request.app[SERVICES].web_sessions
    if seed is None or presented is None or not sessions.csrf_ok(seed, presented):
        raise Forbidden(
            "this form has expired or was not sent from its page; reload the page and try again",
            code="csrf",
        )


async def form(request: web.Request) -> MultiDictProxy[str]:
    """The fields of a URL-encoded form, after its CSRF token is checked."""
    data = await request.post()
    token = data.get(CSRF_FIELD)
    _check_csrf(request, token if isinstance(token, str) else None)
    return MultiDictProxy(MultiDict((k, v) for k, v in data.items() if isinstance(v, str)))


@dataclass(frozen=True, slots=True)
class Upload:
    """A multipart form's text fields and one file's bytes (None when no file was chosen)."""

    fields: dict[str, str]
    file: bytes | None


async def upload(request: web.Request, *, file_field: str, cap: int) -> Upload:
    """A multipart form with one file of at most *cap* bytes, its CSRF token checked first.

    The token must come before the file (the pages put it first), so a forged
    form is refused before its file is read.  Larger files raise
    :class:`TooLarge`; text fields are capped at 8 KiB, parts at 20.
    """
    if request.content_length is not None and request.content_length > cap + 64 * 1024:
        raise TooLarge(f"the file must be at most {cap // (1024 * 1024)} MiB")
    if request.content_type != "multipart/form-data":
        raise Forbidden("this form must be sent as multipart/form-data", code="bad_form")
    reader = await request.multipart()
    fields: dict[str, str] = {}
    file: bytes | None = None
    for _ in range(_MAX_PARTS):
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader) or part.name is None:
            continue
        if part.name == file_field and part.filename:
            _check_csrf(request, fields.get(CSRF_FIELD))
            file = await _read_part(part, cap, f"the file must be at most {cap // 2**20} MiB")
        else:
            raw = await _read_part(part, 8192, "a field of this form is too long")
            fields[part.name] = raw.decode("utf-8", "replace")
    else:
        raise TooLarge("this form has too many fields")
    _check_csrf(request, fields.get(CSRF_FIELD))
    return Upload(fields, file or None)


async def _read_part(part: BodyPartReader, cap: int, message: str) -> bytes:
    chunks = bytearray()
    while chunk := await part.read_chunk(64 * 1024):
        chunks += chunk
        if len(chunks) > cap:
            raise TooLarge(message)
    return bytes(chunks)


def cookie_secure(request: web.Request) -> bool:
    return request.app[SERVICES].settings.public_url.lower().startswith("https:")


def clear_session_cookie(request: web.Request, response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path=PREFIX + "/", secure=cookie_secure(request))
