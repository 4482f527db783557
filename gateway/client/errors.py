"""The SDK's exceptions, in one place.

    OtpgateClientError
    ├── ConnectionFailed          the gateway could not be reached, after the retries
    ├── CodeTimeout               no code came within the wait (also a ``TimeoutError``)
    ├── LinkTimeout               no link came within the wait (also a ``TimeoutError``)
    ├── WebhookVerificationError  a webhook's signature, timestamp or body did not check out
    └── ApiError                  the gateway answered an error (``status``, ``code``, ``message``)
        ├── BadRequest            400 malformed input
        ├── Unauthorized          401 no or bad API key
        ├── Forbidden             403 a valid key that may not do this
        ├── NotFound              404 unknown object, or another tenant's
        ├── Conflict              409 the object's state forbids it (``already_answered``, ...)
        │   ├── LoginInProgress   another login to the account is open (``login_in_progress``)
        │   └── NoBackupCodes     none left to take (``no_backup_codes``)
        ├── Expired               410 it existed but its time is over (``already_delivered``, ...)
        ├── TooLarge              413
        ├── Invalid               422 well-formed but not acceptable
        ├── RateLimited           429 (``retry_after`` when the gateway said)
        └── ServerError           5xx

``code`` is the gateway's stable snake_case error code and ``message`` its
human text; neither ever holds a secret or a code (the gateway's contract).
"""

from __future__ import annotations


class OtpgateClientError(Exception):
    """Base of every error the SDK raises on purpose."""


class ConnectionFailed(OtpgateClientError):
    """The request did not get an answer.

    ``maybe_processed`` is False when the request certainly never reached the
    gateway (the connection could not be made), True when it may have: the
    connection broke after the request was sent, so a change it asks for may
    have happened.  The SDK repeats such a request only when repeating it is
    harmless (see ``transport``).
    """

    def __init__(self, message: str, *, maybe_processed: bool) -> None:
        super().__init__(message)
        self.maybe_processed = maybe_processed


class CodeTimeout(OtpgateClientError, TimeoutError):
    """No code arrived within the wait."""


class LinkTimeout(OtpgateClientError, TimeoutError):
    """No sign-in or confirmation link arrived within the wait."""


class WebhookVerificationError(OtpgateClientError):
    """A webhook delivery did not verify: do not act on it."""


class ApiError(OtpgateClientError):
    """The gateway answered with an error status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, code={self.code!r})"


class BadRequest(ApiError):
    """400: the request was malformed."""


class Unauthorized(ApiError):
    """401: no API key, or one the gateway does not know."""


class Forbidden(ApiError):
    """403: the key is valid but may not do this (the admin key on a tenant's route...)."""


class NotFound(ApiError):
    """404: no such object, or another tenant's."""


class Conflict(ApiError):
    """409: the object's state forbids it (an interaction already answered...)."""


class LoginInProgress(Conflict):
    """409 ``login_in_progress``: another login to this account is open.

    Finish that one, or open with ``wait`` to queue behind it.
    """


class NoBackupCodes(Conflict):
    """409 ``no_backup_codes``: the credential's backup codes are used up."""


class Expired(ApiError):
    """410: the object existed but its time is over, or its code was already handed out."""


class TooLarge(ApiError):
    """413: the request body is over a size limit."""


class Invalid(ApiError):
    """422: well-formed but not acceptable (a short TOTP secret, a bad phone number...)."""


class RateLimited(ApiError):
    """429: too many attempts; ``retry_after`` is in seconds when the gateway said."""

    def __init__(
        self, status: int, code: str, message: str, *, retry_after: float | None = None
    ) -> None:
        super().__init__(status, code, message)
        self.retry_after = retry_after


class ServerError(ApiError):
    """5xx: the gateway (or a proxy in front of it) failed."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Expired,
    413: TooLarge,
    422: Invalid,
}


#: Error codes with a class of their own (a subclass of their status's class).
_BY_CODE: dict[tuple[int, str], type[ApiError]] = {
    (409, "login_in_progress"): LoginInProgress,
    (409, "no_backup_codes"): NoBackupCodes,
}


def api_error(
    status: int, code: str, message: str, *, retry_after: float | None = None
) -> ApiError:
    """The exception for an error answer."""
    if status == 429:
        return RateLimited(status, code, message, retry_after=retry_after)
    if status >= 500:
        return ServerError(status, code, message)
    cls = _BY_CODE.get((status, code)) or _BY_STATUS.get(status, ApiError)
    return cls(status, code, message)
