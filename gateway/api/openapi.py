"""The OpenAPI 3 document of every route, served at ``/openapi.json``.

Request bodies come from the same pydantic models the views validate with;
a test checks that every route the application registers is described here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from .credentials import AuthenticatorIn, CredentialIn, CredentialPatch, ExtractionIn, PhoneIn
from .tenants import TenantIn

_ERROR = {
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
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_AUTHENTICATOR = {
    "type": "object",
    "properties": {
        "kind": {"enum": ["totp", "hotp"]},
        "digits": {"type": "integer"},
        "period": {"type": "integer"},
        "algorithm": {"enum": ["SHA1", "SHA256", "SHA512"]},
    },
}
_CREDENTIAL = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "username": {"type": ["string", "null"]},
        "inbox": {"type": "string", "format": "email"},
        "phone_number": {"type": ["string", "null"]},
        "has_password": {"type": "boolean"},
        "authenticator": {"oneOf": [_AUTHENTICATOR, {"type": "null"}]},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}
_EXTRACTION = {
    "type": "object",
    "properties": {
        "pattern": {"type": ["string", "null"]},
        "allowed_senders": {"type": ["array", "null"], "items": {"type": "string"}},
    },
}
_CODE = {
    "type": "object",
    "required": ["code", "source"],
    "properties": {
        "code": {"type": "string"},
        "source": {"enum": ["totp", "hotp", "email", "sms", "user"]},
        "expires_at": {"type": "string", "format": "date-time"},
        "received_at": {"type": "string", "format": "date-time"},
        "sender": {"type": ["string", "null"]},
    },
}


def _q(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _op(
    summary: str,
    responses: Mapping[int, tuple[str, Mapping[str, Any] | None]],
    *,
    body: type[BaseModel] | None = None,
    params: list[dict[str, Any]] | None = None,
    auth: str | None = "tenant",
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {}}
    if auth:
        op["security"] = [{"bearer": []}]
        op["description"] = f"Needs the {auth} API key."
        responses = {**responses, 401: ("No or bad API key", _ERROR)}
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body.model_json_schema()}},
        }
        responses = {**responses, 400: ("Malformed JSON", _ERROR), 422: ("Invalid", _ERROR)}
    for status, (text, schema) in sorted(responses.items()):
        entry: dict[str, Any] = {"description": text}
        if schema is not None:
            ctype = "text/plain" if schema.get("type") == "string" else "application/json"
            entry["content"] = {ctype: {"schema": schema}}
        op["responses"][str(status)] = entry
    return op


def _paths() -> dict[str, dict[str, Any]]:
    nf = (404, ("Unknown, or another tenant's", _ERROR))
    cred = {201: ("Created", _CREDENTIAL)}
    return {
        "/healthz": {"get": _op("Liveness", {200: ("Alive", {"type": "object"})}, auth=None)},
        "/readyz": {
            "get": _op(
                "Readiness: the database answers",
                {200: ("Ready", {"type": "object"}), 503: ("Not ready", {"type": "object"})},
                auth=None,
            )
        },
        "/metrics": {
            "get": _op("Prometheus metrics", {200: ("Text format", {"type": "string"})}, auth=None)
        },
        "/openapi.json": {
            "get": _op("This document", {200: ("OpenAPI 3", {"type": "object"})}, auth=None)
        },
        "/v1/tenants": {
            "post": _op(
                "Create a tenant and its API key (shown once)",
                {201: ("Created", {"type": "object"}), 403: ("Not the admin key", _ERROR)},
                body=TenantIn,
                auth="admin",
            )
        },
        "/v1/credentials": {
            "post": _op("Create a credential set", cred, body=CredentialIn),
            "get": _op(
                "List credentials (no passwords)",
                {200: ("A page of credentials", {"type": "object"})},
                params=[
                    _q("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "page size"),
                    _q("after", {"type": "string"}, "the id to start after (from 'next')"),
                ],
            ),
        },
        "/v1/credentials/{id}": {
            "parameters": [_ID],
            "get": _op("One credential", {200: ("Found", _CREDENTIAL), 404: nf[1]}),
            "patch": _op(
                "Change name, username or password",
                {200: ("Changed", _CREDENTIAL), 404: nf[1]},
                body=CredentialPatch,
            ),
            "delete": _op("Delete a credential", {204: ("Deleted", None), 404: nf[1]}),
        },
        "/v1/credentials/{id}/password": {
            "parameters": [_ID],
            "get": _op(
                "The credential's password, for the agent's login",
                {200: ("The password", {"type": "object"}), 404: nf[1]},
            ),
        },
        "/v1/credentials/{id}/authenticator": {
            "parameters": [_ID],
            "put": _op(
                "Store a TOTP/HOTP secret (otpauth:// URI or fields)",
                {200: ("Stored", _AUTHENTICATOR), 404: nf[1]},
                body=AuthenticatorIn,
            ),
            "delete": _op("Remove the authenticator", {204: ("Removed", None), 404: nf[1]}),
        },
        "/v1/credentials/{id}/phone": {
            "parameters": [_ID],
            "put": _op(
                "Assign a phone number (E.164)",
                {200: ("Assigned", _CREDENTIAL), 404: nf[1], 409: ("Number taken", _ERROR)},
                body=PhoneIn,
            ),
            "delete": _op("Unassign the phone number", {204: ("Unassigned", None), 404: nf[1]}),
        },
        "/v1/credentials/{id}/extraction": {
            "parameters": [_ID],
            "get": _op(
                "The credential's own code pattern and allowed sender domains",
                {200: ("Settings", _EXTRACTION), 404: nf[1]},
            ),
            "put": _op(
                "Set a code pattern (one capture group) and/or allowed sender domains; "
                "null restores the default",
                {200: ("Stored", _EXTRACTION), 404: nf[1]},
                body=ExtractionIn,
            ),
        },
        "/v1/credentials/{id}/code": {
            "parameters": [_ID],
            "get": _op(
                "The current code for the agent",
                {200: ("A code", _CODE), 204: ("No code within 'wait'", None), 404: nf[1]},
                params=[
                    _q(
                        "wait",
                        {"type": "number", "minimum": 0, "maximum": 300},
                        "seconds to hold the request open for a code",
                    ),
                    _q(
                        "since",
                        {"type": "string", "format": "date-time"},
                        "only codes received at or after this time",
                    ),
                    _q(
                        "source",
                        {"enum": ["totp", "hotp", "email", "sms", "user"]},
                        "only codes from this source",
                    ),
                    _q(
                        "min_validity",
                        {"type": "integer", "minimum": 0},
                        "TOTP: wait for the next step rather than hand out a code "
                        "expiring sooner than this many seconds",
                    ),
                ],
            ),
        },
    }


def document(server_url: str) -> dict[str, Any]:
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
            "schemas": {"Error": _ERROR},
        },
        "paths": _paths(),
    }
