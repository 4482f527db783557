"""Find the one-time code in a 2FA message (SMS or e-mail).

Pure: no I/O (except ``run_jsonl``, the ``otpgate extract`` command), no logging,
no state beyond compiled patterns and the ``RoleMemo`` an ``Extractor`` holds
(which changes no answer, only the time it takes). ``extract_code`` decides in
five steps:

1. A WebOTP origin-bound line (``@example.com #123456``) names the code.
2. Links and e-mail addresses are blanked out (a code in a link is never
   taken). Candidates: runs of 4 to 10 digits (also ``123 456``, ``123-456``,
   ``12 34 56``), mixed letter-digit tokens, Google's ``G-123456`` and, under
   strict conditions, all-letter tokens.
3. Candidates that are part of something else are dropped: dates, times,
   amounts, phone and card numbers, IP and version numbers, quantities.
4. Each is scored by context: how close a word naming a code is (``code``,
   ``OTP``, ``PIN``, ``验证码``, ``kod``...) and how they are linked (``code:
   1234``, ``1234 is your code``, alone on the line under it), qualifiers near
   it (``verification``, ``login``), against it an identifier word right before
   it (order, account, card, phone...) and, in the whole message, promotions,
   bookings and meetings.
5. The best candidate wins if its score reaches ``THRESHOLD`` and no candidate
   of another value comes within ``MARGIN`` of it; if one does, the message
   is ambiguous and gives nothing. A wrong code is worse than none, so the
   threshold is cautious.

Speed: reading the text (``htmltext``) and finding the words of the lexicon
(``index``) take shortcuts that find the same, an ``Extractor`` remembers the
roles of the words it has read, and ``_best`` scores the likeliest candidate
first, skipping any that cannot beat the best so far.
"""

from __future__ import annotations

import bisect
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, replace
from itertools import islice, pairwise
from re import _parser as sre_parse  # type: ignore[attr-defined]  # typeshed stubs only sre_parse
from string import ascii_letters as _LETTERS
from typing import Any, NamedTuple, TextIO

from gateway.errors import Invalid
from gateway.extraction import htmltext, ranker
from gateway.extraction import lexicon as lex
from gateway.extraction.htmltext import beyond_ascii, blank_links, bodies, visible_text
from gateway.extraction.index import MessageIndex, RoleMemo
from gateway.extraction.links import Link, extract_link

__all__ = [
    "CustomPattern",
    "Decision",
    "Extractor",
    "Link",
    "compile_custom_pattern",
    "decide",
    "extract_code",
    "extract_link",
    "extract_with_pattern",
    "run_jsonl",
]

# Inputs are cut to these sizes before anything runs: codes sit near the top.
MAX_SUBJECT_CHARS = 1_000
MAX_TEXT_CHARS = 20_000
MAX_HTML_CHARS = 300_000
MAX_HTML_TAGS = 5_000  # the HTML part is read up to its 5,000th tag
MAX_CANDIDATES = 200  # a message with more number-like tokens is read up to there
MAX_TOKENS = 1_000  # and with more tokens that could be one (single digits, capitals...)
LONG_CODE_CHARS = (11, 32)  # up to 16 random bytes in hexadecimal, given as a code to type
LONG_PRIOR = -2.0  # a long token's, which needs a code word naming it plainly
SHORT_PRIOR = -2.0  # a three-digit code's, which needs a code word right before it
READ_BEYOND = 400  # characters read after the last candidate of a message cut short
EXPLAINED_CANDIDATES = 10  # candidates ``--explain`` lists per message
# A code is handed out when its candidate scores THRESHOLD and no candidate of
# another value comes within MARGIN of it (the message is then "ambiguous").
THRESHOLD = 7.0
MARGIN = 1.5  # how far the best must be ahead of any other value

# "@example.com #123456" on a line of its own or after white space.
_WEBOTP = re.compile(r"(?<!\S)@[A-Za-z0-9][A-Za-z0-9.-]*[A-Za-z0-9] #([A-Za-z0-9]{4,10})(?!\S)")
# Tokens that may become candidates: with a digit, upper case, or lower case after a colon.
_TOKEN = re.compile(
    r"(?<![A-Za-z0-9])(?:[A-Za-z]*+\d[A-Za-z0-9]*|[A-Z]{3,}"
    r"|(?:(?<=[:：])|(?<=[:：] )|(?<=[:：]  ))[a-z]+)"
    r"(?![A-Za-z0-9])"
)
# The same in text with no digit beyond ASCII nor full-width colon (most), faster:
# patterns that start with a class, which the engine skips to (letters before a
# digit join its run).
_OTHER_DIGIT = re.compile(r"[^\D0-9]|：")
_DIGITS_OR_CAPITALS = re.compile(
    r"[0-9A-Z](?:(?<=[0-9])[A-Za-z0-9]*|(?<![A-Za-z0-9][A-Z])[A-Z]{2,}(?![A-Za-z0-9]))"
)
_AFTER_COLON = re.compile(r":(?: {0,2})([a-z]+)(?![A-Za-z0-9])")
# "code is wkfjdh.": a lower-case word after a copula that ends its sentence or line
_AFTER_COPULA = re.compile(
    r"(?<![^\W\d_])(?:is|ist|est|es|är|er|je|lautet) ([a-z]{5,10})(?=[ \t]*(?:[.,;!?)\]\n]|$))"
)
_DIGIT_GROUP_BEFORE = re.compile(r"(?<![A-Za-z0-9])\d{1,5}$")
_DIGIT_GROUP_AFTER = re.compile(r"\d{1,5}(?![A-Za-z0-9])")
_RUNS = re.compile(r"\d+|[A-Za-z]+")


# --- candidates ----------------------------------------------------------------------


@dataclass(slots=True)
class _Candidate:
    value: str
    start: int
    end: int
    kind: str  # "digits", "mixed", "alpha" or "long" (11 to 32 letters and digits)
    prior: float


