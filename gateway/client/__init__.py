"""The otpgate SDK: what an agent (or its operator) uses to talk to a gateway.

    from gateway.client import AsyncClient            # or Client, the blocking twin

    async with AsyncClient("http://127.0.0.1:8080", api_key) as gate:
        cred = await gate.credential("cred_...")
        async with gate.expect_code(cred) as pending:
            ...                                        # make the site send the code
        code = await pending                           # Code(source='email', value=<6 characters>)

It speaks HTTP only (aiohttp) and imports nothing of the server.  Modules:
``aio`` (``AsyncClient``, ``PendingCode``: all the logic), ``sync``
(``Client``: the same on a private event loop), ``transport`` (requests,
retries on connection errors only), ``clock`` (the gateway's time from its
``Date`` headers), ``models`` (answers whose reprs hide secrets), ``errors``
(the exception tree), ``webhooks`` (``verify_webhook``, with the optional
``standardwebhooks`` package) and ``browser`` (``fill_code`` and
``fill_password`` for Playwright pages).
"""

from .aio import AsyncClient, PendingCode
from .browser import FillResult, fill_code, fill_password
from .errors import (
    ApiError,
    BadRequest,
    CodeTimeout,
    Conflict,
    ConnectionFailed,
    Expired,
    Forbidden,
    Invalid,
    NotFound,
    OtpgateClientError,
    RateLimited,
    ServerError,
    TooLarge,
    Unauthorized,
    WebhookVerificationError,
)
from .models import (
    Authenticator,
    Code,
    Credential,
    Interaction,
    Secret,
    Tenant,
    Webhook,
    WebhookEvent,
)
from .sync import Client, SyncPendingCode
from .transport import Retry
from .webhooks import verify_webhook

__all__ = [
    "ApiError",
    "AsyncClient",
    "Authenticator",
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
    "NotFound",
    "OtpgateClientError",
    "PendingCode",
    "RateLimited",
    "Retry",
    "Secret",
    "ServerError",
    "SyncPendingCode",
    "Tenant",
    "TooLarge",
    "Unauthorized",
    "Webhook",
    "WebhookEvent",
    "WebhookVerificationError",
    "fill_code",
    "fill_password",
    "verify_webhook",
]
