"""The OpenAPI 3 document of every route, served at ``/openapi.json``.

Request bodies come from the same pydantic models the views validate with;
a test checks that every route the application registers is described here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from ..events import NAMES
from .android import DeviceIn
from .credentials import (
    AuthenticatorIn,
    CredentialIn,
    CredentialPatch,
    ExtractionIn,
    PhoneIn,
    ProvisionIn,
)
from .forwards import ForwardIn
from .interactions import CodeIn, InteractionIn
from .tenants import TenantIn
from .webhooks import WebhookIn

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


_RELEASE_ERRORS = {
    400: ("release_number is not true or false", _ERROR),
    422: ("release_number=true, but the gateway did not buy the number", _ERROR),
    502: ("Twilio failed to release the number; nothing was changed", _ERROR),
    503: ("release_number=true, but Twilio is not configured", _ERROR),
}


def _q(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


_RELEASE = _q(
    "release_number",
    {"type": "boolean", "default": False},
    "also release the number the gateway bought for the credential at Twilio",
)


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
            "delete": _op(
                "Delete a credential; with release_number=true, first release its "
                "bought number at Twilio (if that fails, nothing is deleted)",
                {204: ("Deleted", None), 404: nf[1], **_RELEASE_ERRORS},
                params=[_RELEASE],
            ),
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
            "delete": _op(
                "Unassign the phone number; with release_number=true, first release it "
                "at Twilio (if that fails, it stays assigned)",
                {204: ("Unassigned", None), 404: nf[1], **_RELEASE_ERRORS},
                params=[_RELEASE],
            ),
        },
        "/v1/credentials/{id}/phone/provision": {
            "parameters": [_ID],
            "post": _op(
                "Buy an SMS-capable Twilio number, point its texts at <public URL>/sms/twilio "
                "and assign it",
                {
                    201: ("Bought and assigned", _CREDENTIAL),
                    404: nf[1],
                    409: ("The credential already has a number", _ERROR),
                    502: ("Twilio failed; nothing was bought", _ERROR),
                    503: ("Twilio is not configured", _ERROR),
                },
                body=ProvisionIn,
            ),
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


_WEBHOOK = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "url": {"type": "string", "format": "uri"},
        "events": {
            "type": "array",
            "items": {"enum": list(NAMES)},
        },
        "enabled": {"type": "boolean"},
        "disabled_reason": {"type": ["string", "null"]},
        "pending": {"type": "integer", "description": "deliveries queued, not yet delivered"},
        "previous_secret_expires_at": {"type": ["string", "null"], "format": "date-time"},
        "created_at": {"type": "string", "format": "date-time"},
    },
}


def _webhook_paths() -> dict[str, dict[str, Any]]:
    nf = (404, ("Unknown, or another tenant's", _ERROR))
    created = {
        "allOf": [_WEBHOOK, {"properties": {"secret": {"type": "string", "pattern": "^whsec_"}}}]
    }
    rotated = {
        "type": "object",
        "properties": {
            "secret": {"type": "string", "pattern": "^whsec_"},
            "previous_secret_expires_at": {"type": "string", "format": "date-time"},
        },
    }
    return {
        "/v1/webhooks": {
            "post": _op(
                "Register an endpoint; deliveries are signed as Standard Webhooks says "
                "with the returned secret (shown once)",
                {201: ("Created", created)},
                body=WebhookIn,
            ),
            "get": _op("List endpoints (no secrets)", {200: ("Endpoints", {"type": "object"})}),
        },
        "/v1/webhooks/{id}": {
            "parameters": [_ID],
            "get": _op("One endpoint", {200: ("Found", _WEBHOOK), 404: nf[1]}),
            "delete": _op(
                "Delete an endpoint and what is queued for it",
                {204: ("Deleted", None), 404: nf[1]},
            ),
        },
        "/v1/webhooks/{id}/rotate": {
            "parameters": [_ID],
            "post": _op(
                "A new signing secret; the old one also signs for 24 hours",
                {200: ("Rotated", rotated), 404: nf[1]},
            ),
        },
        "/v1/webhooks/{id}/enable": {
            "parameters": [_ID],
            "post": _op(
                "Turn an endpoint back on after a 410 Gone disabled it",
                {200: ("Enabled", _WEBHOOK), 404: nf[1]},
            ),
        },
    }


_INTERACTION = {
    "type": "object",
    "required": ["id", "status", "expires_at"],
    "properties": {
        "id": {"type": "string"},
        "credential_id": {"type": "string"},
        "status": {"enum": ["pending", "submitted", "delivered", "expired"]},
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


def _interaction_paths() -> dict[str, dict[str, Any]]:
    nf = (404, ("Unknown, or another tenant's", _ERROR))
    answered = (409, ("A code was already given", _ERROR))
    expired = (410, ("Expired", _ERROR))
    tries = (429, ("Five tries were used up", _ERROR))
    token = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
    html = {"type": "string", "description": "an HTML page"}
    answer = {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": CodeIn.model_json_schema()},
                "application/x-www-form-urlencoded": {"schema": CodeIn.model_json_schema()},
            },
        }
    }
    refusals = {
        403: ("Posted from another origin", _ERROR),
        404: ("Unknown token", _ERROR),
        409: answered[1],
        410: expired[1],
        413: ("Body over 4 KB", _ERROR),
        415: ("Neither JSON nor a form", _ERROR),
        422: ("Not 1 to 64 printable characters (counts as a try)", _ERROR),
        429: tries[1],
    }
    return {
        "/v1/credentials/{id}/interactions": {
            "parameters": [_ID],
            "post": _op(
                "Ask a person for a code: queues interaction.code_required with the "
                "submit_url (the body may be empty)",
                {201: ("Opened", _INTERACTION), 404: nf[1]},
                body=InteractionIn,
            ),
        },
        "/v1/interactions/{id}": {
            "parameters": [_ID],
            "get": _op("One interaction", {200: ("Found", _INTERACTION), 404: nf[1]}),
        },
        "/v1/interactions/{id}/code": {
            "parameters": [_ID],
            "post": _op(
                "Answer with a code (1 to 64 printable characters, trimmed)",
                {
                    204: ("Stored", None),
                    404: nf[1],
                    409: answered[1],
                    410: expired[1],
                    429: tries[1],
                },
                body=CodeIn,
            ),
            "get": _op(
                "The answer, handed out once (also by GET /v1/credentials/{id}/code)",
                {
                    200: ("The code", {"type": "object", "required": ["code"]}),
                    204: ("No answer within 'wait'", None),
                    404: nf[1],
                    410: ("Expired, or its code was already handed out", _ERROR),
                },
                params=[
                    _q(
                        "wait",
                        {"type": "number", "minimum": 0, "maximum": 300},
                        "seconds to hold the request open for the answer",
                    )
                ],
            ),
        },
        "/submit/{token}": {
            "parameters": [token],
            "get": _op(
                "The form a person answers on (HTML; 404, 409, 410, 429 as HTML pages)",
                {200: ("The form", html), 404: ("Unknown token", html)},
                auth=None,
            ),
            "post": {
                **_op(
                    "Answer: JSON {code} -> 204, or a form (code=...) -> an HTML page",
                    {
                        200: ("Form: the confirmation page", html),
                        204: ("JSON: stored", None),
                        **refusals,
                    },
                    auth=None,
                ),
                **answer,
            },
        },
    }


_FORWARD = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "credential_id": {"type": "string"},
        "channel": {"enum": ["email", "sms"]},
        "to": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "last_status": {
            "enum": ["sent", "retrying", "failed", "unknown", None],
            "description": "the last copy's fate; unknown: interrupted while sending, "
            "not sent again",
        },
        "last_error": {"type": ["string", "null"]},
        "last_attempt_at": {"type": ["string", "null"], "format": "date-time"},
        "pending": {"type": "integer", "description": "copies waiting to be sent"},
    },
}
_DEVICE = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "credential_id": {"type": "string"},
        "device_id": {"type": "string"},
        "sim_number": {"type": ["integer", "null"]},
        "webhook_url": {"type": "string", "format": "uri"},
        "signing_key": {"type": "string", "description": "only when created"},
        "created_at": {"type": "string", "format": "date-time"},
    },
}
_SUB = {"in": "path", "required": True, "schema": {"type": "string"}}


def _sms_paths() -> dict[str, dict[str, Any]]:
    nf = (404, ("Unknown, or another tenant's", _ERROR))
    twiml = {"type": "string", "description": "an empty TwiML <Response/>"}
    return {
        "/v1/credentials/{id}/forwards": {
            "parameters": [_ID],
            "post": _op(
                "Copy each message reaching the credential to a person (email or SMS)",
                {201: ("Created", _FORWARD), 404: nf[1], 409: ("10 rules already", _ERROR)},
                body=ForwardIn,
            ),
            "get": _op(
                "The credential's rules, with their last status",
                {200: ("Rules", {"type": "object"}), 404: nf[1]},
            ),
        },
        "/v1/credentials/{id}/forwards/{forward_id}": {
            "parameters": [_ID, {"name": "forward_id", **_SUB}],
            "get": _op("One rule", {200: ("Found", _FORWARD), 404: nf[1]}),
            "delete": _op("Delete a rule", {204: ("Deleted", None), 404: nf[1]}),
        },
        "/v1/credentials/{id}/sms-devices": {
            "parameters": [_ID],
            "post": _op(
                "Map a phone running SMS Gateway for Android (or one SIM slot) to the "
                "credential; the signing key is shown once",
                {201: ("Mapped", _DEVICE), 404: nf[1], 409: ("Taken", _ERROR)},
                body=DeviceIn,
            ),
            "get": _op(
                "The credential's devices", {200: ("Devices", {"type": "object"}), 404: nf[1]}
            ),
        },
        "/v1/credentials/{id}/sms-devices/{device}": {
            "parameters": [_ID, {"name": "device", **_SUB}],
            "delete": _op("Unmap a device", {204: ("Deleted", None), 404: nf[1]}),
        },
        "/sms/twilio": {
            "post": {
                **_op(
                    "Twilio's inbound-message webhook (form-encoded, X-Twilio-Signature)",
                    {
                        200: ("Stored, a redelivery, or an unowned number", twiml),
                        400: ("Malformed, missing or unknown parameters", _ERROR),
                        403: ("Missing or bad signature, or another account", _ERROR),
                        413: ("Body over 1,600 characters", _ERROR),
                        429: ("Too many texts for the number or from the sender", _ERROR),
                        503: ("OTPGATE_TWILIO_AUTH_TOKEN is not set", _ERROR),
                    },
                    auth=None,
                ),
            }
        },
        "/sms/android": {
            "post": _op(
                "SMS Gateway for Android's sms:received webhook (X-Signature, X-Timestamp)",
                {
                    200: ("Stored, a redelivery, or an ignored event", {"type": "object"}),
                    400: ("Malformed", _ERROR),
                    403: ("Missing or bad signature, unknown device, stale timestamp", _ERROR),
                    413: ("Message over 1,600 characters", _ERROR),
                    429: ("Too many texts", _ERROR),
                },
                auth=None,
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
        "paths": {
            **_paths(),
            **_webhook_paths(),
            **_interaction_paths(),
            **_sms_paths(),
        },
    }
