"""Read a message body as text: what a reader sees, with its links blanked out.

``visible_text`` folds look-alike characters (NFKC: full-width digits become
ASCII ones) and drops invisible formatting characters (zero-width spaces,
bidirectional marks, soft hyphens); ``html_to_text`` renders an HTML part;
``blank_links`` blanks out links, e-mail addresses and bare domains (a code
inside a link is never one a reader types); ``bodies`` gives the parts of a
message the extractor reads. Where the lexicon's words stand in the text is
``index``'s work.

HTML is read as the standard library's tolerant ``html.parser`` reads it.
Invisible parts (``<head>``, ``<title>``, ``<style>``, ``<script>``, comments,
including Outlook's conditional comments) are dropped; block elements and
``<br>`` become line breaks and table cells are kept apart by a tab, so that
words from neighbouring cells or paragraphs never run together. Entities are
decoded. Malformed markup never raises: whatever the parser cannot make sense
of is passed over.

Speed (every mail and text is read here); each shortcut gives
exactly what the plain way gives (``tests/test_extract.py`` compares them):

- ``html.parser`` costs some 5 us a tag: markup in the common, unambiguous subset
  (well-formed tags with quoted or plain attribute values, plain comments, closed
  ``<style>`` and ``<script>``) is read by one pattern, with the same events in
  the same order; anything else (CDATA, stray ``<``, odd attributes, raw-text
  elements parser versions differ on) goes to ``html.parser``.
- ASCII text (most mail) skips NFKC and the invisible characters, idle there;
  white space is collapsed by ``str.replace``; ``beyond_ascii`` picks out the
  other characters in one C pass to see which checks are needed at all.
- Links are found from their ``://``, ``@`` and dot anchors, not by running each
  pattern over all the text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from html import unescape
from html.parser import HTMLParser
from itertools import islice

__all__ = ["beyond_ascii", "blank_links", "bodies", "html_to_text", "visible_text"]

# Soft hyphen, zero-width characters, bidirectional marks and isolates, BOM.
_INVISIBLE_CHARS = re.compile("[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
# White space other than line breaks (and, in HTML, tabs): a run becomes one
# space. Where all white space is ASCII (_OTHER_SPACE finds none), the odd ones
# become spaces and runs of spaces are halved until single: cheaper than a pattern.
_LINE_SPACE = re.compile(r"[^\S\n](?:[^\S\n]+|(?<! ))")  # a lone space stays as it is
_ODD_ASCII_SPACES = "\t\x0b\x0c\x1c\x1d\x1e\x1f"
_TO_SPACE = str.maketrans(dict.fromkeys(_ODD_ASCII_SPACES, " "))
_OTHER_SPACE = re.compile(f"[{''.join(c for c in map(chr, range(128, 0x10000)) if c.isspace())}]")
_ASCII_BYTES = bytes(range(128))


def beyond_ascii(text: str) -> str:
    """The characters of ``text`` beyond ASCII, in order (fast: mail is mostly ASCII)."""
    raw = text.encode("utf-8", "surrogatepass").translate(None, _ASCII_BYTES)
    return raw.decode("utf-8", "surrogatepass")


def _one_space(text: str, pattern: re.Pattern[str], odd: str, table: dict[int, str]) -> str:
    """Each run of ``pattern``'s white space in ``text`` as one space (``odd``: in ASCII)."""
    if not text.isascii() and _OTHER_SPACE.search(beyond_ascii(text)):
        return pattern.sub(" ", text)
    if any(c in text for c in odd):  # only ASCII white space: plain replacements do
        text = text.translate(table)
    while "  " in text:
        text = text.replace("  ", " ")
    return text


def visible_text(text: str) -> str:
    """NFKC-fold ``text``, drop invisible characters, use one space and one line break."""
    if not text.isascii():
        # The full-width comma becomes the ideographic one, not ",": "199035\uff0c10分钟"
        # must not read as the decimal number 199035,10.
        if _INVISIBLE_CHARS.search(beyond_ascii(text)):
            text = _INVISIBLE_CHARS.sub("", text)
        text = unicodedata.normalize("NFKC", text.replace("\uff0c", "、"))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _one_space(text, _LINE_SPACE, _ODD_ASCII_SPACES, _TO_SPACE)


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
_START_BREAK = dict.fromkeys(_BLOCK | {"br"}, "\n") | dict.fromkeys(_CELL, "\t")
_END_BREAK = dict.fromkeys(_BLOCK, "\n") | dict.fromkeys(_CELL, "\t")

