"""What a view reads from a request: bodies, path ids and query parameters.

Each helper refuses bad input with the domain's errors (400 malformed,
404 for a path id that cannot exist, 413 too large, 422 well-formed but
invalid); the error middleware renders them.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    StringConstraints,
    ValidationError,
)

from .. import ids
from ..errors import BadInput, Invalid, NotFound, RequestError, TooLarge
from ..validation import is_plain_text

M = TypeVar("M", bound=BaseModel)

#: A decimal number in ASCII digits, as a query parameter holds one.
_DECIMAL = re.compile(r"-?[0-9]{1,40}(?:\.[0-9]{1,40})?")

#: The largest body a route takes unless it says otherwise (the app's ``client_max_size``).
MAX_BODY = 64 * 1024


async def read_capped(request: web.Request, cap: int) -> bytes:
    """The whole body, or 413 as soon as it is known to be over *cap* bytes.

    For routes that read the body themselves (a form, a raw body that is
    signed): ``content.read(n)`` alone returns what has arrived so far,
    which may be only part of it.
    """
    if request.content_length is not None and request.content_length > cap:
        raise TooLarge(f"the body must be at most {cap} bytes")
    body = bytearray()
    while chunk := await request.content.read(cap + 1 - len(body)):
        body += chunk
        if len(body) > cap:
            raise TooLarge(f"the body must be at most {cap} bytes")
    return bytes(body)


#: Bodies labelled so are read as JSON: ``curl -d`` labels what it sends
#: ``application/x-www-form-urlencoded`` unless told otherwise (README's examples
#: rely on it), and a body with no label at all is taken as JSON too.
_AS_JSON = frozenset({"application/json", "application/x-www-form-urlencoded"})


async def json_raw(request: web.Request, cap: int = MAX_BODY) -> bytes:
    """The raw body of a JSON route: 413 past *cap* (at once when ``Content-Length`` says so),
    415 for a body labelled as another type."""
    raw = await read_capped(request, cap)
    if raw and "Content-Type" in request.headers:  # an empty body has no type to check
        kind = request.content_type
        suffixed = kind.startswith("application/") and kind.endswith("+json")
        if kind not in _AS_JSON and not suffixed:
            raise web.HTTPUnsupportedMediaType(reason="send the body as application/json")
    return raw


async def json_body(request: web.Request, model: type[M], *, cap: int | None = None) -> M:
    """Parse and validate a JSON object body; 400 for bad JSON, 422 for bad content.

    415 for a body labelled neither JSON nor (as ``curl -d`` sends it) a form;
    413 past :data:`MAX_BODY` (at once when ``Content-Length`` says so), or
    past *cap* bytes for a route that takes more (a picture).
    """
    raw = await json_raw(request, MAX_BODY if cap is None else cap)
    return validate(model, json_object(raw))


def json_object(raw: bytes) -> dict[str, Any]:
    """A body that must be one JSON object; 400 for anything else."""
    if not raw.strip():
        raise BadInput("the request needs a JSON object body")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadInput("the request body is not valid JSON") from None
    except RecursionError:
        raise BadInput("the request body's JSON is nested too deeply") from None
    if not isinstance(data, dict):
        raise BadInput("the request body must be a JSON object")
    return data


def plain_text(value: str) -> str:
    """A pydantic check for names and usernames (see :func:`validation.is_plain_text`)."""
    if not is_plain_text(value):
        raise ValueError("must not hold control characters or bidirectional overrides")
    return value


#: The longest name (of a tenant, a credential, an API key), in characters as sent.
MAX_NAME = 200


def _sent_at_most_max_name(value: Any) -> Any:
    # The document says maxLength of what is sent; the stripping below would let a name of
    # 200 characters and a space around it through.
    if isinstance(value, str) and len(value) > MAX_NAME:
        raise ValueError(f"must be at most {MAX_NAME} characters")
    return value


#: A name a person gives something: one readable line, stripped, 1 to 200 characters.
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME),
    BeforeValidator(_sent_at_most_max_name),
    AfterValidator(plain_text),
]


def validate(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Invalid(describe_validation(exc)) from None


def describe_validation(exc: ValidationError) -> str:
    """The first problem, naming the field and never repeating its value."""
    err = exc.errors(include_input=False, include_url=False)[0]
    where = ".".join(str(p) for p in err["loc"]) or "body"
    if err["type"] == "extra_forbidden":
        return f"unknown field '{where}'"
    if err["type"] == "missing":
        return f"'{where}' is required"
    message = str(err["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    return f"'{where}': {message}"


def object_id(request: web.Request, name: str = "id") -> str:
    """A path id; anything that cannot be an id is simply not found."""
    value = request.match_info[name]
    if not ids.looks_like_id(value):
        raise NotFound("no such object")
    return value


#: The longest a long poll holds its request open, in seconds (``?wait=``).
MAX_WAIT = 300

_NO_HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())


def wait_of(request: web.Request) -> float:
    """``?wait=``: the seconds a long poll may hold its request open, 0 to :data:`MAX_WAIT`.

    A request that is to wait lets go of its headers first: they have been read
    by then (the key checked, the client's address found), and each of thousands
    of parked long polls would otherwise keep them, API key included, for minutes.
    """
    wait = query_number(request, "wait", default=0, low=0, high=MAX_WAIT)
    if wait:
        # aiohttp's request offers no public way to drop them; nothing reads them later
        # (the answer's headers depend on the version and keep-alive, which stay).
        request._message = request._message._replace(headers=_NO_HEADERS, raw_headers=())
        request._headers = _NO_HEADERS
        request._cache.pop("headers", None)  # where aiohttp caches what ``request.headers`` gave
    return wait


def query_number(
    request: web.Request,
    name: str,
    *,
    default: float,
    low: float,
    high: float,
    integer: bool = False,
) -> float:
    """A number in the query string, *default* when absent; 400 when it is not a number
    (an empty value included, or a fraction where *integer*), 422 when out of range."""
    raw = request.query.get(name)
    if raw is None:
        return default
    # ASCII digits only: float() also reads "1_0", " 5 ", "1e3", "inf" and other scripts' digits.
    if _DECIMAL.fullmatch(raw) is None:
        raise BadInput(f"'{name}' must be a number, such as 5 or 2.5")
    value = float(raw)
    if integer and not value.is_integer():
        raise BadInput(f"'{name}' must be a whole number")
    if not math.isfinite(value) or not low <= value <= high:
        raise Invalid(f"'{name}' must be between {low:g} and {high:g}")
    return value


def query_time(request: web.Request, name: str) -> float | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    # A '+' in a query string arrives as a space.
    return parse_time(raw.replace(" ", "+"), name, error=BadInput)


def parse_time(raw: str, name: str, *, error: type[RequestError] = Invalid) -> float:
    """An ISO 8601 time as UNIX seconds (UTC when no offset is given)."""
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise error(f"'{name}' must be an ISO 8601 time, such as 2026-01-02T03:04:05Z") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
