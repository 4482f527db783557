"""Read a message body as text: what a reader sees, its links, and its words.

``visible_text`` folds look-alike characters (NFKC: full-width digits become
ASCII ones) and drops invisible formatting characters (zero-width spaces,
bidirectional marks, soft hyphens); ``html_to_text`` renders an HTML part;
``blank_links`` blanks out links, e-mail addresses and bare domains (a code
inside a link is never one a reader types); ``MessageIndex`` finds where the
words of ``extract_lexicon`` are in the text, for ``extract`` to score by.

HTML is read as the standard library's tolerant ``html.parser`` reads it.
Invisible parts (``<head>``, ``<title>``, ``<style>``, ``<script>``, comments,
including Outlook's conditional comments) are dropped; block elements and
``<br>`` become line breaks and table cells are kept apart by a tab, so that
words from neighbouring cells or paragraphs never run together. Entities are
decoded. Malformed markup never raises: whatever the parser cannot make sense
of is passed over.

Speed (every mail the SMTP listener takes is read here); each shortcut gives
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
- ``MessageIndex`` reads text with only ASCII letters by patterns made for it,
  takes most words' roles from a table, and looks for the words that are only
  ever identifiers only where they count.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from html import unescape
from html.parser import HTMLParser

from gateway.extraction import lexicon as lex

__all__ = ["MessageIndex", "beyond_ascii", "blank_links", "bodies", "html_to_text", "visible_text"]

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


def _collect_fast(html: str) -> list[str] | None:
    """What ``_TextCollector`` collects from ``html``, or None if the markup is not plain."""
    parts: list[str] = []
    hidden, in_head = 0, False
    pos = 0  # where the text after the last markup starts
    must_close = ""
    for m in _MARKUP.finditer(html):
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


def bodies(text: str, html: str, text_chars: int, html_chars: int) -> Iterator[str]:
    """The plain-text part if there is one, then the visible text of the HTML part,
    each cut to ``text_chars`` (the HTML to ``html_chars`` first); or an empty one."""
    if text.strip():
        yield visible_text(text[:text_chars])
    if html.strip():
        yield visible_text(html_to_text(html[:html_chars])[:text_chars])
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


# --- where the listed words are ------------------------------------------------------------

_ASCII_LETTERS = re.compile(r"[A-Za-z]+")
_ASCII_RUN = re.compile("[a-z]+")
_ASCII_UPPERS = re.compile(r"[A-Z]+")
_GAP_WORD = re.compile(r"[^\W\d_]+|\d+")
_OTHER_LETTER = re.compile(r"[^\W\d_\x00-\x7f]")  # a letter beyond ASCII
_SPACELESS = re.compile(r"[\u0E00-\u0E7F\u3040-\u30FF\u3400-\u9FFF\uF900-\uFAFF]")
_LETTERS_BEFORE = re.compile(r"[^\W\d_]*$")


@dataclass(slots=True)
class Hit:
    """Where a code word is in a message."""

    start: int
    end: int
    negated: bool = False  # "tracking code", "postal code": a code of another kind


#: Roles of words that are not in the lexicon's fixed list, for ASCII-only
#: (True) and other texts: bounded, as every word of every message may land here.
_ROLES_OF: dict[bool, dict[str, tuple[str, ...]]] = {True: {}, False: {}}
_ROLES_KEPT = 20_000


class MessageIndex:
    """Where the code words, qualifiers, clauses and lines of one message are.

    Built once per message and shared by all its candidates. ``words`` counts
    the words between two positions the way the scorer needs it.
    """

    def __init__(self, doc: str) -> None:
        self.doc = doc
        # "plain": every letter is ASCII ("·" or "€" may be there): the patterns for such
        # text serve, unspaced words (all have other letters) are not there.
        others = "" if doc.isascii() else beyond_ascii(doc)
        self.plain = plain = _OTHER_LETTER.search(others) is None
        if others.lower() == others:  # lower-casing the bytes is then enough
            low = doc.encode("utf-8", "surrogatepass").lower().decode("utf-8", "surrogatepass")
        else:
            low = doc.lower()
            if len(low) != len(doc):  # "İ" lower-cases to two characters: keep positions
                low = "".join(c if len(c.lower()) != 1 else c.lower() for c in doc)
        self.low = low
        found: dict[str, list[tuple[int, int]]] = {role: [] for role in lex.ROLES}
        add = {role: hits.append for role, hits in found.items()}
        # Each other word is judged once: its roles depend on the word alone (but
        # for PROMOTION_IN_CONTEXT), so the judgement is kept for later messages.
        roles_of = _ROLES_OF[plain]
        if len(roles_of) > _ROLES_KEPT:
            roles_of.clear()
        if plain:  # (the words found start after the character before them)
            role_re, shift = lex.ASCII_ROLE_RE, 1
            short = not any(e in low for e in lex.ASCII_WORD_ENDINGS)
            words = (lex.ASCII_WORDS_SHORT if short else lex.ASCII_WORDS).finditer(" " + low)
        else:
            role_re, shift, words = lex.ROLE_RE, 0, lex.WORD_RE.finditer(low)
        self._spans: list[tuple[int, int]] = []  # of every word found, in order
        for m in words:
            word = m.group(shift)
            span = start, end = m.start(), m.end() - shift
            roles = lex.FIXED_ROLES.get(word) or roles_of.get(word)
            if roles is None or word in lex.PROMOTION_IN_CONTEXT:  # judged where it stands
                spans = role_re.match(low, start).regs  # type: ignore[union-attr]
                roles = tuple(
                    r for r, s in zip(lex.ROLE_NAMES, spans[1:], strict=True) if s[1] == end
                )
                roles_of[word] = roles
            self._spans.append(span)
            for role in roles:
                add[role](span)
        compounds = []
        for m in lex.COMPOUND_CODE_RE.finditer(low):
            at = m.start()  # letters end right before it (or, as "$" reads, a line break):
            last = low[max(0, at - 2) : at].removesuffix("\n")[-1:]
            head = (last.isalpha() or not last.isascii()) and _LETTERS_BEFORE.search(
                low, max(0, at - 40), at
            )
            if head and head.group():
                compounds.append((head.start(), m.end()))
        if not plain and lex.NOT_SPACED.search(others):
            for m in lex.UNSPACED_RE.finditer(low):
                for role in lex.UNSPACED_ROLES.get(m.group(), frozenset({"code"})):  # or Persian
                    found[role].append(m.span())
        self.qualifiers = sorted(found["qualifier"])
        self.qualifier_starts = [q[0] for q in self.qualifiers]
        self.code = self._code_hits(found, compounds)
        self.code_starts = [h.start for h in self.code]
        self.code_ends = [h.end for h in self.code]
        self.any_code = any(not h.negated for h in self.code)
        # An identifier word over a code word is none. In plain text (words found do
        # not overlap) that is checked, and words only ever identifiers looked for,
        # by identifier_before.
        identifiers = sorted(found["identifier"])
        if self.code and not plain:
            identifiers = [i for i in identifiers if not self.in_keyword(*i, False)]
        self.identifiers = identifiers
        self.identifier_ends = [i[1] for i in identifiers]
        percent = [m.start() for m in lex.PERCENT_RE.finditer(low)] if "%" in low else []
        self.promotions = sorted([a for a, _ in found["promotion"]] + percent)
        self.meeting, self.booking = bool(found["meeting"]), bool(found["booking"])
        self.breaks = [m.start() for m in lex.BREAK_RE.finditer(doc)]

    @cached_property
    def shouting(self) -> bool:
        """Mostly capitals: then upper-case words are just words."""
        letters = sum(map(len, _ASCII_LETTERS.findall(self.doc)))
        return letters > 20 and sum(map(len, _ASCII_UPPERS.findall(self.doc))) > 0.6 * letters

    def _code_hits(
        self, found: dict[str, list[tuple[int, int]]], compounds: list[tuple[int, int]]
    ) -> list[Hit]:
        for start, end in compounds:
            word = self.low[start:end]
            suffix = lex.COMPOUND_CODE_RE.search(word)
            head = word[: suffix.start() if suffix else 0].rstrip("s-")
            if head in lex.NOT_CODE_PREFIX or any(
                len(p) >= 5 and head.endswith(p) for p in lex.NOT_CODE_PREFIX
            ):
                continue  # postcode, Gutscheincode, barcode, encode
            found["code"].append((start, end))
        code = found["code"] if self.plain and not compounds else sorted(set(found["code"]))
        not_code_ends = sorted(e for _, e in found["not_code"])
        hits = []
        for start, end in code:
            near = not_code_ends[bisect.bisect_left(not_code_ends, start - 20) :]
            negated = any(  # "tracking code", "gift card code", "booking confirmation code"
                self.words(e, start, raw=True) <= 1 for e in near[:3] if e <= start
            )
            hits.append(Hit(start, end, negated))
        return hits

    def identifier_before(self, pos: int) -> tuple[int, int] | None:
        """The last identifier word lying in the 30 characters before ``pos``."""
        i = bisect.bisect_right(self.identifier_ends, pos)
        found = self.identifiers[i - 1] if i and not self.plain else None
        if self.plain:  # the last found over no code word, or later one not looked for
            while i and self.identifiers[i - 1][0] >= pos - 30:
                i -= 1
                if not self.in_keyword(*self.identifiers[i], False):
                    found = self.identifiers[i]
                    break
            low, spans = self.low, self._spans
            for m in _ASCII_RUN.finditer(low, max(0, pos - 30), pos):
                a, b = m.span()
                if (found and a <= found[0]) or m.group() not in lex.ONLY_IDENTIFIERS:
                    continue
                j = bisect.bisect_right(spans, (a, a))  # a whole run, in no word found?
                if not (
                    low[a - 1 : a].isalpha()
                    or low[b : b + 1].isalpha()
                    or (j and spans[j - 1][1] > a)
                    or (j < len(spans) and spans[j][0] == a)
                    or self.in_keyword(a, b, False)
                ):
                    found = (a, b)
        return found if found is not None and found[0] >= pos - 30 else None

    def in_keyword(self, start: int, end: int, qualifiers: bool = True) -> bool:
        """Whether the span overlaps a code word (or, with ``qualifiers``, a qualifier)."""
        i = bisect.bisect_left(self.code_starts, end)  # hits starting before ``end``...
        if any(start < hit.end for hit in self.code[max(0, i - 3) : i]):  # ...end after
            return True
        j = bisect.bisect_left(self.qualifier_starts, end) if qualifiers else 0
        return any(start < b for _, b in self.qualifiers[max(0, j - 3) : j])

    def words(self, a: int, b: int, raw: bool = False) -> float:
        """Words between two positions; unless ``raw``, connectors and qualifiers count 0."""
        gap = self.doc[a:b]
        if not raw:
            lo = bisect.bisect_left(self.qualifier_starts, a)
            for qs, qe in self.qualifiers[lo : bisect.bisect_left(self.qualifier_starts, b)]:
                if qe <= b:
                    gap = gap.replace(self.doc[qs:qe], " ", 1)
            if not self.plain:  # (else it only blanks punctuation, which is no word)
                gap = lex.CONNECTOR_CJK_RE.sub(" ", gap)
        found = _GAP_WORD.findall(gap)
        if self.plain:  # (no spaceless script there)
            return float(
                len(found) if raw else sum(w.lower() not in lex.CONNECTOR_WORDS for w in found)
            )
        count = 0.0
        for w in found:
            if _SPACELESS.search(w):
                count += len(w) / 2  # Chinese, Japanese, Thai: no spaces between words
            elif raw or w.lower() not in lex.CONNECTOR_WORDS:
                count += 1
        return count

    def clause(self, start: int, end: int) -> tuple[int, int]:
        i = bisect.bisect_left(self.breaks, start)
        j = bisect.bisect_left(self.breaks, end)
        left = self.breaks[i - 1] + 1 if i else 0
        return left, self.breaks[j] if j < len(self.breaks) else len(self.doc)

    def line(self, start: int, end: int) -> tuple[int, int]:
        right = self.doc.find("\n", end)
        return self.doc.rfind("\n", 0, start) + 1, len(self.doc) if right < 0 else right

    def code_in(self, a: int, b: int) -> bool:
        """Whether a code word (not negated) lies within ``a``..``b``."""
        lo, hi = bisect.bisect_left(self.code_starts, a), bisect.bisect_left(self.code_starts, b)
        return any(h.end <= b and not h.negated for h in self.code[lo:hi])

    def qualifier_in(self, a: int, b: int) -> bool:
        i = bisect.bisect_left(self.qualifier_starts, a)
        return i < len(self.qualifiers) and self.qualifiers[i][1] <= b
