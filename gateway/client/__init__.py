"""The otpgate SDK: what an agent (or its operator) uses to talk to a gateway.

    from gateway.client import AsyncClient            # or Client, the blocking twin

    async with AsyncClient("http://127.0.0.1:8080", api_key) as gate:
        cred = await gate.credential("cred_...")
        async with gate.login(cred) as login:          # the account is this agent's alone
            ...                                        # make the site send the code
            code = await login.code(wait=60)           # Code(source='email', value=<6 characters>)
        # left cleanly: the login finished as "succeeded" (an exception: "failed")

Besides codes: ``login.link()`` / ``expect_link`` (sign-in links, opened
with ``open_link``), ``take_backup_code``, and ``request_approval`` (a
person approves a push prompt, matching the number the site shows).

It speaks HTTP only (aiohttp) and imports nothing of the server.  Modules:
``aio`` (``AsyncClient``: all the logic), ``logins`` (``Login`` and the
``async with`` block), ``pending`` (``PendingCode``, ``PendingLink``: what
``expect_code`` and ``expect_link`` wait for), ``sync`` (``Client``: the same
on a private event loop), ``transport`` (requests, long polls, and which
requests are repeated after a broken connection), ``clock`` (the gateway's
time from its ``Date`` headers), ``models`` (answers whose reprs hide
secrets), ``errors`` (the exception tree), ``webhooks`` (``verify_webhook``,
with the optional ``standardwebhooks`` package) and ``browser``
(``fill_code``, ``fill_password`` and ``open_link`` for Playwright pages).
"""

from .aio import AsyncClient
from .browser import FillResult, LinkResult, fill_code, fill_password, open_link
from .errors import (
    ApiError,
    BadRequest,
    CodeTimeout,
    Conflict,
    ConnectionFailed,
    Expired,
    Forbidden,
    Invalid,
    LinkTimeout,
    LoginInProgress,
    NoBackupCodes,
    NotFound,
    OtpgateClientError,
    RateLimited,
    ServerError,
    TooLarge,
    Unauthorized,
    WebhookVerificationError,
)
from .logins import Login
from .models import (
    Authenticator,
    BackupCode,
    Code,
    Credential,
    Interaction,
    Link,
    Secret,
    Tenant,
    Webhook,
    WebhookEvent,
)
from .pending import PendingCode, PendingLink
from .sync import Client, SyncLogin, SyncPendingCode, SyncPendingLink
from .transport import Retry
from .webhooks import verify_webhook

__all__ = [
    "ApiError",
    "AsyncClient",
    "Authenticator",
    "BackupCode",
    "BadRequest",
    "Client",
    "Code",
    "CodeTimeout",
    "Conflict",
    "ConnectionFailed",
    "Credential",
    "Expired",
    "FillResult",
    "Forbidden",
    "Interaction",
    "Invalid",
    "Link",
    "LinkResult",
    "LinkTimeout",
    "Login",
    "LoginInProgress",
    "NoBackupCodes",
    "NotFound",
    "OtpgateClientError",
    "PendingCode",
    "PendingLink",
    "RateLimited",
    "Retry",
    "Secret",
    "ServerError",
    "SyncLogin",
    "SyncPendingCode",
    "SyncPendingLink",
    "Tenant",
    "TooLarge",
    "Unauthorized",
    "Webhook",
    "WebhookEvent",
    "WebhookVerificationError",
    "fill_code",
    "fill_password",
    "open_link",
    "verify_webhook",
]