def _glued(doc: str, start: int, end: int, digits: bool) -> bool:
    """True when the token is a piece of a larger number, identifier or word."""
    p, pp = (doc[start - 1] if start else " "), (doc[start - 2] if start > 1 else " ")
    n, nn = doc[end : end + 1] or " ", doc[end + 1 : end + 2] or " "
    if p == "=" and lex.KEYWORD_EQUALS_RE.search(doc, max(0, start - 10), start):
        pass  # OTP=482913: a code word's value, not a piece of a longer identifier
    elif p in "+*@_•=&" or n in "@_*":
        return True  # phone, masked card, e-mail, identifier
    if (p in ".,:" and pp.isdigit()) or (n in ".,:" and nn.isdigit()):
        return True  # 12.03.2024, 1.240,00, 12:30, 192.0.2.1
    if (p == "/" and pp.isalnum()) or (n == "/" and nn.isalnum()):
        return True  # 12/9, A/c, Gecko/20100101
    if p == "-" and pp.isascii() and pp.isalnum():  # INV-2026, 4497120c-f674, not OTP-890227
        return lex.KEYWORD_DASH_RE.search(doc, max(0, start - 8), start) is None
    if (
        (n == "-" and nn.isascii() and nn.isalnum())
        or (p.isalpha() and ord(p) < 0x2E80)
        or (n.isalpha() and ord(n) < 0x2E80)
    ):
        return True  # part of a dashed compound, or of a word with accents
    before = digits and p == " " and (pp.isdigit() or pp == "\n")  # ("$" passes a final "\n")
    if before and _DIGIT_GROUP_BEFORE.search(doc, max(0, start - 6), start - 1):
        return True  # grouped digits of a phone or account number
    if digits and n == " " and nn.isdigit() and _DIGIT_GROUP_AFTER.match(doc, end + 1):
        return True
    return lex.is_amount(doc[max(0, start - 6) : start], doc[end : end + 6])


def _digit_prior(value: str) -> float:
    size = len(value)
    prior = {4: 1.0, 5: 1.0, 6: 2.0, 7: 1.0, 8: 1.0, 9: 0.0, 10: -1.0}[size]
    if size == 4 and value[:2] in ("19", "20"):
        prior -= 3  # a year
    if size == 8 and value[:2] in ("19", "20") and "01" <= value[4:6] <= "12":
        prior -= 2 if "01" <= value[6:] <= "31" else 0  # a date written YYYYMMDD
    if size == 10 and (value[0] == "0" or (value[0] in "23456789" and value[3] in "23456789")):
        prior -= 8  # a phone number
    return prior


def _mixed_prior(value: str) -> float | None:
    runs = _RUNS.findall(value)
    letters = "".join(r for r in runs if r.isalpha())
    prior = -1.0 if len(value) == 4 else 0.0
    if len(runs) == 2:
        first, second = runs
        # 30GB, 500TL, 99Freelas: a quantity or a word; not 7MQLRQ, a digit and
        # upper-case letters as code alphabets of letters and digits give them
        code_like = len(first) <= 2 and len(second) >= 4 and second.isupper()
        if first.isdigit() and (len(second) <= 3 or len(first) <= 2) and not code_like:
            return None
        prior -= 1.0
        year = len(second) == 4 and second[:2] in ("19", "20")
        if first.isalpha() and len(first) >= 3 and (len(second) <= 3 or year):
            prior -= 3.0  # SAVE20, Win64, SUMMER2024: a word with a number, not a random code
    if not (letters.isupper() or letters.islower()):
        prior -= 6.0  # mixed case: a hash or token, not something typed
    return prior


def _tokens(doc: str) -> list[tuple[int, int, str]]:
    """What ``_TOKEN`` finds, in order: (start, end, text), the first MAX_TOKENS of them."""
    if not doc.isascii() and _OTHER_DIGIT.search(beyond_ascii(doc)):
        found = islice(_TOKEN.finditer(doc), MAX_TOKENS)
        tokens = [(m.start(), m.end(), m.group()) for m in found]
        limit = tokens[-1][1] if len(tokens) == MAX_TOKENS else len(doc)
        copula = list(islice(_AFTER_COPULA.finditer(doc, 0, limit), MAX_TOKENS))
        if copula:
            tokens = sorted({*tokens, *((m.start(1), m.end(1), m.group(1)) for m in copula)})
            del tokens[MAX_TOKENS:]
        return tokens
    tokens = []
    for m in islice(_DIGITS_OR_CAPITALS.finditer(doc), MAX_TOKENS):
        start, end = m.span()
        while start and doc[start - 1] in _LETTERS:  # "abc123": the letters are part of it
            start -= 1
        tokens.append((start, end, doc[start:end]))
    limit = tokens[-1][1] if len(tokens) == MAX_TOKENS else len(doc)
    added = False
    for pattern in (_AFTER_COLON,) * (":" in doc) + (_AFTER_COPULA,):
        found = islice(pattern.finditer(doc, 0, limit), MAX_TOKENS)
        before = len(tokens)
        tokens += ((m.start(1), m.end(1), m.group(1)) for m in found)
        added = added or len(tokens) > before
    if added:
        tokens.sort()
        del tokens[MAX_TOKENS:]
    return tokens


def _read(doc: str) -> tuple[list[_Candidate], str]:
    """The candidates of ``doc``, and the part of it they are judged in.

    When a long message has more than MAX_TOKENS tokens or MAX_CANDIDATES
    candidates, it is read up to there, with READ_BEYOND characters after
    the last: what follows weighs neither for nor against them.
    """
    tokens = _tokens(doc)
    cands = _candidates(doc, tokens)
    if len(tokens) < MAX_TOKENS and len(cands) < MAX_CANDIDATES:
        return cands, doc
    ends = [tokens[-1][1]] + ([cands[-1].end] if len(cands) >= MAX_CANDIDATES else [])
    return cands, doc[: min(ends) + READ_BEYOND]


