"""Turn a message body into the plain text a reader would see, and blank its links.

``visible_text`` folds look-alike characters (NFKC: full-width digits become
ASCII ones) and drops invisible formatting characters (zero-width spaces,
bidirectional marks, soft hyphens); ``html_to_text`` renders an HTML part;
``blank_links`` blanks out links, e-mail addresses and bare domains, since a
code inside a link is never one a reader types.

HTML is read as the standard library's tolerant ``html.parser`` reads it.
Invisible parts (``<head>``, ``<title>``, ``<style>``, ``<script>``, comments,
including Outlook's conditional comments) are dropped; block elements and
``<br>`` become line breaks and table cells are kept apart by a tab, so that
words from neighbouring cells or paragraphs never run together. Entities are
decoded. Malformed markup never raises: whatever the parser cannot make sense
of is passed over.

Speed (the SMTP listener renders every mail): ``html.parser`` costs ~5 us a
tag, so markup in the common, unambiguous subset (well-formed tags with quoted
or plain attribute values, plain comments, closed ``<style>`` and ``<script>``
blocks) is read by one regular expression instead, with the same events in the
same order; anything else (CDATA sections, stray ``<``, odd attribute syntax,
raw-text elements the parser versions disagree on) goes to ``html.parser``.
Both give the same text, which ``tests/test_extract.py`` checks on random
markup. ASCII text skips NFKC and the invisible-character pass (both are the
identity on it), and links are found from their ``://``, ``@`` and ``.``
anchors rather than by running each pattern over the whole text.
"""

from __future__ import annotations

import re
import unicodedata
from html import unescape
from html.parser import HTMLParser

__all__ = ["blank_links", "html_to_text", "visible_text"]

