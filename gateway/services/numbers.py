"""Phone numbers bought from a provider (Twilio) for a credential.

The core only knows this protocol; the SMS adapter (``sms.twilio_rest``)
implements it with the official ``twilio`` client, and the composition root
wires it in when Twilio is configured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class BoughtNumber:
    phone_number: str  # E.164
    sid: str  # the provider's id, to release it later


class NumberProvider(Protocol):
    async def buy(self, *, country: str, area_code: str | None, sms_url: str) -> BoughtNumber:
        """Find an SMS-capable number, buy it and point its inbound texts at *sms_url*.

        Raises :class:`~gateway.errors.Invalid` when none is available, and
        :class:`ProviderError` when the provider fails.
        """
        ...

    async def release(self, sid: str) -> None:
        """Give the number back to the provider."""
        ...

    async def close(self) -> None:
        """Close the provider's connections."""
        ...


class SmsSender(Protocol):
    async def send_sms(self, *, to: str, from_: str, body: str) -> None:
        """Send one text; raise :class:`ProviderError` (``retry`` says whether to try again)."""
        ...


class ProviderError(Exception):
    """The provider refused or could not be reached; the message is safe to log."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry
