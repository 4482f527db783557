"""The services container: what every view reaches through ``request.app[SERVICES]``.

The composition root (``gateway.app``) builds one :class:`Services` and puts
it in the application before the routes are set up.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from ..metrics import Metrics
from ..services.android import AndroidDevices
from ..services.apikeys import ApiKeys
from ..services.audit import AuditTrail
from ..services.backup_codes import BackupCodes
from ..services.codes import CodeService
from ..services.counts import MessageCounts
from ..services.credentials import CredentialService
from ..services.forward_delivery import LeasedCopy
from ..services.forwards import ForwardRules
from ..services.inbound import InboundService
from ..services.interactions import InteractionService
from ..services.logins import LoginService
from ..services.numbers import NumberProvider
from ..services.outbox import Outbox
from ..services.skyvern import SkyvernEndpoints
from ..services.sms import SmsService
from ..services.tenants import TenantService
from ..services.webhook_delivery import LeasedDelivery
from ..services.webhooks import WebhookEndpoints
from ..services.websessions import WebSessions
from ..settings import Settings
from ..store.db import Database


@dataclass(slots=True)
class Lifecycle:
    """What the process is doing: serving, or draining before it stops."""

    draining: bool = False


@dataclass(frozen=True, slots=True)
class AdapterPaths:
    """Where the inbound-SMS adapters listen, relative to ``OTPGATE_PUBLIC_URL``.

    The adapters declare their own paths; the core learns them from this
    value only, to show clients the webhook URLs they must configure.
    """

    #: Twilio's inbound-message webhook (a bought number's texts go there).
    twilio_sms: str
    #: SMS Gateway for Android's ``sms:received`` webhook.
    android_sms: str


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    db: Database
    metrics: Metrics
    tenants: TenantService
    audit: AuditTrail
    apikeys: ApiKeys
    credentials: CredentialService
    codes: CodeService
    logins: LoginService
    backup_codes: BackupCodes
    #: Skyvern's totp_url per credential, and its polls.
    skyvern: SkyvernEndpoints
    inbound: InboundService
    webhook_endpoints: WebhookEndpoints
    #: Sends webhook deliveries (its sender: a WebhookDelivery).
    webhook_outbox: Outbox[LeasedDelivery]
    interactions: InteractionService
    forward_rules: ForwardRules
    #: Sends forwarded copies (its sender: a ForwardDelivery).
    forward_outbox: Outbox[LeasedCopy]
    sms: SmsService
    android: AndroidDevices
    lifecycle: Lifecycle
    adapters: AdapterPaths
    #: Sessions of the authentication center (the pages under /ui).
    web_sessions: WebSessions
    #: Messages received per day, for the pages' charts.
    message_counts: MessageCounts
    #: Buys and releases phone numbers; None when Twilio is not configured.
    numbers: NumberProvider | None = None


SERVICES = web.AppKey("services", Services)
