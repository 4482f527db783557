"""Turn a message body into the plain text a reader would see.

``visible_text`` folds look-alike characters (NFKC: full-width digits become
ASCII ones) and drops invisible formatting characters (zero-width spaces,
bidirectional marks, soft hyphens); ``html_to_text`` renders an HTML part.

Only the standard library's tolerant ``html.parser`` is used. Invisible parts
(``<head>``, ``<title>``, ``<style>``, ``<script>``, comments, including
Outlook's conditional comments) are dropped; block elements and ``<br>``
become line breaks and table cells are kept apart by a tab, so that words from
neighbouring cells or paragraphs never run together. Entities are decoded.
Malformed markup never raises: whatever the parser cannot make sense of is
passed over.
"""

from __future__ import annotations

import re
import unicodedata
from html import unescape
from html.parser import HTMLParser

__all__ = ["html_to_text", "visible_text"]

# Soft hyphen, zero-width characters, bidirectional marks and isolates, BOM.
_INVISIBLE_CHARS = re.compile("[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_LINE_SPACE = re.compile(r" *[^\S\n ][^\S\n]*| {2,}")  # single spaces are left alone


def visible_text(text: str) -> str:
    """NFKC-fold ``text``, drop invisible characters, use one space and one line break."""
    # The full-width comma becomes the ideographic one, not ",": "199035\uff0c10分钟"
    # must not read as the decimal number 199035,10.
    text = unicodedata.normalize("NFKC", _INVISIBLE_CHARS.sub("", text).replace("\uff0c", "、"))
    return _LINE_SPACE.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))


# Elements whose text content is never shown to the reader.
_HIDDEN = frozenset(
    {"style", "script", "title", "noscript", "template", "xml", "object", "iframe", "svg"}
)
# Elements that start and end a block: a line break before and after.
_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "center", "dd",
        "details", "dialog", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer",
        "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "html", "li", "main",
        "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "tfoot", "thead",
        "tr", "ul",
    }
)  # fmt: skip
_CELL = frozenset({"td", "th"})

_HSPACE = re.compile(r"[^\S\n\t]+")  # horizontal white space other than tabs
_TABS = re.compile(r" ?\t[\t ]*")
_BLANKS = re.compile(r"\n{3,}")


class _TextCollector(HTMLParser):
    """Collects visible text; keeps no state beyond one document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden_depth = 0
        self._in_head = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self._hidden_depth += 1
        elif tag == "head":
            self._in_head = True
        elif tag == "body":
            self._in_head = False
        if tag == "br" or tag in _BLOCK:
            self.parts.append("\n")
        elif tag in _CELL:
            self.parts.append("\t")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # ``<br/>``, ``<hr/>``, ``<p/>``: a break, and nothing to close.
        if tag == "br" or tag in _BLOCK:
            self.parts.append("\n")
        elif tag in _CELL:
            self.parts.append("\t")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            if self._hidden_depth:
                self._hidden_depth -= 1
        elif tag == "head":
            self._in_head = False
        if tag in _BLOCK:
            self.parts.append("\n")
        elif tag in _CELL:
            self.parts.append("\t")

    def handle_data(self, data: str) -> None:
        if not self._hidden_depth and not self._in_head:
            self.parts.append(data)


def _tidy(raw: str) -> str:
    """Collapse white space: one space between words, one blank line at most."""
    lines = []
    for line in raw.replace("\r", "\n").split("\n"):
        line = _TABS.sub("\t", _HSPACE.sub(" ", line)).strip(" \t")
        lines.append(line)
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


_INVISIBLE_MARKUP = re.compile(
    r"<!--.*?(?:-->|$)|<(style|script|head|title)\b.*?(?:</\1\s*>|$)", re.I | re.S
)
_TAG = re.compile(r"<[^>]*>?")


def html_to_text(html: str) -> str:
    """Return the visible text of ``html`` with lines and cells kept apart."""
    collector = _TextCollector()
    try:
        collector.feed(html)
        collector.close()
    except Exception:
        crude = _TAG.sub("\n", _INVISIBLE_MARKUP.sub(" ", html))
        return _tidy(unescape(crude))
    return _tidy("".join(collector.parts))