_HSPACE = re.compile(r"[^\S\n\t](?:[^\S\n\t]+|(?<! ))")  # and tabs stay too
_HSPACE_TO_SPACE = str.maketrans(dict.fromkeys(_ODD_ASCII_SPACES[1:], " "))
_BLANKS = re.compile(r"\n\n\n+")


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
    one space, and a tab swallows the spaces around it and the tabs after it.
    Once runs of spaces are single, plain replacements do the rest.
    """
    text = _one_space(raw.replace("\r", "\n"), _HSPACE, _ODD_ASCII_SPACES[1:], _HSPACE_TO_SPACE)
    text = text.replace(" \t", "\t").replace("\t ", "\t")
    while "\t\t" in text:
        text = text.replace("\t\t", "\t")
    for edge in (" \n", "\t\n", "\n ", "\n\t"):
        text = text.replace(edge, "\n")
    return _BLANKS.sub("\n\n", text.strip(" \t")).strip()


_INVISIBLE_MARKUP = re.compile(
    r"<!--.*?(?:-->|$)|<(style|script|head|title)\b.*?(?:</\1\s*>|$)", re.I | re.S
)
_TAG = re.compile(r"<[^>]*>?")

# Markup the fast reader understands as ``html.parser`` does (3.11 to 3.13 were
# compared; a test does on the Python in use): each ``<`` starts one of these, or
# "bad" sends the whole document to the parser.
_SPACE = r"[\t\n\r\f ]"
_MARKUP = re.compile(
    rf"""<(?:
      (?P<tag>[a-zA-Z][a-zA-Z0-9:-]*)  # a start tag
        (?:{_SPACE}+[a-zA-Z_:][-a-zA-Z0-9_:.]*
          (?:{_SPACE}*={_SPACE}*(?:"[^"]*"|'[^']*'|[^\s"'=<>`/]+(?={_SPACE}|>)))?
        )*{_SPACE}*(?P<slash>/?)>
    | /(?P<closing>[a-zA-Z][a-zA-Z0-9:-]*){_SPACE}*>  # an end tag
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


def _start_effects() -> dict[str, tuple[int, bool | None, str, str]]:
    """What a start tag that does something does, by name in lower and upper case.

    (hidden depth added, in ``<head>`` afterwards or None, break, kind) where
    kind is "raw" (``<style>``), "close" (must be closed next) or "unsafe".
    """
    effects = {}
    for tag in _HIDDEN | _UNSAFE | _START_BREAK.keys() | {"head", "body"}:
        kind = "raw" if tag in _RAW_END else "close" if tag in _MUST_CLOSE else ""
        head = True if tag == "head" else False if tag == "body" else None
        effect = (int(tag in _HIDDEN), head, _START_BREAK.get(tag, ""), kind)
        effects[tag] = effects[tag.upper()] = (
            effect if tag not in _UNSAFE else (0, None, "", "unsafe")
        )
    return effects


_STARTS = _start_effects()


def _collect_fast(html: str, max_tags: int | None = None) -> list[str] | None:
    """What ``_TextCollector`` collects from ``html``, or None if the markup is not plain.

    With ``max_tags``, reading stops at that many pieces of markup (what follows is left out).
    """
    parts: list[str] = []
    hidden, in_head = 0, False
    pos = 0  # where the text after the last markup starts
    must_close = ""
    markup = _MARKUP.finditer(html)
    if max_tags is not None:
        markup = islice(markup, max_tags)
    for m in markup:
        start, end = m.span()
        if start != pos:
            if start < pos:  # inside a <style> or <script> block already read
                if end > pos:
                    return None
                continue
            if not hidden and not in_head:
                text = html[pos:start]
                parts.append(unescape(text) if "&" in text else text)
        pos = end
        tag, slash, closing, lt, bad = m.groups()
        if must_close:
            if closing is None or closing.lower() != must_close:
                return None
            must_close = ""
        if tag is not None:
            action = _STARTS.get(tag) or _STARTS.get(tag.lower())
            if action is None:
                continue  # <span>, <a>, <img>...: no effect
            depth, head, piece, kind = action
            if slash:  # <br/>: a break, and nothing to close
                if depth or kind:
                    return None
            else:
                if kind == "unsafe":
                    return None
                hidden += depth
                if head is not None:
                    in_head = head
            if piece:
                parts.append(piece)
            if kind == "raw":  # skip to the end tag, and close
                tag = tag.lower()
                old, new = (closer.search(html, pos) for closer in _RAW_END[tag])
                if old is None or new is None or old.start() != new.start():
                    return None
                if old.end() - old.start() != len(tag) + 3:  # not "</style>"
                    return None
                pos = old.end()
                hidden -= 1
            elif kind == "close" and not slash:
                must_close = tag.lower()
        elif closing is not None:
            closing = closing.lower()
            if closing in _HIDDEN:
                hidden = max(hidden - 1, 0)
            elif closing == "head":
                in_head = False
            if closing in _END_BREAK:
                parts.append(_END_BREAK[closing])
        elif lt is not None:
            if not hidden and not in_head:
                parts.append("<")
        elif bad is not None:
            return None
    if must_close:
        return None
    if max_tags is not None and pos < len(html) and _MARKUP.search(html, pos):
        return parts  # stopped at max_tags: the rest is not read
    if pos < len(html) and not hidden and not in_head:
        text = html[pos:]
        parts.append(unescape(text) if "&" in text else text)
    return parts


# With ``max_tags``, markup that is not plain is read up to max_tags times this many
# characters, by html.parser if they are at most PARSER_MAX_CHARS, else crudely.
_PARSER_CHARS_PER_TAG = 12
PARSER_MAX_CHARS = 3_000


def html_to_text(html: str, max_tags: int | None = None) -> str:
    """Return the visible text of ``html`` with lines and cells kept apart.

    With ``max_tags``, only about the first that many tags are read: what a
    reader sees first, in a time bounded whatever the markup.
    """
    parts = _collect_fast(html, max_tags)
    if parts is None:
        if max_tags is not None:
            # html.parser takes time growing with the square of some markup left
            # open ("<x y='" repeated: 20 KB of it, a second): bounded, it reads
            # only short documents; longer ones are read the crude way.
            html = html[: max_tags * _PARSER_CHARS_PER_TAG]
        collector = _TextCollector()
        try:
            if max_tags is not None and len(html) > PARSER_MAX_CHARS:
                raise ValueError("too long for the HTML parser in bounded time")
            collector.feed(html)
            collector.close()
        except Exception:
            crude = _TAG.sub("\n", _INVISIBLE_MARKUP.sub(" ", html))
            return _tidy(unescape(crude))
        parts = collector.parts
    return _tidy("".join(parts))


def bodies(
    text: str, html: str, text_chars: int, html_chars: int, html_tags: int | None = None
) -> Iterator[str]:
    """The plain-text part if there is one, then the visible text of the HTML part,
    each cut to ``text_chars`` (the HTML to ``html_chars`` and ``html_tags`` first);
    or an empty one."""
    if text.strip():
        yield visible_text(text[:text_chars])
    if html.strip():
        yield visible_text(html_to_text(html[:html_chars], html_tags)[:text_chars])
    elif not text.strip():
        yield ""  # a subject alone


# --- links -------------------------------------------------------------------------------

_URL_TAIL = r"(?:[^\s<>\"']*[^\s<>\"'.,:;!?)\]}])?"  # a link does not end in punctuation
# Links are blanked out before reading: scheme://..., www...., e-mail addresses,
# and bare domains (a label with a letter before a lower-case top-level domain).
_URLS = re.compile(rf"\b\w[\w*+.-]*://{_URL_TAIL}|\bwww\.{_URL_TAIL}", re.I)
_EMAILS = re.compile(r"(?<![\w.+*%-])[\w.+*%-]+@[\w-]+(?:\.[\w-]+)+")
# At most 8 labels before the last two: unbounded, "a.a.a.a..." made the
# search quadratic (50 KB of it took 22 s); real host names are far shorter.
_DOMAINS = re.compile(
    rf"\b(?:[A-Za-z0-9-]{{1,63}}\.){{0,8}}[0-9-]*[A-Za-z][A-Za-z0-9-]*\.[a-z]{{2,12}}\b"
    rf"(?:/{_URL_TAIL})?"
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
    if ("w." in text or "W." in text) and "www." in text.lower():
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
