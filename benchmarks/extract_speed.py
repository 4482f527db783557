"""Time per message of the code extractor, on a typical 2 KB sign-in mail and a short text.

The extractor is used as the gateway uses it: one ``Extractor`` for every
message, remembering the roles of the words it has read.

Speed is measured here and printed, not asserted in a unit test: CI machines
are too noisy for a timing to pass or fail a build.

    python benchmarks/extract_speed.py [--rounds 2000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.extraction.extractor import Extractor

MAIL = (
    "Hi Alex,\n\nWe received a request to sign in to your account from Chrome on "
    "Windows (IP 203.0.113.7) on March 3, 2025 at 10:42.\n\n"
    "Your verification code is:\n\n482913\n\nThis code expires in 10 minutes. "
    "If you didn't request it, you can ignore this email.\n\n"
) * 7 + "Example Inc., 1600 Main St, Springfield, IL 62704. Unsubscribe: example.com/u/123\n"
TEXT = "Your Example verification code is 482913. Don't share it with anyone."


def per_call(rounds: int, **kwargs: str) -> list[float]:
    """Microseconds per call, for five runs of *rounds* calls."""
    extractor = Extractor()
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(rounds):
            assert extractor.code(**kwargs) == "482913"
        runs.append((time.perf_counter() - started) / rounds * 1e6)
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    for name, kwargs in (
        (
            f"email, {len(MAIL)} characters",
            {"channel": "email", "subject": "Your code", "text": MAIL},
        ),
        (f"sms, {len(TEXT)} characters", {"channel": "sms", "subject": "", "text": TEXT}),
    ):
        runs = per_call(args.rounds, **kwargs)
        print(
            f"{name}: median {statistics.median(runs):.0f} µs, best {min(runs):.0f} µs per message"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