def _candidates(doc: str, tokens: list[tuple[int, int, str]]) -> list[_Candidate]:
    found: list[_Candidate] = []
    i, count = 0, len(tokens)
    while i < count and len(found) < MAX_CANDIDATES:
        start, end, tok = tokens[i]
        if len(tok) == 1 and tok.isdigit():
            spread, taken = _spread(doc, tokens, i)
            if spread is not None:
                found.append(spread)
            if spread is not None or taken > 1:
                i += taken
                continue
        groupable = tok.isdigit() or (tok.isupper() and doc[end : end + 1] == "-")
        joined = _join(doc, tokens, i) if groupable and len(tok) in (2, 3, 4) else None
        if joined is not None:
            found.append(joined[0])
            i += joined[1]
            continue
        i += 1
        if len(tok) == 3 and tok.isdigit():
            # "enter code 548": three digits are a code only right after a code word
            if (
                _right_after_code_word(doc, start) or _entered_for_a_purpose(doc, start, end)
            ) and not _glued(doc, start, end, True):
                found.append(_Candidate(tok, start, end, "digits", SHORT_PRIOR))
            continue
        if LONG_CODE_CHARS[0] <= len(tok) <= LONG_CODE_CHARS[1] and _long_code_shape(tok):
            # A long token given as a code ("verification code: 7fK2pQ9xLm3Rt8Vb"):
            # taken only where a code word names it plainly (see _score).
            if not _glued(doc, start, end, False):
                found.append(_Candidate(tok, start, end, "long", LONG_PRIOR))
            continue
        if not 4 <= len(tok) <= 10:
            continue
        if tok.isdigit():
            letter = doc[start - 2] if start >= 2 and doc[start - 1] == "-" else ""
            if "A" <= letter <= "Z" and (start < 3 or not doc[start - 3].isalnum()):
                # G-123456 (Google), W-641452: a one-letter prefix the user does not type
                if not _glued(doc, start - 2, end, True):
                    bonus = 12.0 if letter == "G" else 2.0
                    found.append(_Candidate(tok, start, end, "digits", _digit_prior(tok) + bonus))
            elif not _glued(doc, start, end, True):
                found.append(_Candidate(tok, start, end, "digits", _digit_prior(tok)))
        elif tok.isalpha():
            # A word-like code is upper case, or lower case right after a colon or
            # a copula ("code: mifsuc", "code is qkzmbf"; _score wants a code word there).
            after_label = _after_colon(doc, start) or (
                lex.COPULA_END_RE.search(doc, max(0, start - 8), start) is not None
            )
            if (
                (len(tok) >= 5 or (len(tok) == 4 and tok.isupper()))
                and (tok.isupper() or (tok.islower() and after_label))
                and tok.lower() not in lex.NOT_A_CODE_WORD
                and not _glued(doc, start, end, False)
            ):
                found.append(_Candidate(tok, start, end, "alpha", -3.0))
        elif not _glued(doc, start, end, False):
            prior = _mixed_prior(tok)
            if prior is not None:
                found.append(_Candidate(tok, start, end, "mixed", prior))
    return found


_SPREAD_GAPS = frozenset({" ", "  ", "   ", "\t", " \t", "\t ", " \t "})


def _spread(doc: str, tokens: list[tuple[int, int, str]], i: int) -> tuple[_Candidate | None, int]:
    """A code written one digit at a time (``1 2 3 4 5 6``, one digit per table cell).

    4 to 8 single digits, all apart by the same spaces or tab; no digit may
    follow or precede the run the same way (a longer run is no code). Returns
    the candidate, if any, and how many tokens the run takes.
    """
    nxt = tokens[i + 1] if i + 1 < len(tokens) else None
    if nxt is None or len(nxt[2]) != 1 or not nxt[2].isdigit():
        return None, 1  # (most single digits stand alone: a quick look first)
    gap = doc[tokens[i][1] : nxt[0]]
    if gap not in _SPREAD_GAPS:
        return None, 1
    j = i + 1
    while j + 1 < len(tokens):
        a, b = tokens[j], tokens[j + 1]
        if len(b[2]) != 1 or not b[2].isdigit() or doc[a[1] : b[0]] != gap:
            break
        j += 1
    count = j - i + 1
    start, end = tokens[i][0], tokens[j][1]
    before = tokens[i - 1] if i else None
    after = tokens[j + 1] if j + 1 < len(tokens) else None
    if (before and before[2].isdigit() and doc[before[1] : start] == gap) or (
        after and after[2].isdigit() and doc[end : after[0]] == gap
    ):
        return None, count  # part of a longer run of digits
    if not 4 <= count <= 8 or _glued(doc, start, end, True):
        return None, count
    value = "".join(t for _, _, t in tokens[i : j + 1])
    return _Candidate(value, start, end, "digits", _digit_prior(value) - 1.0), count


def _long_code_shape(tok: str) -> bool:
    """Letters and digits, both, not a run of digits with a word (``20241231report``)."""
    runs = _RUNS.findall(tok)
    return len(runs) >= 4 and any(r.isdigit() for r in runs) and any(r.isalpha() for r in runs)


_CODE_WORD_BEFORE = re.compile(r"(?:code|kod|código|codice|pin|otp)\s*(?:is\s*)?[:：]?\s*$", re.I)


def _right_after_code_word(doc: str, start: int) -> bool:
    return _CODE_WORD_BEFORE.search(doc, max(0, start - 16), start) is not None


def _entered_for_a_purpose(doc: str, start: int, end: int) -> bool:
    """ "Use 739 to log in", "Enter 482 to verify": an entry verb, the number, a purpose."""
    low = doc[max(0, start - 12) : start].lower()
    return (
        lex.ENTRY_VERB_RE.search(low) is not None
        and lex.PURPOSE_AFTER_RE.match(doc, end) is not None
        and lex.QUALIFIER_IN_WORD_RE.search(doc[end : end + 40].lower()) is not None
    )


def _after_colon(doc: str, start: int) -> bool:
    return doc[max(0, start - 4) : start].rstrip().endswith((":", "："))


def _wordlike(tok: str) -> bool:
    """Whether an all-letter token reads as a word: a third or more of it vowels.

    Codes drawn from the alphabet have few (a sixth to a quarter on average;
    some alphabets none); words in the languages that use these letters have
    about two in five.
    """
    low = tok.lower()
    return low in lex.NOT_A_CODE_WORD or 3 * sum(c in "aeiouy" for c in low) >= len(low)


