"""Time per message of the code and link extractors, on typical 2 KB sign-in mails and a short text.

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
LINK_URL = "https://app.example.com/auth/verify?token=Zx81kQp2Lm9Rt4Vb7Nc3Hd6Jf0Gs5Ya2We8&uid=4821"
LINK_MAIL = (
    '<html><body><table width="100%"><tr><td align="center"><a href="https://example.com/">'
    '<img src="https://example.com/logo.png" alt="Example" width="120"></a></td></tr>'
    '<tr><td style="padding:24px"><h1>Confirm your email address</h1><p>Hi Alex,</p>'
    "<p>Thanks for signing up for Example. Please confirm that this is your email address "
    "so we can finish setting up your account. The link expires in 24 hours.</p>"
    '<table><tr><td bgcolor="#2563eb" style="border-radius:6px">'
    f'<a href="{LINK_URL.replace("&", "&amp;")}" style="color:#fff;padding:12px 24px;'
    'display:inline-block">Confirm email</a></td></tr></table>'
    "<p>Or paste this link into your browser:</p>"
    f'<p><a href="{LINK_URL.replace("&", "&amp;")}">{LINK_URL.replace("&", "&amp;")}</a></p>'
    "<p>If you didn't create an account, you can ignore this email. For your security, "
    "this link works once and only from the device that asked for it; if it has expired, "
    "ask for a new one on the sign-in page and we will send you a fresh link.</p>"
    "<p>Why am I getting this? You (or someone using your address) created an Example "
    "account on March 3, 2025 from Chrome on Windows, near Springfield, IL. Once your "
    "address is confirmed you can invite your team, connect your calendar and start "
    "your first project.</p></td></tr>"
    '<tr><td style="font-size:12px;color:#888">You are receiving this email because an account '
    "was created with this address. This is a service message about your account, not a "
    "newsletter. Example Inc., 1600 Main St, Springfield, IL 62704 '"
    '&middot; <a href="https://example.com/privacy">Privacy</a> &middot; '
    '<a href="https://example.com/help">Help</a> &middot; '
    '<a href="https://twitter.com/example"><img src="https://example.com/x.png" alt="X"></a>'
    "</td></tr></table></body></html>"
)


def per_call(rounds: int, **kwargs: str) -> list[float]:
    """Microseconds per call of the code extractor, for five runs of *rounds* calls."""
    extractor = Extractor()
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(rounds):
            assert extractor.code(**kwargs) == "482913"
        runs.append((time.perf_counter() - started) / rounds * 1e6)
    return runs


def per_link_call(rounds: int, **kwargs: str) -> list[float]:
    """Microseconds per call of the link extractor, for five runs of *rounds* calls."""
    extractor = Extractor()
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(rounds):
            found = extractor.link(**kwargs)
            assert found is not None
            assert found.url == LINK_URL
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
    for name, kwargs in (
        (
            f"link, HTML email, {len(LINK_MAIL)} characters",
            {"channel": "email", "subject": "Confirm your email address", "html": LINK_MAIL},
        ),
        (
            f"link, sms, {len(LINK_URL) + 22} characters",
            {"channel": "sms", "subject": "", "text": f"Tap to sign in: {LINK_URL}"},
        ),
    ):
        runs = per_link_call(args.rounds, **kwargs)
        print(
            f"{name}: median {statistics.median(runs):.0f} µs, best {min(runs):.0f} µs per message"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
