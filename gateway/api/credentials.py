"""``/v1/credentials``: credential sets, their password, authenticator and phone."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from .. import enrolment, otp
from ..errors import BadInput, Invalid
from ..roles import Access
from ..services.credentials import AuthenticatorInfo, CredentialInfo, Extraction
from ..timestamps import iso
from .auth import actor_of, credential_of, principal_of, tenant_of
from .container import SERVICES
from .inputs import Name, json_body, plain_text, query_number
from .openapi import ERROR, NOT_FOUND, Answer, Operation, listing, query, route
from .replies import json_response

Username = Annotated[str, StringConstraints(max_length=320), AfterValidator(plain_text)]
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
#: The largest body of the two routes that take a picture (the app's limit is 64 KiB):
#: a 5 MiB picture is 6.7 MiB in base64, 7.1 MiB with escaped CRLFs every 76 characters.
IMAGE_BODY = 8 * 1024 * 1024
QrImage = Annotated[
    str,
    Field(
        description="A PNG or JPEG picture of the QR code (a screenshot or a photo), in "
        "base64 (a data: URL too); at most 5 MiB decoded and 50 megapixels (413 past "
        "either). Not base64, not such a picture, or no QR code of the right kind in it: 422"
    ),
]


class CredentialIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: Name
    username: Username | None = None
    password: Password | None = None


class CredentialPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: Name | None = None
    username: Username | None = None
    password: Password | None = None
    #: False for a shared account people also sign in to: no ``code.unsolicited``.
    report_unsolicited: bool | None = None

    @model_validator(mode="after")
    def _name_not_null(self) -> CredentialPatch:
        if "name" in self.model_fields_set and self.name is None:
            raise ValueError("name cannot be null")
        if "report_unsolicited" in self.model_fields_set and self.report_unsolicited is None:
            raise ValueError("report_unsolicited must be true or false")
        return self


class AuthenticatorIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    otpauth_uri: Annotated[str, StringConstraints(max_length=4096)] | None = None
    qr_image: QrImage | None = None
    secret: Annotated[str, StringConstraints(max_length=1024)] | None = None
    kind: Literal["totp", "hotp"] | None = None
    digits: int | None = None
    period: int | None = None
    algorithm: str | None = None
    counter: int | None = None

    @model_validator(mode="after")
    def _one_form(self) -> AuthenticatorIn:
        if self.qr_image is not None:
            if self.model_fields_set - {"qr_image"}:
                raise ValueError("'qr_image' carries every parameter; send it alone")
            return self
        if (self.otpauth_uri is None) == (self.secret is None):
            raise ValueError(
                "send either 'otpauth_uri', 'qr_image' or 'secret' (with 'kind'), one of them"
            )
        if self.otpauth_uri is not None and self.model_fields_set - {"otpauth_uri"}:
            raise ValueError("'otpauth_uri' carries every parameter; send it alone")
        if self.secret is not None and self.kind is None:
            raise ValueError("'kind' (totp or hotp) is required with 'secret'")
        return self


class ImportIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    otpauth_migration_uri: (
        Annotated[
            str,
            StringConstraints(max_length=enrolment.MAX_MIGRATION_URI_LENGTH),
            Field(description="otpauth-migration://offline?data=... (an app's export)"),
        ]
        | None
    ) = None
    qr_image: QrImage | None = None

    @model_validator(mode="after")
    def _one_form(self) -> ImportIn:
        if (self.otpauth_migration_uri is None) == (self.qr_image is None):
            raise ValueError("send either 'otpauth_migration_uri' or 'qr_image', one of them")
        return self


class PhoneIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    phone_number: Annotated[str, StringConstraints(max_length=32)] | None


class ProvisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    country: str = Field(description="ISO 3166 alpha-2 country code, such as US")
    area_code: str | None = Field(
        default=None, description="2 to 5 digits (US and Canada: the 3-digit area code)"
    )

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        if not (len(value) == 2 and value.isascii() and value.isalpha()):
            raise ValueError("must be an ISO 3166 alpha-2 country code, such as US")
        return value.upper()

    @field_validator("area_code")
    @classmethod
    def _area_code(cls, value: str | None) -> str | None:
        if value is not None and not (2 <= len(value) <= 5 and value.isascii() and value.isdigit()):
            raise ValueError("must be 2 to 5 digits, such as 415")
        return value


class ExtractionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    pattern: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    allowed_senders: Annotated[list[str], Field(max_length=50)] | None = None


def extraction_json(info: Extraction) -> dict[str, Any]:
    return {"pattern": info.pattern, "allowed_senders": info.allowed_senders}


def authenticator_json(info: AuthenticatorInfo) -> dict[str, Any]:
    return {
        "kind": info.kind,
        "digits": info.digits,
        "period": info.period,
        "algorithm": info.algorithm,
    }


def credential_json(info: CredentialInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "name": info.name,
        "username": info.username,
        "inbox": info.inbox,
        "phone_number": info.phone_number,
        "has_password": info.has_password,
        "authenticator": None
        if info.authenticator is None
        else authenticator_json(info.authenticator),
        "created_at": iso(info.created_at),
        "updated_at": iso(info.updated_at),
        "report_unsolicited": info.report_unsolicited,
    }


async def create_credential(request: web.Request) -> web.Response:
    tenant = await tenant_of(request)
    body = await json_body(request, CredentialIn)
    info = await request.app[SERVICES].credentials.create(
        tenant,
        name=body.name,
        username=body.username,
        password=body.password,
        actor=actor_of(request),
    )
    return json_response(credential_json(info), status=201)


async def list_credentials(request: web.Request) -> web.Response:
    tenant = await tenant_of(request)
    limit = int(query_number(request, "limit", default=100, low=1, high=1000, integer=True))
    after = request.query.get("after") or None
    items = await request.app[SERVICES].credentials.list(
        tenant, limit=limit, after=after, only=principal_of(request).credential_ids
    )
    return json_response(
        {
            "credentials": [credential_json(i) for i in items],
            "next": items[-1].id if len(items) == limit else None,
        }
    )


async def get_credential(request: web.Request) -> web.Response:
    tenant, cred_id = await credential_of(request)
    info = await request.app[SERVICES].credentials.get(tenant, cred_id)
    return json_response(credential_json(info))


async def patch_credential(request: web.Request) -> web.Response:
    tenant, cred_id = await credential_of(request)
    body = await json_body(request, CredentialPatch)
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    info = await request.app[SERVICES].credentials.update(
        tenant, cred_id, **changes, actor=actor_of(request)
    )
    return json_response(credential_json(info))


async def delete_credential(request: web.Request) -> web.Response:
    tenant, cred_id = await credential_of(request)
    services = request.app[SERVICES]
    await services.credentials.delete(
        tenant,
        cred_id,
        release_number=_release_flag(request),
        numbers=services.numbers,
        actor=actor_of(request),
    )
    return web.Response(status=204)


async def get_password(request: web.Request) -> web.Response:
    tenant, cred_id = await credential_of(request)
    password = await request.app[SERVICES].credentials.password(
        tenant, cred_id, actor=actor_of(request)
    )
    return json_response({"password": password}, headers={"Cache-Control": "no-store"})


async def put_authenticator(request: web.Request) -> web.Response:
    tenant, cred_id = await credential_of(request)
    body = await json_body(request, AuthenticatorIn, cap=IMAGE_BODY)
    if body.qr_image is not None:
        image = enrolment.image_from_base64(body.qr_image)
        auth = await request.app[SERVICES].credentials.authenticator_in_image(image)
    elif body.otpauth_uri is not None:
        auth = otp.parse_otpauth_uri(body.otpauth_uri)
    else:
        assert body.secret is not None
        assert body.kind is not None
        auth = otp.from_fields(
            secret=body.secret,
            kind=body.kind,
            digits=body.digits,
            period=body.period,
            algorithm=body.algorithm,
            counter=body.counter,
        )
    info = await request.app[SERVICES].credentials.set_authenticator(
        tenant, cred_id, auth, actor=actor_of(request)
    )
    return json_response(authenticator_json(info))


async def import_credentials(request: web.Request) -> web.Response:
    tenant = await tenant_of(request)
    body = await json_body(request, ImportIn, cap=IMAGE_BODY)
    credentials = request.app[SERVICES].credentials
    if body.qr_image is not None:
        accounts = await credentials.accounts_in_image(enrolment.image_from_base64(body.qr_image))
    else:
        assert body.otpauth_migration_uri is not None
        accounts = enrolment.parse_migration_uri(body.otpauth_migration_uri)
    created = await credentials.import_accounts(tenant, accounts, actor=actor_of(request))
    return json_response(
        {
            "created": [
                {
                    "id": info.id,
                    "name": info.name,
                    "kind": None if info.authenticator is None else info.authenticator.kind,
                }
                for info in created
            ]
        },
        status=201,
    )


async def delete_authenticator(request: web.Request) -> web.Response:
    tenant, cred_id = await credential_of(request)
    await request.app[SERVICES].credentials.delete_authenticator(
        tenant, cred_id, actor=actor_of(request)
    )
    return web.Response(status=204)


async def put_phone(request: web.Request) -> web.Response:
    tenant, cred_id = await credential_of(request)
    body = await json_body(request, PhoneIn)
    if body.phone_number is None:
        raise Invalid("'phone_number' is required; DELETE the phone route to remove a number")
    info = await request.app[SERVICES].credentials.set_phone(
        tenant, cred_id, body.phone_number, actor=actor_of(request)
    )
    return json_response(credential_json(info))


async def delete_phone(request: web.Request) -> web.Response:
    tenant, cred_id = await credential_of(request)
    services = request.app[SERVICES]
    await services.credentials.delete_phone(
        tenant,
        cred_id,
        release_number=_release_flag(request),
        numbers=services.numbers,
        actor=actor_of(request),
    )
    return web.Response(status=204)


async def provision_phone(request: web.Request) -> web.Response:
    tenant, cred_id = await credential_of(request)
    body = await json_body(request, ProvisionIn)
    services = request.app[SERVICES]
    info = await services.credentials.provision_phone(
        tenant,
        cred_id,
        services.numbers,
        country=body.country,
        area_code=body.area_code,
        sms_url=services.settings.public_url + services.adapters.twilio_sms,
        actor=actor_of(request),
    )
    return json_response(credential_json(info), status=201)


def _release_flag(request: web.Request) -> bool:
    """``?release_number=true``: also give a bought number back to Twilio."""
    raw = request.query.get("release_number")
    if raw is None:
        return False
    raw = raw.lower()
    if raw in ("0", "false"):  # an empty value is a malformed one, as for every query value
        return False
    if raw in ("1", "true"):
        return True
    raise BadInput("'release_number' must be true or false")


async def put_extraction(request: web.Request) -> web.Response:
    tenant, cred_id = await credential_of(request)
    body = await json_body(request, ExtractionIn)
    info = await request.app[SERVICES].credentials.set_extraction(
        tenant, cred_id, pattern=body.pattern, allowed_senders=body.allowed_senders
    )
    return json_response(extraction_json(info))


async def get_extraction(request: web.Request) -> web.Response:
    tenant, cred_id = await credential_of(request)
    info = await request.app[SERVICES].credentials.extraction(tenant, cred_id)
    return json_response(extraction_json(info))


AUTHENTICATOR = {
    "type": "object",
    "properties": {
        "kind": {"enum": ["totp", "hotp"]},
        "digits": {"type": "integer"},
        "period": {"type": "integer"},
        "algorithm": {"enum": ["SHA1", "SHA256", "SHA512"]},
    },
}
CREDENTIAL = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "username": {"type": ["string", "null"]},
        # Not "format": "email": the default inbox domain, inbox.localhost, is a
        # reserved name that strict e-mail validators refuse.
        "inbox": {"type": "string", "description": "local@inbox domain"},
        "phone_number": {"type": ["string", "null"]},
        "has_password": {"type": "boolean"},
        "report_unsolicited": {
            "type": "boolean",
            "description": "a code or link nobody signs in for fires code.unsolicited",
        },
        "authenticator": {"oneOf": [AUTHENTICATOR, {"type": "null"}]},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}
PASSWORD = {
    "type": "object",
    "required": ["password"],
    "properties": {"password": {"type": ["string", "null"], "description": "null when unset"}},
}
IMPORTED = {
    "type": "object",
    "required": ["created"],
    "properties": {
        "created": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "name": {"type": "string"},
                    "kind": {"enum": ["totp", "hotp"]},
                },
            },
        }
    },
}
_IMAGE_TOO_LARGE: Answer = ("The picture is over 5 MiB or 50 megapixels", ERROR)
EXTRACTION = {
    "type": "object",
    "properties": {
        "pattern": {"type": ["string", "null"]},
        "allowed_senders": {"type": ["array", "null"], "items": {"type": "string"}},
    },
}
_RELEASE_ERRORS: dict[int, Answer] = {
    400: ("release_number is not true or false", ERROR),
    422: ("release_number=true, but the gateway did not buy the number", ERROR),
    502: ("Twilio failed to release the number; nothing was changed", ERROR),
    503: ("release_number=true, but Twilio is not configured", ERROR),
}
_RELEASE = query(
    "release_number",
    {"type": "boolean", "default": False},
    "also release the number the gateway bought for the credential at Twilio",
)


def setup_routes(app: web.Application) -> None:
    twilio_sms = app[SERVICES].adapters.twilio_sms
    route(
        app,
        "POST",
        "/v1/credentials",
        create_credential,
        Operation(
            "Create a credential set",
            {201: ("Created", CREDENTIAL)},
            body=CredentialIn,
            auth=Access.CONFIGURE,
        ),
    )
    route(
        app,
        "POST",
        "/v1/credentials/import",
        import_credentials,
        Operation(
            "Import an authenticator app's export (otpauth-migration://, as the URI or a "
            "picture of its QR code): one credential per account, all or none; 422 names "
            "the first unusable account by its position",
            {201: ("Created", IMPORTED), 413: _IMAGE_TOO_LARGE},
            body=ImportIn,
            auth=Access.CONFIGURE,
        ),
    )
    route(
        app,
        "GET",
        "/v1/credentials",
        list_credentials,
        Operation(
            "List credentials (no passwords)",
            {200: ("A page of credentials", listing("credentials", CREDENTIAL, paged=True))},
            params=[
                query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "page size"),
                query("after", {"type": "string"}, "the id to start after (from 'next')"),
            ],
            auth=Access.USE,
        ),
    )
    route(
        app,
        "GET",
        "/v1/credentials/{id}",
        get_credential,
        Operation(
            "One credential",
            {200: ("Found", CREDENTIAL), 404: NOT_FOUND},
            auth=Access.USE,
        ),
    )
    route(
        app,
        "PATCH",
        "/v1/credentials/{id}",
        patch_credential,
        Operation(
            "Change name, username or password",
            {200: ("Changed", CREDENTIAL), 404: NOT_FOUND},
            body=CredentialPatch,
            auth=Access.CONFIGURE,
        ),
    )
    route(
        app,
        "DELETE",
        "/v1/credentials/{id}",
        delete_credential,
        Operation(
            "Delete a credential; with release_number=true, first release its "
            "bought number at Twilio (if that fails, nothing is deleted)",
            {204: ("Deleted", None), 404: NOT_FOUND, **_RELEASE_ERRORS},
            params=[_RELEASE],
            auth=Access.CONFIGURE,
        ),
    )
    route(
        app,
        "GET",
        "/v1/credentials/{id}/password",
        get_password,
        Operation(
            "The credential's password, for the agent's login",
            {200: ("The password", PASSWORD), 404: NOT_FOUND},
            auth=Access.SECRET,
        ),
    )
    route(
        app,
        "PUT",
        "/v1/credentials/{id}/authenticator",
        put_authenticator,
        Operation(
            "Store a TOTP/HOTP secret: an otpauth:// URI, a picture of its QR code "
            "(qr_image; 422 when it holds no otpauth:// QR code), or fields",
            {200: ("Stored", AUTHENTICATOR), 404: NOT_FOUND, 413: _IMAGE_TOO_LARGE},
            body=AuthenticatorIn,
            auth=Access.CONFIGURE,
        ),
    )
    route(
        app,
        "DELETE",
        "/v1/credentials/{id}/authenticator",
        delete_authenticator,
        Operation(
            "Remove the authenticator",
            {204: ("Removed", None), 404: NOT_FOUND},
            auth=Access.CONFIGURE,
        ),
    )
    route(
        app,
        "PUT",
        "/v1/credentials/{id}/phone",
        put_phone,
        Operation(
            "Assign a phone number (E.164)",
            {200: ("Assigned", CREDENTIAL), 404: NOT_FOUND, 409: ("Number taken", ERROR)},
            body=PhoneIn,
            auth=Access.CONFIGURE,
        ),
    )
    route(
        app,
        "DELETE",
        "/v1/credentials/{id}/phone",
        delete_phone,
        Operation(
            "Unassign the phone number; with release_number=true, first release it "
            "at Twilio (if that fails, it stays assigned)",
            {204: ("Unassigned", None), 404: NOT_FOUND, **_RELEASE_ERRORS},
            params=[_RELEASE],
            auth=Access.CONFIGURE,
        ),
    )
    route(
        app,
        "POST",
        "/v1/credentials/{id}/phone/provision",
        provision_phone,
        Operation(
            f"Buy an SMS-capable Twilio number, point its texts at <public URL>{twilio_sms} "
            "and assign it",
            {
                201: ("Bought and assigned", CREDENTIAL),
                404: NOT_FOUND,
                409: ("The credential already has a number", ERROR),
                502: ("Twilio failed; nothing was bought", ERROR),
                503: ("Twilio is not configured", ERROR),
            },
            body=ProvisionIn,
            auth=Access.CONFIGURE,
        ),
    )
    route(
        app,
        "PUT",
        "/v1/credentials/{id}/extraction",
        put_extraction,
        Operation(
            "Set a code pattern (one capture group) and/or allowed sender domains; "
            "null restores the default",
            {200: ("Stored", EXTRACTION), 404: NOT_FOUND},
            body=ExtractionIn,
            auth=Access.CONFIGURE,
        ),
    )
    route(
        app,
        "GET",
        "/v1/credentials/{id}/extraction",
        get_extraction,
        Operation(
            "The credential's own code pattern and allowed sender domains",
            {200: ("Settings", EXTRACTION), 404: NOT_FOUND},
            auth=Access.USE,
        ),
    )