def _join(doc: str, tokens: list[tuple[int, int, str]], i: int) -> tuple[_Candidate, int] | None:
    """A code in equal groups (``12 34 56``, ``123-456``, ``XPGS-STSW``) and its token count.

    No further group may follow or precede: that is a phone number, a date, a UUID.
    """
    size = len(tokens[i][2])
    end, after = tokens[i][1], tokens[i + 1] if i + 1 < len(tokens) else (-1, -1, "")
    if after[0] != end + 1 or len(after[2]) != size or doc[end] not in " -":
        return None  # (a quick look at the next token, as all groups need, first)
    count = 3 if size == 2 else 2
    if size == 4 and doc[end] == "-" and not tokens[i][2].isdigit():
        # up to four groups of four: 8FK2-LQ9X-PZ7M-W3RT, a long code read in groups
        while (
            i + count < len(tokens)
            and count < 4
            and tokens[i + count][0] == tokens[i + count - 1][1] + 1
            and doc[tokens[i + count - 1][1]] == "-"
            and len(tokens[i + count][2]) == 4
        ):
            count += 1
    group = tokens[i : i + count]
    seps = {doc[a[1] : b[0]] for a, b in pairwise(group)}
    if len(group) < count or any(len(t) != size for _, _, t in group) or len(seps) != 1:
        return None
    sep = seps.pop()
    start, end = group[0][0], group[-1][1]
    value = "".join(t for _, _, t in group)
    for a, b, t in tokens[max(0, i - 1) : i] + tokens[i + count : i + count + 1]:
        gap = doc[b:start] if b <= start else doc[end:a]
        if (gap == "-" or (gap == " " and value.isdigit())) and t.isdigit() == value.isdigit():
            return None
    if value.isdigit():
        if (size == 2 and sep != " ") or sep not in (" ", "-") or _glued(doc, start, end, True):
            return None  # 12-03-25 is a date
        return _Candidate(value, start, end, "digits", _digit_prior(value)), count
    if sep != "-" or size == 2 or not (value.isupper() and value.isalnum()):
        return None
    if (size == 3 and value.isalpha()) or _glued(doc, start, end, False):
        return None  # OPT-OUT is no code; ZRK-7QP is
    if count > 2:  # a long code: only with letters and digits, and named plainly (see _score)
        if value.isalpha():
            return None
        return _Candidate(value, start, end, "long", LONG_PRIOR), count
    return _Candidate(value, start, end, "alpha" if value.isalpha() else "mixed", 0.0), count


# --- context -------------------------------------------------------------------------

Span = tuple[int, int]


@dataclass(slots=True)
class _Evidence:
    value: float = 0.0
    link: str = "none"  # direct, label, near, purpose, line, nearby, secrecy, alone
    strict: bool = False  # the link leaves no doubt, even for an all-letter code

    def offer(self, value: float, link: str, strict: bool = False) -> None:
        if value > self.value:
            self.value, self.link, self.strict = value, link, strict


@dataclass(slots=True)
class _Numbers:
    """The candidates that are not plain words, in document order."""

    items: list[_Candidate]
    starts: list[int]

    def between(self, a: int, b: int, cand: _Candidate, ctx: MessageIndex | None = None) -> int:
        """How many of them, other than ``cand``, lie within ``a``..``b`` (with ``ctx``:
        not counting those an identifier names, "card XX1234", which are not codes)."""
        lo, hi = bisect.bisect_left(self.starts, a), bisect.bisect_left(self.starts, b)
        return sum(
            o.end <= b and o is not cand and (ctx is None or ctx.identifier_before(o.start) is None)
            for o in self.items[lo:hi]
        )


def _evidence(ctx: MessageIndex, cand: _Candidate, numbers: _Numbers, clause: Span) -> _Evidence:
    """How plainly the message says this candidate is its code (in its ``clause``)."""
    (doc, s, e), (left, right) = (ctx.doc, cand.start, cand.end), clause
    ev = _Evidence()

    def between(a: int, b: int) -> int:
        return numbers.between(a, b, cand, ctx)

    # A code word before it, in the same clause: "code: 1234", "Ihr Code lautet 1234".
    i = bisect.bisect_right(ctx.code_ends, s)
    if i and ctx.code[i - 1].end >= max(left, s - 200) and not ctx.code[i - 1].negated:
        hit = ctx.code[i - 1]
        in_between = between(hit.end, s)
        words = ctx.words(hit.end, s) + 2 * in_between
        gap = doc[hit.end : s]
        strict = bool(lex.LETTER_CODE_LEFT_RE.fullmatch(gap) and lex.COPULA_RE.search(gap))
        if words == 0 and len(gap) <= 80:
            ev.offer(10.0, "direct", strict)
        elif lex.COPULA_END_RE.search(gap) and (words <= 8 or not in_between):
            ev.offer(max(9.0 - 0.5 * words, 5.0), "label", words <= 3)
        elif len(gap) <= 80:
            ev.offer(max(9.0 - 1.5 * words, 3.0), "near")

    # A code word after it ("123456 is your code"), before the clause or a label ends.
    j = bisect.bisect_left(ctx.code_starts, e)
    if j < len(ctx.code):
        hit = ctx.code[j]
        if (
            hit.start <= min(right, e + 60)
            and not hit.negated
            and lex.RIGHT_LABEL.search(doc, e, hit.start) is None
        ):
            words = ctx.words(e, hit.start) + 2 * between(e, hit.start)
            strict = lex.LETTER_CODE_RIGHT_RE.fullmatch(doc[e : hit.start]) is not None
            ev.offer(9.0 if words == 0 else max(8.0 - 1.5 * words, 3.0), "near", strict)

    # A purpose: "Use 482913 to sign in", "Enter 678901 to proceed".
    k = bisect.bisect_left(ctx.qualifier_starts, e)
    if (
        k < len(ctx.qualifiers)
        and ctx.qualifiers[k][0] - e <= 12
        and lex.PURPOSE_RE.fullmatch(doc[e : ctx.qualifiers[k][0]])
    ) or (
        ctx.low[max(0, s - 12) : s].rstrip()[-1:].isalpha()  # (where an entry verb ends)
        and lex.ENTRY_VERB_RE.search(ctx.low, max(0, s - 12), s)
        and lex.PURPOSE_AFTER_RE.match(doc, e)
    ):
        ev.offer(7.0, "purpose")

    # Alone on its line (or in its sentence) under, or above, one naming a code.
    lstart, lend = ctx.line(s, e)
    if not (doc[lstart:s] + doc[e:lend]).strip(lex.LINE_TRIM):
        above = doc[max(0, lstart - 250) : lstart].rstrip()
        cut = above.rfind("\n", 0, max(0, len(above) - 1)) + 1
        if not above[cut:].strip(lex.RULE_CHARS):  # a rule ("-----") under the line naming it
            above = above[:cut].rstrip()
            cut = above.rfind("\n", 0, max(0, len(above) - 1)) + 1
        prev = max(0, lstart - 250) + cut
        below = doc.find("\n", lend + 1, lend + 250)
        below = doc.find("\n", below + 1) if below >= 0 and not doc[lend:below].strip() else below
        if ctx.code_in(prev, lstart):
            ev.offer(9.0 if above.endswith((":", "：")) else 8.0, "line", True)
        elif ctx.code_in(lend, below if below >= 0 else len(doc)):
            ev.offer(7.0, "line")
    elif (
        not doc[left:s].strip(lex.LINE_TRIM)
        and not doc[e:right].strip(lex.LINE_TRIM)
        and ctx.code_in(ctx.clause(max(0, left - 2), max(0, left - 2))[0], left)
    ):
        ev.offer(8.0, "line")

    # At the head of the sentence after one naming a code, across a Chinese or Japanese
    # full stop: "以下は確認コードです。482913を入力してください。"
    if ev.value < 8.0 and cand.kind in ("digits", "mixed"):
        stop = s
        while stop and s - stop < 3 and doc[stop - 1] in " \t":
            stop -= 1
        if stop and doc[stop - 1] == "。":
            begin = max(doc.rfind(c, max(0, stop - 201), stop - 1) for c in "。！？\n") + 1
            if ctx.code_in(max(begin, stop - 200), stop) and not between(begin, s):
                ev.offer(8.0, "line")

    # A warning to keep it secret right before it, in the same sentence: "Do not share
    # it with anyone: 24808", "NEVER share this code, not even with our staff 699486".
    if ev.value < 8.0 and cand.kind in ("digits", "mixed"):
        window = ctx.low[max(0, s - 80) : s]
        if any(key in window for key in lex.SECRECY_KEYS):  # (most text has none: a quick look)
            warned = [m.end() for m in lex.SECRECY_RE.finditer(ctx.low, max(0, s - 80), s)]
            if (
                warned
                and not lex.BREAK_RE.search(doc, warned[-1], s)
                and not between(warned[-1], s)
            ):
                ev.offer(8.0, "secrecy")

    # Nothing else in the message: a text that is only its code (four to eight digits,
    # not a year).
    if (
        cand.kind == "digits"
        and len(doc) <= e - s + 8
        and 4 <= len(cand.value) <= 8
        and not (len(cand.value) == 4 and cand.value[:2] in ("19", "20"))
        and not (doc[:s] + doc[e:]).strip(lex.LINE_TRIM)
    ):
        ev.offer(8.0, "alone", True)

    # A code word in the sentence before or after, and a qualifier in its own.
    if ev.value < 4.0 and cand.kind != "alpha" and ctx.qualifier_in(left, right):
        before = ctx.clause(max(0, left - 2), max(0, left - 2))[0]
        after = ctx.clause(min(len(doc), right + 2), min(len(doc), right + 2))[1]
        if ctx.code_in(before, left) or ctx.code_in(right, after):
            ev.offer(4.0, "nearby")
    return ev


