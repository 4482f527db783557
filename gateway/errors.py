"""The domain's exceptions, in one place.

Nothing here knows about HTTP or SMTP: the HTTP error middleware and the SMTP
handler map these classes to their own status and reply codes.

    OtpgateError
    ├── ConfigError            bad settings or key file; the process stops
    ├── VaultError             a blob does not open (wrong key, moved, tampered)
    └── RequestError           something a client did; carries a stable ``code``
        ├── BadInput           malformed input (syntax)
        ├── Unauthenticated    no or unknown API key
        ├── Forbidden          a valid key that may not do this
        ├── NotFound           unknown object, or another tenant's
        ├── Conflict           the object's state forbids it
        ├── Expired            it existed but its time is over
        ├── TooLarge           the input is over a size limit
        ├── Invalid            well-formed but not acceptable
        ├── RateLimited        too many attempts
        ├── Unavailable        a part it needs is not configured (Twilio, ...)
        │   └── StoreUnavailable   the database cannot be reached or written now
        └── UpstreamFailed     a provider the gateway relies on failed (Twilio, ...)

``Unavailable`` and ``UpstreamFailed`` are not the client's fault, but like the
others they are answered to it as they are, with a stable code.
"""

from __future__ import annotations


class OtpgateError(Exception):
    """Base of every error otpgate raises on purpose."""


class ConfigError(OtpgateError):
    """The configuration cannot work; the message is one line for the operator."""


class VaultError(OtpgateError):
    """A sealed blob could not be opened or a key is unusable.

    The message never holds key material or plaintext.
    """


class RequestError(OtpgateError):
    """A client's mistake or a refusal, with a stable snake_case ``code``."""

    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class BadInput(RequestError):
    code = "bad_input"


class Unauthenticated(RequestError):
    code = "unauthenticated"


class Forbidden(RequestError):
    code = "forbidden"


class NotFound(RequestError):
    code = "not_found"


class Conflict(RequestError):
    code = "conflict"


class Expired(RequestError):
    code = "expired"


class TooLarge(RequestError):
    code = "too_large"


class Invalid(RequestError):
    code = "invalid"


class RateLimited(RequestError):
    """*retry_after*: the seconds to wait, when known (an HTTP ``Retry-After``)."""

    code = "rate_limited"

    def __init__(
        self, message: str, *, code: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class Unavailable(RequestError):
    code = "unavailable"


class StoreUnavailable(Unavailable):
    """The database cannot be reached or written for now (down, restarting, disk full).

    A temporary condition: SMTP answers ``451`` (the sender retries), the API
    ``503`` with ``Retry-After``.  The message never holds the database's URL.
    """

    code = "store_unavailable"

    def __init__(self, message: str = "the database cannot be reached; try again shortly") -> None:
        super().__init__(message)


class UpstreamFailed(RequestError):
    """The message says what failed; it never holds a provider's credentials."""

    code = "provider_error"
