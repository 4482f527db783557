"""The OpenAPI 3 document, served at ``/openapi.json``, built from the routes themselves.

Every route is registered with :func:`route`, which takes the route's
:class:`Operation` (summary, parameters, request and response schemas,
statuses) together with its handler and records both in the application;
:func:`document` renders what was recorded.  A route therefore cannot be
served without being described, and a test checks that the router and the
document agree.  Request bodies come from the same pydantic models the views
validate with.
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

#: A JSON Schema, as it appears in the document.
Schema = Mapping[str, Any]
#: One documented response: its description and the schema of its body (None: no body).
Answer = tuple[str, Schema | None]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: The contract's error body, ``{"error": {"code", "message"}}``.
ERROR: Schema = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}
#: The answer for an id that is unknown or belongs to another tenant (never 403).
NOT_FOUND: Answer = ("Unknown, or another tenant's", ERROR)

_JSON = "application/json"
_FORM = "application/x-www-form-urlencoded"
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
    #: Query parameters (path parameters come from the path itself).
    params: Sequence[Mapping[str, Any]] = ()
    #: What the route does, which decides the roles that may call it
    #: (``gateway.roles``); None for a route that needs no API key.
    auth: Access | None = field(kw_only=True)

    def render(self) -> dict[str, Any]:
        op: dict[str, Any] = {"summary": self.summary, "responses": {}}
        responses = dict(self.responses)
        if self.auth is not None:
            roles = who_may(self.auth)
            op["security"] = [{"bearer": []}]
            op["description"] = f"Needs an API key with the role {' or '.join(roles)}."
            op["x-otpgate-access"] = self.auth.value
            responses[401] = ("No, bad, revoked or expired API key", ERROR)
            responses[403] = ("The key's role may not do this", ERROR)
        if self.params:
            op["parameters"] = list(self.params)
        if self.body is not None:
            op["requestBody"] = _request_body(self.body, _JSON)
            responses |= {400: ("Malformed JSON", ERROR), 422: ("Invalid", ERROR)}
        if self.form is not None:
            op["requestBody"] = _request_body(self.form, _JSON, _FORM)
        for status, (text, schema) in sorted(responses.items()):
            entry: dict[str, Any] = {"description": text}
            if schema is not None:
                ctype = "text/plain" if schema.get("type") == "string" else _JSON
                entry["content"] = {ctype: {"schema": schema}}
            op["responses"][str(status)] = entry
        return op


def _request_body(model: type[BaseModel], *media_types: str) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {"required": True, "content": {media: {"schema": schema} for media in media_types}}


@dataclass(frozen=True, slots=True)
class DocumentedRoute:
    method: str
    path: str
    operation: Operation


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
    if operation.auth is not None:
        handler = guard(handler, operation.auth, bound=credential_bound(method, path))
    if method == "GET":
        app.router.add_get(path, handler, allow_head=head)
    else:
        app.router.add_route(method, path, handler)
    routes = app.get(ROUTES)
    if routes is None:
        routes = app[ROUTES] = []
    routes.append(DocumentedRoute(method, path, operation))


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
        item[r.method.lower()] = r.operation.render()
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "otpgate",
            "version": "1",
            "description": "A self-hosted gateway that lets browser agents get through "
            "two-factor logins. Errors are {'error': {'code', 'message'}}.",
        },
        "servers": [{"url": server_url}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR},
        },
        "paths": paths,
    }