@dataclass(frozen=True, slots=True)
class _Judged:
    score: float  # -inf: ruled out
    evidence: float = 0.0
    link: str = "none"
    qualified: bool = False
    identifier: bool = False


_OUT = _Judged(float("-inf"))


def _score(ctx: MessageIndex, cand: _Candidate, numbers: _Numbers) -> _Judged:
    doc, s, e = ctx.doc, cand.start, cand.end
    if cand.kind != "digits" and ctx.in_keyword(s, e):
        return _OUT  # "verifikasi", "connexion": the keyword itself
    left, right = ctx.clause(s, e)
    ev = _evidence(ctx, cand, numbers, (left, right))
    qualified = ctx.qualifier_in(max(left, s - 80), min(right, e + 80)) or (
        ev.link == "line" and ctx.qualifier_in(max(0, s - 250), e + 250)
    )
    # A word is a code only where the message says so plainly, and what for.
    # (What it is for may go unsaid, and a lower-case one need not follow a label,
    # where the word does not read as a word: "Your code is QKZMBF".)
    if cand.kind == "alpha" and (
        not ev.strict
        or ctx.shouting
        or (
            (not qualified or (cand.value.islower() and not _after_colon(doc, s)))
            and _wordlike(cand.value)
        )
    ):
        return _OUT
    if cand.kind == "long" and (not ev.strict or not qualified):
        return _OUT  # a long token is a code only where a code word plainly names it

    score = cand.prior + ev.value + (1.5 if qualified else 0.0)
    if ctx.any_code:
        score += 1.0
    elif ev.link not in ("purpose", "alone"):
        score -= 6.0
    if cand.kind != "alpha" and len(numbers.items) == 1:
        score += 1.0  # the only number in a message about a code

    # An identifier word right before it: "order 1234", "card ending 5678", "call 0800".
    ident = ctx.identifier_before(s)
    identified = False
    if ident is not None:
        gap = doc[ident[1] : s]
        i = bisect.bisect_right(ctx.code_ends, s)
        after_code = ident[1] > (ctx.code_ends[i - 1] if i else -1)
        # "OTP for your mobile number is 1234": the code word is what the number is.
        copula = ev.link == "label" and lex.COPULA_END_RE.search(gap) is not None
        if (
            after_code
            and not copula
            and "\n" not in gap
            and len(gap) <= 20
            and ctx.words(ident[1], s, raw=True) <= 2
            and not lex.CLAUSE_PUNCT.search(gap)
        ):
            identified = True
            word = doc[ident[0] : ident[1]].lower()
            if word not in lex.WEAK_IDENTIFIERS or (
                word == "to" and lex.SEND_TO_RE.search(doc, max(0, ident[0] - 48), ident[0])
            ):
                score -= 12.0  # (an SMS short code to text, however a code word leads to it)
            elif ev.value < 7.0:
                score -= 4.0  # "text STOP to 89203", unless a code word leads to it
    if ctx.promotions:
        score -= min(2.0 * len(ctx.promotions), 6.0)
        if any(max(s - 40, left) <= p <= min(e + 30, right) for p in ctx.promotions):
            score -= 6.0  # "use code SAVE20 for 20% off", "20% off with code SUMMER24"
    if ctx.meeting:
        score -= 8.0  # a meeting's passcode
    elif ctx.booking:
        score -= 2.0 if qualified else 8.0  # a booking's PIN; "verification code" still counts
    is_year = cand.kind == "digits" and len(cand.value) == 4 and cand.value[:2] in ("19", "20")
    if is_year and lex.YEAR_CONTEXT_RE.search(doc, max(0, s - 30), e + 30):
        score -= 6.0
    return _Judged(score, ev.value, ev.link, qualified, identified)


