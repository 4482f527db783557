"""The OpenAPI 3 document, served at ``/openapi.json``, built from the routes themselves.

Every route is registered with :func:`route`, which takes the route's
:class:`Operation` (summary, parameters, request and response schemas,
statuses) together with its handler and records both in the application;
:func:`document` renders what was recorded.  A route therefore cannot be
served without being described, and a test checks that the router and the
document agree.  Request bodies come from the same pydantic models the views
validate with.

Each operation's ``operationId`` is its handler's name (unique in the
application), a public route says ``security: []``, every error answer
refers to the one ``Error`` component, and every status a route's input
helpers can answer (a malformed or out-of-range query value, bad JSON) is
documented with it.  Redocly's linter, two generated clients and Schemathesis
check the result against a served gateway (``tests/test_openapi.py``).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from ..roles import Access, credential_bound, who_may
from .auth import guard
from .errors import error_middleware

#: A JSON Schema, as it appears in the document.
Schema = Mapping[str, Any]
#: One documented response: its description and the schema of its body (None: no body).
Answer = tuple[str, Schema | None]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: The contract's error body, ``{"error": {"code", "message"}}``: the ``Error`` component.
ERROR_SCHEMA: Schema = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "stable, snake_case"},
                "message": {"type": "string", "description": "for a person"},
            },
        }
    },
}
#: What every error answer's body refers to.
ERROR: Schema = {"$ref": "#/components/schemas/Error"}
#: The answer for an id that is unknown or belongs to another tenant (never 403).
NOT_FOUND: Answer = ("Unknown, or another tenant's", ERROR)

_JSON = "application/json"
FORM = _FORM = "application/x-www-form-urlencoded"
#: The key under which :func:`text` hands its media types to :meth:`Operation.render`.
_CONTENT = "x-otpgate-content"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def query(name: str, schema: Schema, description: str) -> dict[str, Any]:
    """An optional query parameter."""
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


@dataclass(frozen=True, slots=True)
class Operation:
    """What the document says about one method on one path."""

    summary: str
    responses: Mapping[int, Answer]
    #: A JSON object body, validated with this model: 400 and 422 are documented with it.
    body: type[BaseModel] | None = None
    #: A body sent either as JSON or as a form; the route lists its own refusals.
    form: type[BaseModel] | None = None
    #: A body the route reads itself (a signed webhook's form): its media type and schema.
    raw_body: tuple[str, Schema] | None = None
    #: The route takes an empty body as an object with every field at its default.
    optional_body: bool = False
    #: Query parameters (path parameters come from the path itself).
    params: Sequence[Mapping[str, Any]] = ()
    #: What the route does, which decides the roles that may call it
    #: (``gateway.roles``); None for a route that needs no API key.
    auth: Access | None = field(kw_only=True)

    def render(self, operation_id: str) -> dict[str, Any]:
        op: dict[str, Any] = {
            "operationId": operation_id,
            "summary": self.summary,
            "responses": {},
        }
        responses = dict(self.responses)
        if self.auth is None:
            op["security"] = []  # public: no API key
        else:
            roles = who_may(self.auth)
            op["security"] = [{"bearer": []}]
            op["description"] = f"Needs an API key with the role {' or '.join(roles)}."
            op["x-otpgate-access"] = self.auth.value
            responses[401] = ("No, bad, revoked or expired API key", ERROR)
            responses[403] = ("The key's role may not do this", ERROR)
            responses.setdefault(
                429, ("Too many failed authentications from this address (Retry-After)", ERROR)
            )
        if self.params:
            op["parameters"] = list(self.params)
            # inputs.query_number and query_time: not a number or time -> 400, out of range -> 422
            responses.setdefault(400, ("A query parameter is malformed", ERROR))
            responses.setdefault(422, ("A query parameter is out of range", ERROR))
        if self.body is not None:
            op["requestBody"] = _request_body(self.body, _JSON, required=not self.optional_body)
            responses |= {400: ("Malformed JSON", ERROR), 422: ("Invalid", ERROR)}
            responses.setdefault(413, ("The body is over the route's size cap", ERROR))
        if self.form is not None:
            op["requestBody"] = _request_body(self.form, _JSON, _FORM)
        if self.raw_body is not None:
            media_type, raw_schema = self.raw_body
            op["requestBody"] = {"required": True, "content": {media_type: {"schema": raw_schema}}}
        for status, (text, schema) in sorted(responses.items()):
            entry: dict[str, Any] = {"description": text}
            if schema is not None:
                entry["content"] = schema.get(_CONTENT) or {_JSON: {"schema": schema}}
            op["responses"][str(status)] = entry
        return op


def _request_body(
    model: type[BaseModel], *media_types: str, required: bool = True
) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {"required": required, "content": {media: {"schema": schema} for media in media_types}}


def listing(key: str, item: Schema, *, paged: bool = False) -> Schema:
    """A body ``{key: [item, ...]}`` (and ``next``, the cursor of the following page)."""
    properties: dict[str, Any] = {key: {"type": "array", "items": item}}
    if paged:
        properties["next"] = {
            "type": ["string", "null"],
            "description": "'after' for the following page; null on the last",
        }
    return {"type": "object", "required": list(properties), "properties": properties}


def text(media_type: str, description: str, *, or_json: Schema | None = None) -> Schema:
    """A body that is not JSON: a string of *media_type* (an HTML page, TwiML, metrics).

    With *or_json*, the answer is that JSON instead when the request was JSON
    (the submit page answers a form with HTML, a JSON request with JSON).
    """
    content: dict[str, Any] = {
        media_type: {"schema": {"type": "string", "description": description}}
    }
    if or_json is not None:
        content[_JSON] = {"schema": or_json}
    return {_CONTENT: content}


@dataclass(frozen=True, slots=True)
class DocumentedRoute:
    method: str
    path: str
    operation: Operation
    #: The operation's ``operationId``: the handler's name, unique in the application.
    operation_id: str


#: The routes of an application, with their operations, in the order they were registered.
ROUTES = web.AppKey("documented_routes", list[DocumentedRoute])


def route(
    app: web.Application,
    method: str,
    path: str,
    handler: Handler,
    operation: Operation,
    *,
    head: bool = False,
) -> None:
    """Serve *handler* at *method* *path* and describe it with *operation*.

    A GET route answers HEAD too only with *head* (HEAD is not documented).
    A route with ``auth`` is guarded: its key is checked, and its role and
    credential limit, before the handler runs.
    """
    routes = app.get(ROUTES)
    if routes is None:
        routes = app[ROUTES] = []
    # The handler's name; where two modules use one name, the later one's module
    # names it too; one handler on two methods, the method.
    taken = {r.operation_id for r in routes}
    operation_id = handler.__name__
    if operation_id in taken:
        operation_id = f"{handler.__module__.rsplit('.', 1)[-1]}_{operation_id}"
    if operation_id in taken:
        operation_id = f"{operation_id}_{method.lower()}"
    if operation.auth is not None:
        if error_middleware not in app.middlewares:  # which applies the guard
            raise RuntimeError(f"{method} {path} is guarded, on an app without error_middleware")
        handler = guard(app, handler, operation.auth, bound=credential_bound(method, path))
    if method == "GET":
        app.router.add_get(path, handler, allow_head=head)
    else:
        app.router.add_route(method, path, handler)
    routes.append(DocumentedRoute(method, path, operation, operation_id))


def _path_parameters(path: str) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PLACEHOLDER.findall(path)
    ]


def document(server_url: str, routes: Iterable[DocumentedRoute] = ()) -> dict[str, Any]:
    """The OpenAPI 3 document of *routes*, served from *server_url*."""
    paths: dict[str, dict[str, Any]] = {}
    for r in routes:
        item = paths.get(r.path)
        if item is None:
            item = paths[r.path] = {}
            if parameters := _path_parameters(r.path):
                item["parameters"] = parameters
        item[r.method.lower()] = r.operation.render(r.operation_id)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "otpgate",
            "version": "1",
            "description": "A self-hosted gateway that lets browser agents get through "
            "two-factor logins. Errors are {'error': {'code', 'message'}}.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": server_url}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR_SCHEMA},
        },
        "paths": paths,
    }
