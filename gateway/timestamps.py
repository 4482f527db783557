"""Times as the API and the webhooks show them: ISO 8601 in UTC, to the millisecond.

Stored times are UNIX seconds (floats); every time a client or a webhook
receiver sees goes through :func:`iso`, so the same instant always reads the
same way, whichever route or event carries it.
"""

from __future__ import annotations

from datetime import UTC, datetime


def iso(ts: float) -> str:
    """UNIX seconds as ``2026-01-02T03:04:05.678Z`` (milliseconds, truncated)."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