@dataclass(frozen=True, slots=True)
class Scored:
    """One candidate as the extractor weighed it (see ``otpgate extract --explain``)."""

    value: str
    kind: str  # "digits", "mixed", "alpha" or "long"
    score: float  # -inf: ruled out
    link: str  # how a code word leads to it (see ``_Evidence.link``)
    features: tuple[float, ...] = ()  # the ranker's (see ``ranker``), when asked for


@dataclass(frozen=True, slots=True)
class Decision:
    """What ``decide`` made of one message: the code, or why there is none."""

    code: str | None
    outcome: str  # "code", "none" or "ambiguous" (a likely code not clearly ahead of another)
    reason: str
    candidates: tuple[Scored, ...] = ()  # with ``explain``: every candidate, best first


def _ceiling(ctx: MessageIndex) -> float:
    """The most a candidate's score may exceed its prior (besides ``_best``'s own bonuses)."""
    # Evidence 10, qualified 1.5, a code word in the message 1.
    ceiling = 12.5 - (min(2.0 * len(ctx.promotions), 6.0) if ctx.promotions else 0.0)
    return ceiling - (8.0 if ctx.meeting else 2.0 if ctx.booking else 0.0)


class _Best(NamedTuple):
    value: str
    score: float
    runner: float  # the best score of any other value (-inf: none)
    link: str  # how a code word leads to the best


# How a code word leads to a candidate (``_Evidence.link``), in ``--explain``'s words.
LINKS = {
    "direct": "a word naming a code right before it",
    "label": "named by a code word before it",
    "near": "a code word near it",
    "purpose": "asked to be entered for a purpose",
    "line": "alone on its line, by a line naming a code",
    "nearby": "a code word in the next sentence",
    "secrecy": "a warning to keep it secret right before it",
    "alone": "the whole message",
    "none": "no code word leads to it",
}


def _best(doc: str, memo: RoleMemo | None = None) -> _Best | None:
    """The best candidate's value and score, and the best score of any other value.

    The most promising (by prior) are scored first, and one that cannot come
    within MARGIN of the best so far is skipped: a score is at most its prior,
    every bonus and the penalties all candidates share. Of equal scores the
    first in the text wins. A value written twice gets a point.
    """
    cands, doc = _read(doc)
    if not cands:
        return None
    ctx = MessageIndex(doc, memo)
    items = [c for c in cands if c.kind != "alpha"]
    numbers = _Numbers(items, [c.start for c in items])
    values = [c.value for c in cands]
    seen = Counter(values) if len(set(values)) < len(values) else None
    ceiling = _ceiling(ctx)
    best, best_at, link = float("-inf"), -1, "none"
    scored: list[tuple[float, int]] = []
    for at in sorted(range(len(cands)), key=lambda i: -cands[i].prior):
        cand = cands[at]
        twice = seen is not None and seen[cand.value] > 1
        bound = cand.prior + ceiling + (cand.kind != "alpha" and len(items) == 1) + twice
        if best_at >= 0 and bound < best - MARGIN:
            continue  # can neither win nor come close
        judged = _score(ctx, cand, numbers)
        score = judged.score + twice
        scored.append((score, at))
        if best_at < 0 or score > best or (score == best and at < best_at):
            best, best_at, link = score, at, judged.link
    value = values[best_at]
    runner = max((sc for sc, at in scored if values[at] != value), default=float("-inf"))
    return _Best(value, best, runner, link)


def _features(
    ctx: MessageIndex,
    cand: _Candidate,
    judged: _Judged,
    others_best: float,
    numbers: _Numbers,
    twice: bool,
    subject_end: int,
    stem: bool,
    spread: bool,
) -> tuple[float, ...]:
    """The ranker's features of one candidate, in the order of ``ranker.FEATURES``."""
    rule = max(-20.0, min(15.0, judged.score))
    other = max(others_best, 0.0)  # (a lone candidate is measured against 0)
    size, digits = len(cand.value), cand.kind == "digits"
    only = cand.kind != "alpha" and len(numbers.items) == 1
    lone = only and digits and 4 <= size <= 8 and len(ctx.doc) <= 160
    near = stem and _stem_near(ctx, cand.start, cand.end)
    return (
        1.0,
        float(rule >= THRESHOLD),
        max(0.0, rule - THRESHOLD) / 10.0,
        min(0.0, rule - THRESHOLD) / 10.0,
        max(-2.0, min(2.0, (rule - other) / 10.0)),
        judged.evidence / 10.0,
        float(judged.qualified),
        float(bool(ctx.any_code)),
        float(not (ctx.code or ctx.qualifiers or ctx.identifiers or ctx.promotions)),
        float(stem),
        float(near),
        float(near and lone),
        float(digits and size == 6),
        float(digits and size in (4, 5)),
        float(digits and size in (7, 8)),
        float(digits and size not in (4, 5, 6, 7, 8)),
        float(cand.kind == "mixed"),
        float(cand.kind == "alpha"),
        float(only),
        float(lone),
        float(judged.identifier),
        float(bool(ctx.promotions)),
        float(twice),
        float(cand.start < subject_end),
        float(spread),
    )


def _stem_near(ctx: MessageIndex, start: int, end: int) -> bool:
    lstart, lend = ctx.line(start, end)
    a, b = max(lstart, start - 40), min(lend, end + 40)
    return ranker.CODE_STEM_RE.search(ctx.low, a, b) is not None


def _rank(
    doc: str, memo: RoleMemo | None = None, subject_end: int = 0, features: bool = False
) -> list[Scored]:
    """Every candidate of ``doc`` scored (as ``_best`` would), best first (first of equals).

    With ``features``, each also carries the ranker's features (see :mod:`.training`).
    """
    cands, doc = _read(doc)
    if not cands:
        return []
    ctx = MessageIndex(doc, memo)
    items = [c for c in cands if c.kind != "alpha"]
    numbers = _Numbers(items, [c.start for c in items])
    values = [c.value for c in cands]
    seen = Counter(values)
    judged = [_score(ctx, c, numbers) for c in cands]
    scores = [j.score + (seen[c.value] > 1) for c, j in zip(cands, judged, strict=True)]
    feats: list[tuple[float, ...]] = [()] * len(cands)
    if features:
        by_value: dict[str, float] = {}
        for c, j in zip(cands, judged, strict=True):
            by_value[c.value] = max(by_value.get(c.value, float("-inf")), j.score)
        ordered = sorted(by_value.values(), reverse=True)
        top, second = ordered[0], ordered[1] if len(ordered) > 1 else float("-inf")
        stem = ranker.CODE_STEM_RE.search(ctx.low) is not None
        for i, (c, j) in enumerate(zip(cands, judged, strict=True)):
            others = second if by_value[c.value] == top else top
            spread = c.value.isdigit() and c.end - c.start >= 2 * len(c.value) - 1
            twice = seen[c.value] > 1
            feats[i] = _features(ctx, c, j, others, numbers, twice, subject_end, stem, spread)
    order = sorted(range(len(cands)), key=lambda i: (-scores[i], i))
    return [
        Scored(cands[i].value, cands[i].kind, scores[i], judged[i].link, feats[i]) for i in order
    ]


