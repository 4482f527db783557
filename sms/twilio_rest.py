"""Twilio's REST API through the official ``twilio`` client: buy numbers, send texts.

SKELETON: to be completed.
"""

from __future__ import annotations

from gateway.services.numbers import BoughtNumber


class TwilioRest:
    def __init__(self, account_sid: str, auth_token: str, *, api_url: str) -> None:
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._api_url = api_url

    async def buy(self, *, country: str, area_code: str | None, sms_url: str) -> BoughtNumber:
        raise NotImplementedError

    async def release(self, sid: str) -> None:
        raise NotImplementedError

    async def send_sms(self, *, to: str, from_: str, body: str) -> None:
        raise NotImplementedError
