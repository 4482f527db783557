"""The candidate ranker: features of one candidate, and the learned weights that rank them.

The hand-written reading of ``extractor`` (how plainly the message names a
candidate as its code, in the languages of ``lexicon``) is one feature among
others that hold in any language: the candidate's shape, whether it is the
only number in a short text, whether a word that means "code" in some
language (a stem: ``cod``, ``kod``, ``код``, ``码``...) stands anywhere in the
message, whether it sits in the subject, how far ahead of the other
candidates the hand-written score puts it. A logistic model turns them into
the probability that the candidate is the code a person would type.

The weights are learned offline by :mod:`.training` (``python -m
gateway.extraction.training``), deterministically, from the labelled messages
the repository holds, and shipped in :mod:`.ranker_weights`. Pure: no I/O.
"""

from __future__ import annotations

import math
import re

from gateway.extraction import ranker_weights

FEATURES: tuple[str, ...] = (
    "bias",
    "rule_pass",  # the hand-written score reaches its own threshold (7)
    "rule_above",  # how far above it (scaled)
    "rule_below",  # how far below it (scaled, negative)
    "rule_gap",  # how far the hand-written score is ahead of the best other candidate
    "evidence",  # how plainly a code word names it (0..1)
    "qualified",  # a word saying what for (verification, login...) near it
    "code_word",  # a word of the lexicon naming a code in the message
    "unknown_words",  # no word of the lexicon at all: a language it does not know
    "code_stem",  # a word meaning "code" in some language, anywhere in the message
    "stem_near",  # ... on its line, within 40 characters of it
    "lone_stem",  # the only number of a short text, such a word beside it
    "digits6",
    "digits45",
    "digits78",
    "digits_other",
    "mixed",
    "alpha",
    "only_number",  # the only candidate that is not a word
    "lone_short",  # ... in a text of at most 160 characters
    "identifier",  # an identifier word right before it (order, card, phone...)
    "promotion",  # promotion words in the message
    "twice",  # the same value more than once
    "in_subject",
    "spread",  # written one digit at a time ("1 2 3 4 5 6", one per table cell)
)

# Stems of a word meaning "code", "token" or "password" in many languages and
# scripts: a signal for the model, not a rule (the lexicon's words are the rule).
CODE_STEM_RE = re.compile(
    r"c[oóòô]d|k[oóôò]d|kood|kóð|chód|cód|kodea|msimbo|nambari|token|tokenu|passwor|"
    r"senha|clave|parol|passcode|otp|pin(?![a-z])|lozink|jelsz|salasana|"
    r"код|токен|парол|пин|κωδ|συνθηματ|"
    r"码|碼|密码|密碼|口令|コード|トークン|パスワード|番号|코드|번호|비밀|"
    r"קוד|رمز|كود|کد|कोड|ओटीपी|রহস|কোড|รหัส|โค้ด|კოდ|կոդ"
)


def probability(features: tuple[float, ...], weights: tuple[float, ...] | None = None) -> float:
    """The model's probability that a candidate with these features is the code."""
    w = ranker_weights.WEIGHTS if weights is None else weights
    z = sum(a * b for a, b in zip(w, features, strict=True))
    if z < -30:
        return 0.0
    return 1.0 / (1.0 + math.exp(-z))