def _verdict(best: _Best | None) -> Decision:
    """The decision on one reading of a message, from ``_best``'s answer."""
    if best is None:
        return Decision(None, "none", "no candidate")
    value, score, runner, link = best
    if score < THRESHOLD:
        return Decision(None, "none", f"best candidate scores {score:.1f}, below {THRESHOLD:.1f}")
    if runner > score - MARGIN:
        return Decision(
            None,
            "ambiguous",
            f"best candidate scores {score:.1f} and another value {runner:.1f}: "
            f"not {MARGIN:.1f} ahead",
        )
    ahead = "no other value" if runner == float("-inf") else f"next value {runner:.1f}"
    return Decision(value, "code", f"scores {score:.1f} ({LINKS.get(link, link)}), {ahead}")


def decide(
    *,
    channel: str,
    subject: str = "",
    text: str = "",
    html: str = "",
    memo: RoleMemo | None = None,
    explain: bool = False,
) -> Decision:
    """The code of this message, or why it gives none.

    ``channel`` is ``"sms"`` or ``"email"``; an SMS has only ``text``. For an
    e-mail the plain-text part is preferred, the HTML part is read when the
    text part is empty or yields nothing, and the subject is read with either.
    A code is handed out only when its candidate scores ``THRESHOLD`` and is
    ``MARGIN`` ahead of any other value; a candidate that scores enough but
    is not clearly ahead makes the message ``"ambiguous"``: a wrong code costs
    more than none. With ``explain``, the decision lists every candidate of
    the reading it comes from, best first (slower: none is skipped).
    """
    del channel  # the same reading serves both channels
    subject = visible_text(subject[:MAX_SUBJECT_CHARS]).replace("\n", " ").strip()
    found = Decision(None, "none", "no text")
    for body in bodies(text, html, MAX_TEXT_CHARS, MAX_HTML_CHARS, MAX_HTML_TAGS):
        doc = f"{subject}\n\n{body}" if subject else body
        web = _WEBOTP.search(doc) if "@" in doc else None
        if web:
            return Decision(web.group(1), "code", "origin-bound WebOTP line")
        doc = blank_links(doc)
        decision = _verdict(_best(doc, memo))
        if explain:
            decision = replace(decision, candidates=tuple(_rank(doc, memo)))
        if decision.code is not None:
            return decision
        if found.outcome != "ambiguous":
            found = decision
    return found


def extract_code(
    *,
    channel: str,
    subject: str = "",
    text: str = "",
    html: str = "",
    memo: RoleMemo | None = None,
) -> str | None:
    """Return the code a user would type from this message, or None (see :func:`decide`).

    Word roles are remembered in ``memo`` (see :class:`Extractor`); without
    one, every word is judged afresh: the same answer, more slowly.
    """
    return decide(channel=channel, subject=subject, text=text, html=html, memo=memo).code


class Extractor:
    """``extract_code`` with a memory of the word roles it has judged, for one process.

    The composition root makes one for the gateway (and one in the ingest
    worker); ``otpgate extract`` makes its own. The memory makes reading
    faster and changes no answer.
    """

    __slots__ = ("memo",)

    def __init__(self, memo: RoleMemo | None = None) -> None:
        self.memo = RoleMemo() if memo is None else memo

    def decide(
        self, *, channel: str, subject: str = "", text: str = "", html: str = ""
    ) -> Decision:
        """:func:`decide` for this message, with this extractor's memory."""
        return decide(channel=channel, subject=subject, text=text, html=html, memo=self.memo)

    def code(
        self, *, channel: str, subject: str = "", text: str = "", html: str = ""
    ) -> str | None:
        """:func:`extract_code` of this message, with this extractor's memory."""
        return self.decide(channel=channel, subject=subject, text=text, html=html).code

    def link(
        self, *, channel: str, subject: str = "", text: str = "", html: str = ""
    ) -> Link | None:
        """:func:`~gateway.extraction.links.extract_link` of this message: its action link."""
        return extract_link(channel=channel, subject=subject, text=text, html=html)


# --- a credential's own pattern ------------------------------------------------------

# A pattern is checked for the number of backtracking paths it may try from one
# position (an open-ended repeat counts as PATTERN_CHUNK_CHARS); it then reads
# the first PATTERN_INPUT_CHARS characters, one line or 256-character piece at a
# time, and fewer when it has many paths: paths x characters stays under
# MAX_PATTERN_WORK. Measured: the worst accepted pattern then takes about 70 ms,
# where r"\d+\d+\d+x" over 1,000 digits would take minutes.
MAX_PATTERN_CHARS = 200
MAX_PATTERN_PATHS = 1_024
MAX_PATTERN_WORK = 2_000_000
PATTERN_INPUT_CHARS = 20_000
PATTERN_CHUNK_CHARS = 256
_MARKUP = re.compile(r"<(?:html|head|body|div|p|br|table|td|span|a|h[1-6])\b", re.I)


@dataclass(frozen=True, slots=True)
class CustomPattern:
    """A credential's own code pattern, checked to run in bounded time."""

    source: str
    regex: re.Pattern[str]
    paths: int = 1  # backtracking paths from one position, as counted by the check


