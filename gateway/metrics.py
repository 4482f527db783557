"""The gateway's Prometheus metrics, kept and rendered by ``prometheus_client``.

Labels are fixed, small sets (channel, outcome, source, status class): no
label ever holds an identifier, an address or content.

Each :class:`Metrics` has its own registry (no process-wide default
registry): a process may hold several gateways (the tests do), and each
exports only its own counts.  The ingest worker process keeps no metrics:
it reports each message's outcome in its answer to the gateway, which
counts it (:meth:`gateway.services.inbound.InboundService.announce`), so
``prometheus_client``'s multiprocess mode, with its files shared between
processes, is not needed.
"""

from __future__ import annotations

from collections.abc import Sequence

import prometheus_client
from prometheus_client import CollectorRegistry

#: The exposition's media type: :func:`prometheus_client.generate_latest` writes text
#: format 0.0.4 (names are plain ASCII: nothing needs the escaping of format 1.0.0).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Counter:
    """A counter with a fixed set of label names, and its value read back (for the tests)."""

    def __init__(
        self, registry: CollectorRegistry, name: str, help: str, labels: Sequence[str] = ()
    ) -> None:
        self.name, self.labels = name, tuple(labels)
        self._registry = registry
        self._counter = prometheus_client.Counter(name, help, self.labels, registry=registry)

    def declare(self, *values: str) -> None:
        """Show a label combination at zero before it first happens."""
        self._child(values)

    def inc(self, *values: str, amount: float = 1.0) -> None:
        self._child(values).inc(amount)

    def value(self, *values: str) -> float:
        found = self._registry.get_sample_value(
            self.name, dict(zip(self.labels, values, strict=True))
        )
        return found or 0.0

    def _child(self, values: Sequence[str]) -> prometheus_client.Counter:
        return self._counter.labels(*values) if self.labels else self._counter


class Gauge:
    """A value sampled when the metrics are read (a backlog counted in the store)."""

    def __init__(self, registry: CollectorRegistry, name: str, help: str) -> None:
        self.name = name
        self._gauge = prometheus_client.Gauge(name, help, registry=registry)

    def set(self, value: float) -> None:
        self._gauge.set(value)


class Histogram:
    def __init__(
        self, registry: CollectorRegistry, name: str, help: str, buckets: Sequence[float]
    ) -> None:
        self.name = name
        self._registry = registry
        self._histogram = prometheus_client.Histogram(
            name, help, buckets=sorted(buckets), registry=registry
        )

    def observe(self, value: float) -> None:
        self._histogram.observe(value)

    @property
    def count(self) -> int:
        return int(self._registry.get_sample_value(f"{self.name}_count") or 0)


class Metrics:
    """Every metric the gateway exports, created once by the composition root."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.messages = Counter(
            registry,
            "otpgate_messages_total",
            "Messages received, by channel and outcome.",
            ("channel", "outcome"),
        )
        for channel in ("email", "sms"):
            for outcome in ("code", "link", "no_code", "ambiguous", "rejected"):
                self.messages.declare(channel, outcome)
        self.codes_delivered = Counter(
            registry,
            "otpgate_codes_delivered_total",
            "Codes handed to agents, by source.",
            ("source",),
        )
        for source in ("totp", "hotp", "email", "sms", "user"):
            self.codes_delivered.declare(source)
        self.code_wait = Histogram(
            registry,
            "otpgate_code_wait_seconds",
            "Time from a message being accepted to its code being handed to an agent.",
            (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
        )
        self.logins = Counter(
            registry, "otpgate_logins_total", "Login attempts finished, by outcome.", ("outcome",)
        )
        for outcome in ("succeeded", "failed"):
            self.logins.declare(outcome)
        self.long_lines = Counter(
            registry,
            "otpgate_mail_long_lines_total",
            "Mails accepted with a line over RFC 5322's 998 characters.",
        )
        self.long_lines.declare()
        self.http_requests = Counter(
            registry,
            "otpgate_http_requests_total",
            "HTTP requests answered, by status class.",
            ("status",),
        )
        self.ingest_failures = Counter(
            registry,
            "otpgate_ingest_failures_total",
            "Messages the ingest worker may not have stored (the sender is asked to retry, "
            "or a text is stored in the gateway's process), by channel.",
            ("channel",),
        )
        for channel in ("email", "sms"):
            self.ingest_failures.declare(channel)
        self.worker_restarts = Counter(
            registry,
            "otpgate_ingest_worker_restarts_total",
            "Times the ingest worker died and was restarted.",
        )
        self.worker_restarts.declare()
        self.unsolicited = Counter(
            registry,
            "otpgate_codes_unsolicited_total",
            "Codes and links that arrived while no agent on this replica waited for them "
            "(someone else may be signing in), by channel.",
            ("channel",),
        )
        for channel in ("email", "sms"):
            self.unsolicited.declare(channel)
        self.webhook_backlog = Gauge(
            registry,
            "otpgate_webhook_deliveries_pending",
            "Webhook deliveries queued and not yet delivered or given up (read at each scrape).",
        )
        self.forward_backlog = Gauge(
            registry,
            "otpgate_forwards_pending",
            "Forwarded copies queued and not yet sent (read at each scrape).",
        )
        self.code_waiters = Gauge(
            registry,
            "otpgate_code_waiters",
            "Agents long-polling this replica for a code or link.",
        )

    def render(self) -> str:
        """The Prometheus text exposition of every metric."""
        return prometheus_client.generate_latest(self.registry).decode()
