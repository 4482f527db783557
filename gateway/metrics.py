"""A small Prometheus registry: counters and histograms, rendered as text.

Labels are fixed, small sets (channel, outcome, source, status class): no
label ever holds an identifier, an address or content.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence


def _labels(names: Sequence[str], values: Sequence[str]) -> str:
    if not names:
        return ""
    inner = ",".join(
        f'{n}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for n, v in zip(names, values, strict=True)
    )
    return "{" + inner + "}"


class Counter:
    def __init__(self, name: str, help: str, labels: Sequence[str] = ()) -> None:
        self.name, self.help, self.labels = name, help, tuple(labels)
        self._values: dict[tuple[str, ...], float] = {}

    def declare(self, *values: str) -> None:
        """Show a label combination at zero before it first happens."""
        self._values.setdefault(tuple(values), 0.0)

    def inc(self, *values: str, amount: float = 1.0) -> None:
        key = tuple(values)
        self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, *values: str) -> float:
        return self._values.get(tuple(values), 0.0)

    def render(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        for key, v in sorted(self._values.items()):
            out.append(f"{self.name}{_labels(self.labels, key)} {v:g}")
        return out


class Gauge:
    """A value sampled when the metrics are read (a backlog counted in the store)."""

    def __init__(self, name: str, help: str) -> None:
        self.name, self.help = name, help
        self.value = 0.0

    def set(self, value: float) -> None:
        self.value = value

    def render(self) -> list[str]:
        return [
            f"# HELP {self.name} {self.help}",
            f"# TYPE {self.name} gauge",
            f"{self.name} {self.value:g}",
        ]


class Histogram:
    def __init__(self, name: str, help: str, buckets: Sequence[float]) -> None:
        self.name, self.help = name, help
        self.buckets = tuple(sorted(buckets))
        self._counts = [0] * (len(self.buckets) + 1)
        self._sum = 0.0
        self._count = 0

    def observe(self, value: float) -> None:
        self._counts[bisect.bisect_left(self.buckets, value)] += 1
        self._sum += value
        self._count += 1

    @property
    def count(self) -> int:
        return self._count

    def render(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        cumulative = 0
        for bound, n in zip(self.buckets, self._counts, strict=False):
            cumulative += n
            out.append(f'{self.name}_bucket{{le="{bound:g}"}} {cumulative}')
        out.append(f'{self.name}_bucket{{le="+Inf"}} {self._count}')
        out.append(f"{self.name}_sum {self._sum:g}")
        out.append(f"{self.name}_count {self._count}")
        return out


class Metrics:
    """Every metric the gateway exports, created once by the composition root."""

    def __init__(self) -> None:
        self.messages = Counter(
            "otpgate_messages_total",
            "Messages received, by channel and outcome.",
            ("channel", "outcome"),
        )
        for channel in ("email", "sms"):
            for outcome in ("code", "link", "no_code", "ambiguous", "rejected"):
                self.messages.declare(channel, outcome)
        self.codes_delivered = Counter(
            "otpgate_codes_delivered_total", "Codes handed to agents, by source.", ("source",)
        )
        for source in ("totp", "hotp", "email", "sms", "user"):
            self.codes_delivered.declare(source)
        self.code_wait = Histogram(
            "otpgate_code_wait_seconds",
            "Time from a message being accepted to its code being handed to an agent.",
            (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
        )
        self.logins = Counter(
            "otpgate_logins_total", "Login attempts finished, by outcome.", ("outcome",)
        )
        for outcome in ("succeeded", "failed"):
            self.logins.declare(outcome)
        self.long_lines = Counter(
            "otpgate_mail_long_lines_total",
            "Mails accepted with a line over RFC 5322's 998 characters.",
        )
        self.long_lines.declare()
        self.http_requests = Counter(
            "otpgate_http_requests_total", "HTTP requests answered, by status class.", ("status",)
        )
        self.ingest_failures = Counter(
            "otpgate_ingest_failures_total",
            "Messages the ingest worker may not have stored (the sender is asked to retry, "
            "or a text is stored in the gateway's process), by channel.",
            ("channel",),
        )
        for channel in ("email", "sms"):
            self.ingest_failures.declare(channel)
        self.worker_restarts = Counter(
            "otpgate_ingest_worker_restarts_total",
            "Times the ingest worker died and was restarted.",
        )
        self.worker_restarts.declare()
        self.unsolicited = Counter(
            "otpgate_codes_unsolicited_total",
            "Codes and links that arrived while no agent on this replica waited for them "
            "(someone else may be signing in), by channel.",
            ("channel",),
        )
        for channel in ("email", "sms"):
            self.unsolicited.declare(channel)
        self.webhook_backlog = Gauge(
            "otpgate_webhook_deliveries_pending",
            "Webhook deliveries queued and not yet delivered or given up (read at each scrape).",
        )
        self.forward_backlog = Gauge(
            "otpgate_forwards_pending",
            "Forwarded copies queued and not yet sent (read at each scrape).",
        )
        self.code_waiters = Gauge(
            "otpgate_code_waiters",
            "Agents long-polling this replica for a code or link.",
        )

    def render(self) -> str:
        lines: list[str] = []
        for metric in (
            self.messages,
            self.codes_delivered,
            self.code_wait,
            self.logins,
            self.long_lines,
            self.http_requests,
            self.ingest_failures,
            self.worker_restarts,
            self.unsolicited,
            self.webhook_backlog,
            self.forward_backlog,
            self.code_waiters,
        ):
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"
