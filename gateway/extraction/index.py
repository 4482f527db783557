"""Where the words of the lexicon stand in one message: ``MessageIndex``.

``MessageIndex`` finds the code words, qualifiers, identifiers, promotions and
clause breaks of a message once, for ``extractor`` to score each candidate by
with a few binary searches. ``RoleMemo`` keeps the roles of the words it has
judged from one message to the next; its owner (an ``Extractor``) is made once
per process and handed in, so no table lives at module level.

Speed (every message is read here): text with only ASCII letters is read by
patterns made for it, most words take their roles from the lexicon's fixed
table and the rest from the memo, and the words that are only ever
identifiers are looked for only where they count (``identifier_before``).
``tests/test_extract.py`` checks that these shortcuts find what the plain
patterns find.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from functools import cached_property

from gateway.extraction import lexicon as lex
from gateway.extraction.htmltext import beyond_ascii

__all__ = ["ROLES_KEPT", "Hit", "MessageIndex", "RoleMemo"]

_ASCII_LETTERS = re.compile(r"[A-Za-z]+")
_ASCII_RUN = re.compile("[a-z]+")
_ASCII_UPPERS = re.compile(r"[A-Z]+")
_GAP_WORD = re.compile(r"[^\W\d_]+|\d+")
_OTHER_LETTER = re.compile(r"[^\W\d_\x00-\x7f]")  # a letter beyond ASCII
_HIRAGANA = re.compile("[\u3041-\u309f]")
# Scripts written without spaces between words: Thai, Lao, Burmese, Khmer, Chinese, Japanese
_SPACELESS = re.compile(
    r"[\u0E00-\u0EFF\u1000-\u109F\u1780-\u17FF\u3040-\u30FF\u3400-\u9FFF\uF900-\uFAFF]"
)
_LETTERS_BEFORE = re.compile(r"[^\W\d_]*$")
_LONG_WORD = re.compile(r"[^\W\d_]{9,}")  # long enough to be a compound
_COMPOUNDS_LOOKED_AT = 20  # code words whose next words are looked into
# What may stand between a code word and a word after it saying what kind it is: an
# ending ("کۆدی") and a linking particle ("código de descuento", "kodi ya posta")
_WORD_AFTER = re.compile(
    r"[^\W\d_]*\s*(?:(?:de|di|da|do|del|della|du|des|ya|wa|za|la|na|ng|of|für)\s+)?", re.I
)


@dataclass(slots=True)
class Hit:
    """Where a code word is in a message."""

    start: int
    end: int
    negated: bool = False  # "tracking code", "postal code": a code of another kind


#: Words a :class:`RoleMemo` keeps for each kind of text before it starts afresh.
ROLES_KEPT = 20_000


class RoleMemo:
    """The roles of words outside the lexicon's fixed table, as judged in earlier messages.

    A word's roles depend on the word alone (but for ``PROMOTION_IN_CONTEXT``,
    judged where it stands each time), so remembering them changes no answer
    and spares the role pattern for most words of later messages. There is one
    table for texts whose letters are all ASCII and one for other texts; every
    word of every message may land in them, so each is emptied once it holds
    more than ``kept`` words. One memo serves one process: the composition root
    makes it for the gateway, ``otpgate extract`` its own.
    """

    __slots__ = ("_other", "_plain", "kept")

    def __init__(self, kept: int = ROLES_KEPT) -> None:
        self.kept = kept
        self._plain: dict[str, tuple[str, ...]] = {}
        self._other: dict[str, tuple[str, ...]] = {}

    def table(self, plain: bool) -> dict[str, tuple[str, ...]]:
        """The roles kept for ASCII-letter (``plain``) or other texts, emptied first if full."""
        roles_of = self._plain if plain else self._other
        if len(roles_of) > self.kept:
            roles_of.clear()
        return roles_of

    def clear(self) -> None:
        """Forget every word: the next messages are judged afresh."""
        self._plain.clear()
        self._other.clear()


class MessageIndex:
    """Where the code words, qualifiers, clauses and lines of one message are.

    Built once per message and shared by all its candidates. ``words`` counts
    the words between two positions the way the scorer needs it. Word roles
    are taken from and added to ``memo``; without one, each word is judged here.
    """

    def __init__(self, doc: str, memo: RoleMemo | None = None) -> None:
        self.doc = doc
        # "plain": every letter is ASCII ("·" or "€" may be there): the patterns for such
        # text serve, unspaced words (all have other letters) are not there.
        others = "" if doc.isascii() else beyond_ascii(doc)
        if others.lower() == others:  # lower-casing the bytes is then enough
            low = doc.encode("utf-8", "surrogatepass").lower().decode("utf-8", "surrogatepass")
        else:
            low = doc.lower()
            if len(low) != len(doc):  # "İ" lower-cases to two characters: keep positions
                low = "".join(
                    c.lower() if len(c.lower()) == 1 else "i" if c == "İ" else c for c in doc
                )
        if others:  # accents dropped: words are found whichever way they are written
            low = lex.fold(low)
            others = beyond_ascii(low)
        self.low = low
        self.plain = plain = _OTHER_LETTER.search(others) is None
        found: dict[str, list[tuple[int, int]]] = {role: [] for role in lex.ROLES}
        add = {role: hits.append for role, hits in found.items()}
        # Each other word is judged once: its roles depend on the word alone (but
        # for PROMOTION_IN_CONTEXT), so the judgement is kept for later messages.
        roles_of = memo.table(plain) if memo is not None else {}
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
                # "Bestätigungscode", "bekræftelseskode": the head says what the code is for
                q = lex.QUALIFIER_IN_WORD_RE.search(low, head.start(), at)
                if q:
                    found["qualifier"].append((q.start(), min(q.end(), at)))
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
        self._qualifiers_in_compounds_after_code()
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

    def _qualifiers_in_compounds_after_code(self) -> None:
        """ "Kod för lösenordsåterställning", "Code zur Passwortzurücksetzung": a compound
        right after a code word that ends in a qualifier says what the code is for."""
        added = []
        for hit in self.code[:_COMPOUNDS_LOOKED_AT]:
            if hit.negated:
                continue
            for m in _LONG_WORD.finditer(self.low, hit.end, hit.end + 40):
                q = lex.QUALIFIER_IN_WORD_RE.search(self.low, m.start() + 3, m.end())
                if q:  # (after a head of three letters or more)
                    added.append(q.span())
        if added:
            self.qualifiers = sorted(set(self.qualifiers + added))
            self.qualifier_starts = [q[0] for q in self.qualifiers]

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
            whole = word[: suffix.start() if suffix else 0]
            head = whole.rstrip("s-")  # (a linking -s: "Anmeldungscode")
            if (
                head in lex.NOT_CODE_PREFIX
                or whole in lex.NOT_CODE_PREFIX
                or any(len(p) >= 5 and head.endswith(p) for p in lex.NOT_CODE_PREFIX)
            ):
                continue  # postcode, Gutscheincode, barcode, encode
            found["code"].append((start, end))
        code = found["code"] if self.plain and not compounds else sorted(set(found["code"]))
        not_code_ends = sorted(e for _, e in found["not_code"])
        not_code_spans = sorted(found["not_code"])
        not_code_starts = [s for s, _ in not_code_spans]
        hits = []
        for start, end in code:
            near = not_code_ends[bisect.bisect_left(not_code_ends, start - 20) :]
            negated = any(  # "tracking code", "gift card code", "booking confirmation code"
                self.words(e, start, raw=True) <= 1 for e in near[:3] if e <= start
            )
            if not negated and not_code_starts:  # "código postal", "kode pos", "کد پستی"
                after = not_code_starts[bisect.bisect_left(not_code_starts, end) :]
                negated = any(
                    _WORD_AFTER.fullmatch(self.doc, end, s) is not None
                    for s in after[:2]
                    if s <= end + 20
                )
                i = bisect.bisect_right(not_code_starts, start)
                negated = (
                    negated
                    or any(  # a word holding the code word: "מיקוד"
                        end <= b for _, b in not_code_spans[max(0, i - 2) : i]
                    )
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
                # Chinese, Japanese, Thai, Lao, Burmese, Khmer: no spaces between words; hiragana
                # mostly particles and endings ("を使用してください"), a quarter as much
                kana = len(_HIRAGANA.findall(w))
                count += (len(w) - kana) / 2 + kana / 8
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