# Soft hyphen, zero-width characters, bidirectional marks and isolates, BOM.
_INVISIBLE_CHARS = re.compile("[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
# A run of white space other than line breaks becomes one space. Written to
# start with a character class (the engine then skips to candidates), and to
# leave a lone space alone rather than replace it by itself.
_LINE_SPACE = re.compile(r"[^\S\n](?:[^\S\n]+|(?<! ))")
_ODD_ASCII_SPACE = re.compile("[\t\x0b\x0c\x1c-\x1f]")


def visible_text(text: str) -> str:
    """NFKC-fold ``text``, drop invisible characters, use one space and one line break."""
    if not text.isascii():
        # The full-width comma becomes the ideographic one, not ",": "199035\uff0c10分钟"
        # must not read as the decimal number 199035,10.
        text = _INVISIBLE_CHARS.sub("", text).replace("\uff0c", "、")
        text = unicodedata.normalize("NFKC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.isascii() and "  " not in text and not _ODD_ASCII_SPACE.search(text):
        return text  # nothing to collapse
    return _LINE_SPACE.sub(" ", text)


# --- HTML --------------------------------------------------------------------------------

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
_START_BREAK = {tag: "\n" for tag in _BLOCK | {"br"}} | dict.fromkeys(_CELL, "\t")
_END_BREAK = {tag: "\n" for tag in _BLOCK} | dict.fromkeys(_CELL, "\t")

_HSPACE = re.compile(r"[^\S\n\t](?:[^\S\n\t]+|(?<! ))")  # as _LINE_SPACE, tabs kept
_TABS = re.compile(r" ?\t[\t ]*")
_LINE_EDGES = re.compile(r"[ \t]+\n[ \t]*|\n[ \t]+")
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
        if tag in _START_BREAK:
            self.parts.append(_START_BREAK[tag])

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # ``<br/>``, ``<hr/>``, ``<p/>``: a break, and nothing to close.
        if tag in _START_BREAK:
            self.parts.append(_START_BREAK[tag])

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            if self._hidden_depth:
                self._hidden_depth -= 1
        elif tag == "head":
            self._in_head = False
        if tag in _END_BREAK:
            self.parts.append(_END_BREAK[tag])

    def handle_data(self, data: str) -> None:
        if not self._hidden_depth and not self._in_head:
            self.parts.append(data)


def _tidy(raw: str) -> str:
    """Collapse white space: one space between words, one blank line at most.

    Each line loses its outer spaces and tabs, runs of other white space become
    one space and a tab swallows the spaces around it; none of the patterns
    crosses a line break, so they run over the whole text at once.
    """
    text = _TABS.sub("\t", _HSPACE.sub(" ", raw.replace("\r", "\n")))
    text = _LINE_EDGES.sub("\n", text).strip(" \t")
    return _BLANKS.sub("\n\n", text).strip()


_INVISIBLE_MARKUP = re.compile(
    r"<!--.*?(?:-->|$)|<(style|script|head|title)\b.*?(?:</\1\s*>|$)", re.I | re.S
)
_TAG = re.compile(r"<[^>]*>?")

# Markup the fast reader understands exactly as ``html.parser`` does (in every
# version since 3.11): each ``<`` starts one of these, or "bad" sends the whole
# document to the parser.
_SPACE = r"[\t\n\r\f ]"
_MARKUP = re.compile(
    rf"""<(?:
      (?P<open>[a-zA-Z][a-zA-Z0-9:-]*)
        (?:{_SPACE}+[a-zA-Z_:][-a-zA-Z0-9_:.]*
          (?:{_SPACE}*={_SPACE}*(?:"[^"]*"|'[^']*'|[^\s"'=<>`/]+(?={_SPACE}|>)))?
        )*{_SPACE}*(?P<slash>/?)>
    | /(?P<close>[a-zA-Z][a-zA-Z0-9:-]*){_SPACE}*>
    | !--(?!-?>)(?:(?!--).)*-->      # a comment with no "--" inside
    | !(?![-\[])[^>]*>               # <!DOCTYPE ...> and other declarations
    | \?[^>]*>                       # a processing instruction
    | (?P<lt>)(?=[^a-zA-Z/!?])       # a "<" that starts no markup: text
    | (?P<bad>)
    )""",
    re.S | re.X,
)
# After <style> and <script>, text up to the end tag is not markup. Parser
# versions differ on which end tags count, so the first "</style" must be one
# that all accept, "</style>" exactly.
_RAW_END = {
    tag: (re.compile(rf"</\s*{tag}\s*>", re.I), re.compile(rf"</{tag}[\t\n\r\f />]", re.I))
    for tag in ("style", "script")
}
# Elements whose content some parser versions read as raw text: the fast reader
# takes them only when nothing but their end tag follows ("<title>Code</title>").
_MUST_CLOSE = frozenset({"title", "iframe", "noscript"})
_UNSAFE = frozenset({"textarea", "xmp", "noembed", "noframes", "plaintext"})


def _collect_fast(html: str) -> list[str] | None:
    """What ``_TextCollector`` collects from ``html``, or None if the markup is not plain."""
    parts: list[str] = []
    hidden, in_head = 0, False
    pos = 0  # where the text after the last markup starts
    must_close = ""
    for m in _MARKUP.finditer(html):
        start = m.start()
        if start < pos:  # inside a <style> or <script> block already read
            if m.end() > pos:
                return None
            continue
        if start > pos and not hidden and not in_head:
            text = html[pos:start]
            parts.append(unescape(text) if "&" in text else text)
        pos = m.end()
        kind = m.lastgroup
        if must_close and (kind != "close" or m.group("close").lower() != must_close):
            return None
        must_close = ""
        if kind == "slash":  # a start tag
            tag = m.group("open").lower()
            if m.group("slash"):
                if tag in _HIDDEN or tag in _UNSAFE:
                    return None
                if tag in _START_BREAK:
                    parts.append(_START_BREAK[tag])
                continue
            if tag in _HIDDEN:
                hidden += 1
            elif tag == "head":
                in_head = True
            elif tag == "body":
                in_head = False
            elif tag in _UNSAFE:
                return None
            if tag in _START_BREAK:
                parts.append(_START_BREAK[tag])
            if tag in _RAW_END:
                old, new = (end.search(html, pos) for end in _RAW_END[tag])
                if old is None or new is None or old.start() != new.start():
                    return None
                if old.end() - old.start() != len(tag) + 3:  # not "</style>"
                    return None
                pos = old.end()
                hidden -= 1  # the end tag closes what the start tag opened
            elif tag in _MUST_CLOSE:
                must_close = tag
        elif kind == "close":
            tag = m.group("close").lower()
            if tag in _HIDDEN:
                hidden = max(hidden - 1, 0)
            elif tag == "head":
                in_head = False
            if tag in _END_BREAK:
                parts.append(_END_BREAK[tag])
        elif kind == "lt":
            if not hidden and not in_head:
                parts.append("<")
        elif kind == "bad":
            return None
    if must_close:
        return None
    if pos < len(html) and not hidden and not in_head:
        text = html[pos:]
        parts.append(unescape(text) if "&" in text else text)
    return parts


def html_to_text(html: str) -> str:
    """Return the visible text of ``html`` with lines and cells kept apart."""
    parts = _collect_fast(html)
    if parts is None:
        collector = _TextCollector()
        try:
            collector.feed(html)
            collector.close()
        except Exception:
            crude = _TAG.sub("\n", _INVISIBLE_MARKUP.sub(" ", html))
            return _tidy(unescape(crude))
        parts = collector.parts
    return _tidy("".join(parts))


# --- links -------------------------------------------------------------------------------

_URL_TAIL = r"(?:[^\s<>\"']*[^\s<>\"'.,:;!?)\]}])?"  # a link does not end in punctuation
# Links are blanked out before reading: scheme://..., www...., e-mail addresses,
# and bare domains (a label with a letter before a lower-case top-level domain).
_URLS = re.compile(rf"\b\w[\w*+.-]*://{_URL_TAIL}|\bwww\.{_URL_TAIL}", re.I)
_EMAILS = re.compile(r"(?<![\w.+*%-])[\w.+*%-]+@[\w-]+(?:\.[\w-]+)+")
_DOMAINS = re.compile(
    rf"\b(?:[A-Za-z0-9-]+\.)*[0-9-]*[A-Za-z][A-Za-z0-9-]*\.[a-z]{{2,12}}\b(?:/{_URL_TAIL})?"
)
_TLD_DOT = re.compile(r"\.(?<=[A-Za-z0-9-]\.)(?=[a-z])")  # in every match of _DOMAINS
# What the run a match starts with is made of: ASCII characters to strip, and
# a pattern for any one character of it.
_ASCII_ALNUM = "".join(c for c in map(chr, range(128)) if c.isalnum())
_URL_RUN = (_ASCII_ALNUM + "_*+.-", re.compile(r"[\w*+.-]"))
_EMAIL_RUN = (_ASCII_ALNUM + "_.+*%-", re.compile(r"[\w.+*%-]"))
_DOMAIN_RUN = (_ASCII_ALNUM + ".-", re.compile(r"[A-Za-z0-9.-]"))
_RUN_WINDOW = 64


def _positions(text: str, anchor: str) -> list[int]:
    found, at = [], text.find(anchor)
    while at >= 0:
        found.append(at)
        at = text.find(anchor, at + 1)
    return found


def _blank(
    text: str, pattern: re.Pattern[str], anchors: list[int], run: tuple[str, re.Pattern[str]]
) -> str:
    """``pattern.sub(" ", text)``, with the search started near each anchor.

    Every match holds an anchor (``://``, ``@``, a top-level domain's dot) and
    starts at the run of ``run`` characters that ends there, so no match starts
    between the last one and that run: searching from the run's start finds
    the same next match as scanning the whole text would, at a fraction of the
    cost. A run reaching back beyond ``_RUN_WINDOW`` characters, or through a
    non-ASCII letter, is searched from the end of the last match instead.
    """
    chars, one = run
    out: list[str] = []
    done = 0  # end of the last match
    for at in anchors:
        if at < done:
            continue
        lo = max(done, at - _RUN_WINDOW)
        start = lo + len(text[lo:at].rstrip(chars))
        if start > done and one.match(text, start - 1):
            start = done
        match = pattern.search(text, start)
        if match is None:
            break
        out += (text[done : match.start()], " ")
        done = match.end()
    return "".join(out) + text[done:] if out else text


def blank_links(text: str) -> str:
    """Replace each link, e-mail address and bare domain in ``text`` by a space."""
    if "www." in text.lower():
        text = _URLS.sub(" ", text)
    elif "://" in text:
        text = _blank(text, _URLS, _positions(text, "://"), _URL_RUN)
    if "@" in text:
        text = _blank(text, _EMAILS, _positions(text, "@"), _EMAIL_RUN)
    if "." in text:
        dots = [m.start() for m in _TLD_DOT.finditer(text)]
        if dots:
            text = _blank(text, _DOMAINS, dots, _DOMAIN_RUN)
    return text