def _paths(items: Any, in_repeat: bool = False) -> int:
    """An upper bound on the ways a parsed pattern can match from one position."""
    total = 1
    for op, arg in items:
        name = str(op)
        if name.endswith("REPEAT"):  # MAX_, MIN_ and POSSESSIVE_REPEAT: (min, max, body)
            low, high, body = arg
            if in_repeat and high > low:
                raise Invalid("pattern nests a repeat inside a repeat, like (a+)+")
            inner = _paths(body, in_repeat or high > low)
            low, high = min(low, PATTERN_CHUNK_CHARS), min(high, PATTERN_CHUNK_CHARS)
            if inner == 1:
                total *= high - low + 1
            else:  # (a|b){0,3}: a choice at every turn; past 2**13 the cap is reached anyway
                total *= sum(inner**k for k in range(low, min(high, low + 13) + 1))
        elif name == "BRANCH":
            total *= sum(_paths(alt, in_repeat) for alt in arg[1])
        elif name in ("SUBPATTERN", "ASSERT", "ASSERT_NOT", "ATOMIC_GROUP"):
            total *= _paths(arg if name == "ATOMIC_GROUP" else arg[-1], in_repeat)
        elif name in ("GROUPREF", "GROUPREF_EXISTS"):
            raise Invalid("pattern uses a backreference or a conditional group")
        total = min(total, MAX_PATTERN_PATHS + 1)
    return total


def compile_custom_pattern(pattern: str) -> CustomPattern:
    """Check a credential's code pattern and compile it; raise ``Invalid`` if unsafe.

    Accepted: ``re`` syntax up to 200 characters, at most one capture group (the
    code; else the whole match), no backreference, conditional or repeat inside a
    repeat, few enough ways to match (``\\d{4,8}`` rather than ``\\d+\\d+``).
    """
    if not isinstance(pattern, str) or not pattern.strip():
        raise Invalid("pattern must be a non-empty string")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise Invalid(f"pattern must be at most {MAX_PATTERN_CHARS} characters long")
    try:
        regex = re.compile(pattern)
        parsed = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        reason = exc.msg if isinstance(exc, re.error) else "too deeply nested"
        raise Invalid(f"pattern is not a valid regular expression: {reason}") from None
    if regex.groups > 1:
        raise Invalid("pattern must have at most one capture group, around the code")
    paths = _paths(parsed)
    if paths > MAX_PATTERN_PATHS:
        raise Invalid(
            "pattern can match in too many ways to run safely: bound its repeats, "
            "e.g. \\d{4,8} or \\s{0,3} rather than \\d+ or \\s*"
        )
    if regex.search("") is not None:
        raise Invalid("pattern matches an empty string; it must match the code itself")
    return CustomPattern(pattern, regex, paths)


def extract_with_pattern(p: CustomPattern, subject: str, text: str) -> str | None:
    """Return the first code ``p`` finds in the subject, then the text, or None.

    The capture group (or the whole match) is returned as it stands, outer white
    space trimmed: the pattern's author decides what the code is. ``text`` may be
    an HTML body; the pattern then reads its visible text. Only the start of a
    long message is read (see MAX_PATTERN_WORK).
    """
    if _MARKUP.search(text[:MAX_HTML_CHARS]):
        text = htmltext.html_to_text(text[:MAX_HTML_CHARS])
    budget = min(PATTERN_INPUT_CHARS, MAX_PATTERN_WORK // max(p.paths, 1))
    step = PATTERN_CHUNK_CHARS - 32  # pieces overlap, so a code on a seam is still whole
    for part in (subject, text):
        part = visible_text(part[:budget])
        budget -= len(part)
        for line in part.split("\n"):
            for at in range(0, max(len(line) - 32, 1), step):
                m = p.regex.search(line[at : at + PATTERN_CHUNK_CHARS])
                code = (m.group(1 if p.regex.groups else 0) or "").strip() if m else ""
                if code:
                    return code
    return None


# --- command line: ``otpgate extract`` -------------------------------------------------


def _explained(decision: Decision) -> dict[str, Any]:
    """The decision's outcome, reason and candidates, as ``--explain`` prints them."""
    return {
        "outcome": decision.outcome,
        "reason": decision.reason,
        "candidates": [
            {
                "value": c.value,
                "score": round(c.score, 2) if c.score != float("-inf") else None,
                "link": c.link if c.score != float("-inf") else "ruled out",
            }
            for c in decision.candidates[:EXPLAINED_CANDIDATES]
        ],
    }


def _extract_line(extractor: Extractor, line: str, explain: bool = False) -> dict[str, Any]:
    try:
        item = json.loads(line)
    except (ValueError, RecursionError):
        return _refused(None, "not valid JSON")
    if not isinstance(item, dict):
        return _refused(None, "not a JSON object")
    ident = item.get("id")
    if (
        isinstance(ident, bool)
        or not isinstance(ident, str | int | float)
        or (isinstance(ident, float) and not math.isfinite(ident))  # NaN would not be JSON
    ):
        return _refused(None, "id must be a string or a number")
    channel = item.get("channel")
    if channel not in ("sms", "email"):
        return _refused(ident, "channel must be sms or email")
    parts = {f: item.get(f) for f in ("subject", "text", "html")}
    for field, value in parts.items():
        if value is not None and not isinstance(value, str):
            return _refused(ident, f"{field} must be a string")
    message = {f: v or "" for f, v in parts.items()}
    try:
        if explain:
            decision = decide(channel=channel, memo=extractor.memo, explain=True, **message)
        else:
            decision = extractor.decide(channel=channel, **message)
        link = extractor.link(channel=channel, **message)
    except Exception:  # a bug must not stop the stream; the reason names no content
        return _refused(ident, "extraction failed")
    out = {"id": ident, "code": decision.code, "link": link.url if link else None}
    return out | _explained(decision) if explain else out


def _refused(ident: str | float | None, reason: str) -> dict[str, Any]:
    """The line for an input that gave no answer: its id when it had a usable one, and why."""
    return {"id": ident, "code": None, "link": None, "error": reason}


def run_jsonl(stdin: TextIO, stdout: TextIO, explain: bool = False) -> int:
    """``otpgate extract``: one JSON object per input line, one result line each, in order.

    Each result is ``{"id", "code", "link"}``: the code a person would type and
    the action link a person would click (sign in, confirm, approve, reset),
    each null when the message has none. With ``explain`` (``--explain``) it
    also has ``"outcome"`` (code, none or ambiguous), ``"reason"`` and
    ``"candidates"``: the first EXPLAINED_CANDIDATES candidates, best first,
    each ``{"value", "score", "link"}`` (score null: ruled out). A line that
    cannot be read gives ``{"id", "code": null, "link": null, "error": ...}`` (a
    reason, never the content; ``id`` is the input's when it had a usable one,
    else null) and reading goes on; blank lines are
    skipped. Returns the exit status, 0.
    """
    extractor = Extractor()
    for line in stdin:
        if line.strip():
            stdout.write(json.dumps(_extract_line(extractor, line, explain)) + "\n")
            stdout.flush()
    return 0
