"""The start page (``GET /``) and the API reference (``GET /docs``), served by the gateway itself.

The start page links the authentication center, the reference, the OpenAPI
document and the health check.  The reference is rendered on the server from
the same OpenAPI document ``/openapi.json`` serves (:func:`gateway.api.openapi.document`):
no script, no asset from elsewhere, the authentication center's stylesheet.
Both pages go out with the pages' strict headers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from .. import __version__
from ..api.container import SERVICES
from ..api.openapi import ROUTES, DocumentedRoute, Operation, document, route, text
from .guard import HEADERS
from .identity import PREFIX

_HTML = {200: ("An HTML page", text("text/html", "an HTML page"))}


@dataclass(frozen=True, slots=True)
class Pages:
    """The authentication center's Jinja2 environment, and its static files' URLs."""

    env: jinja2.Environment
    asset: Callable[[str], str]


PAGES = web.AppKey("docs_pages", Pages)


@dataclass(frozen=True, slots=True)
class Field:
    """A parameter or a body field, as the reference lists it."""

    name: str
    where: str
    type: str
    required: bool
    description: str


@dataclass(frozen=True, slots=True)
class Entry:
    """One operation of the reference."""

    id: str
    method: str
    path: str
    summary: str
    description: str
    public: bool
    fields: list[Field]
    body_types: list[str]
    responses: list[tuple[str, str, str]]


def type_of(schema: Mapping[str, Any]) -> str:
    """A short, readable type for a JSON Schema (``string``, ``"a" | "b"``, ``array of X``)."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "enum" in schema:
        return " | ".join(f'"{v}"' if isinstance(v, str) else str(v) for v in schema["enum"])
    if "const" in schema:
        return f'"{schema["const"]}"'
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " | ".join(dict.fromkeys(type_of(s) for s in schema[key]))
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        return " | ".join(type_of({**schema, "type": k}) if k == "array" else str(k) for k in kind)
    if kind == "array":
        return f"array of {type_of(schema.get('items', {}))}"
    if schema.get("format"):
        return f"{kind} ({schema['format']})"
    return str(kind)


def _fields(op: Mapping[str, Any]) -> tuple[list[Field], list[str]]:
    fields = [
        Field(
            p["name"],
            p["in"],
            type_of(p.get("schema", {})),
            bool(p.get("required")),
            str(p.get("description", "")),
        )
        for p in op.get("parameters", ())
    ]
    body = op.get("requestBody")
    if body is None:
        return fields, []
    content: Mapping[str, Any] = body["content"]
    schema = next(iter(content.values()))["schema"]
    required = set(schema.get("required", ()))
    for name, prop in schema.get("properties", {}).items():
        description = str(prop.get("description", ""))
        fields.append(Field(name, "body", type_of(prop), name in required, description))
    return fields, list(content)


def entries(doc: Mapping[str, Any]) -> list[tuple[str, list[Entry]]]:
    """The document's operations, grouped by the resource they act on, in order."""
    groups: dict[str, list[Entry]] = {}
    for path, item in doc["paths"].items():
        common = item.get("parameters", [])
        for method, op in item.items():
            if method == "parameters":
                continue
            fields, body_types = _fields({**op, "parameters": [*common, *op.get("parameters", [])]})
            responses = [
                (status, answer["description"], ", ".join(answer.get("content", {})))
                for status, answer in op["responses"].items()
            ]
            groups.setdefault(_group(path), []).append(
                Entry(
                    id=op["operationId"],
                    method=method.upper(),
                    path=path,
                    summary=op["summary"],
                    description=op.get("description", ""),
                    public=op.get("security") == [],
                    fields=fields,
                    body_types=body_types,
                    responses=responses,
                )
            )
    return list(groups.items())


def _group(path: str) -> str:
    parts = [p for p in path.split("/") if p]
    if parts and parts[0] == "v1" and len(parts) > 1:
        return parts[1].replace("-", " ").capitalize()
    if parts and parts[0] in ("sms", "submit"):
        return "Inbound SMS" if parts[0] == "sms" else "Submit page"
    return "Operations"


def _page(request: web.Request, template: str, context: Mapping[str, Any]) -> web.Response:
    pages: Pages = request.app[PAGES]
    shared: dict[str, Any] = {
        "person": None,
        "nav": [],
        "prefix": PREFIX,
        "csrf": "",
        "asset": pages.asset,
        "foot": f"otpgate {__version__}",
    }
    body = pages.env.get_template(template).render({**shared, **context})
    response = web.Response(text=body, content_type="text/html")
    response.headers.update(HEADERS)
    return response


async def start_page(request: web.Request) -> web.Response:
    return _page(request, "start.html", {"title": ""})


async def reference(request: web.Request) -> web.Response:
    routes: list[DocumentedRoute] = request.app[ROUTES]
    doc = document(request.app[SERVICES].settings.public_url, routes)
    return _page(
        request,
        "docs.html",
        {"title": "API reference", "info": doc["info"], "groups": entries(doc)},
    )


def setup_routes(app: web.Application, ui: web.Application) -> None:
    """Serve ``/`` and ``/docs`` on *app*, with the templates and stylesheet of *ui*."""
    static = ui.router["static"]
    app[PAGES] = Pages(aiohttp_jinja2.get_env(ui), lambda name: str(static.url_for(filename=name)))
    route(
        app,
        "GET",
        "/",
        start_page,
        Operation(
            "A page linking the authentication center, the API reference and health",
            _HTML,
            auth=None,
        ),
        head=True,
    )
    route(
        app,
        "GET",
        "/docs",
        reference,
        Operation("The API reference, rendered from this document", _HTML, auth=None),
        head=True,
    )
