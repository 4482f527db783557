"""A mail forwarded as an attachment: the message inside is the one with the code.

Mail clients forward "as attachment" (Outlook's rules, Gmail's and Apple
Mail's menu item) as a ``multipart/mixed`` mail whose note is the first part
and whose original is a ``message/rfc822`` part.  :func:`attached_message`
finds that original, so that its subject and body are what extraction reads;
an original forwarded again the same way is unwrapped too, up to
:data:`MAX_NESTING` times.

Only a ``message/rfc822`` part directly under a top-level ``multipart/mixed``
counts: a delivery report (``multipart/report``) quotes the message it is
about, which is not mail for the inbox.  Like :mod:`gateway.extraction.mime`
this never raises and logs nothing, and it hands the parser the same bounded
prefix of the mail, so a hostile one costs no more than its parse.
"""

from __future__ import annotations

import contextlib
import re
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32

from ..extraction.mime import _parse_window

__all__ = ["MAX_NESTING", "attached_message"]

#: How many forwards-as-attachment deep an original is looked for.
MAX_NESTING = 3
#: Parts of the top-level mail looked at for the attached original.
_MAX_PARTS = 20

_ATTACHED = re.compile(rb"message/rfc822", re.IGNORECASE)


def attached_message(raw: bytes) -> bytes | None:
    """The raw bytes of the message *raw* forwards as an attachment, or None."""
    if _ATTACHED.search(raw) is None:  # the parse is skipped for almost every mail
        return None
    with contextlib.suppress(Exception):  # malformed, or nested past the recursion limit
        mail = BytesParser(policy=compat32).parsebytes(_parse_window(raw))
        if mail.get_content_type() != "multipart/mixed":
            return None
        parts = mail.get_payload()
        for part in parts[:_MAX_PARTS] if isinstance(parts, list) else ():
            if isinstance(part, Message) and part.get_content_type() == "message/rfc822":
                inner = part.get_payload()
                if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                    return inner[0].as_bytes(policy=compat32)
    return None
