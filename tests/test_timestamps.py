"""The one formatter of times that clients and webhook receivers see."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from gateway.timestamps import iso


def _reference(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.mark.parametrize(
    ("ts", "text"),
    [
        (0.0, "1970-01-01T00:00:00.000Z"),
        (1_767_225_599.9994, "2025-12-31T23:59:59.999Z"),
        (1_767_225_599.9999996, "2026-01-01T00:00:00.000Z"),  # rounds up into the next year
        (1_780_000_000.25, "2026-05-28T20:26:40.250Z"),
        (-0.0000004, "1970-01-01T00:00:00.000Z"),
        (-1.5, "1969-12-31T23:59:58.500Z"),
    ],
)
def test_known_instants(ts: float, text: str) -> None:
    assert iso(ts) == text == _reference(ts)


def test_agrees_with_datetime_everywhere() -> None:
    """Random instants, repeated seconds and rounding edges read as datetime writes them."""
    rng = random.Random(20261128)
    for _ in range(50_000):
        base = rng.choice([rng.uniform(0, 4e9), round(rng.uniform(0, 4e9), 3)])
        for ts in (base, base + 0.0005, base + 0.9999996, base - 0.0000004, base + 0.001):
            assert iso(ts) == _reference(ts), ts
