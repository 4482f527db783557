"""How the code extractor does on messages it was not tuned on, and how long any message takes.

Three figures, each exact (the code a person would type, or none where there
is none), wrong (another code, or one where there is none) and abstained:

- the shared corpus (``../shared/corpus``), which the rules were tuned on;
- leave one source out over every labelled message the repository knows of
  (the shared corpus, ``tests/data/codes/tune.jsonl`` to ``tune5.jsonl``,
  and the link sets of ``tests/data/links`` as mails with no code): each source (a repository or
  a project's family) in turn is read with what was learned from the others.
  The shipped extractor learns nothing from data (its rules are written; the
  learned ranker of ``gateway.extraction.ranker`` is measured against it by
  ``python -m gateway.extraction.training --cv`` and not used while it does
  not do better), so for it each source is read as it is;
- ``tests/data/codes/heldout.jsonl`` to ``heldout5.jsonl``, each set apart before any tuning
  on its set (see their README) and never tuned on; and all of them taken together (the
  kept-apart third of every message gathered).
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.extraction import extractor as ex
from gateway.extraction import ranker, ranker_weights, training

from .helpers import ROOT, SHARED, need_shared

CORPUS = SHARED / "corpus"
CODES = ROOT / "tests" / "data" / "codes"
MIN_EXACT = 0.97
MAX_WRONG = 0.01
# The kept-apart sets are not yet at the goal (MIN_EXACT); these pin where they stand.
# heldout.jsonl: its misses are words for "code" in languages the lexicon does not know
# (82.9% when first measured; 85.4% since words were added for the second set, whose
# tune part they came from: this set's misses were not looked at again); 87.8% since words
# for passwords and tokens in more languages (from other projects' glossaries); 90.2% since
# the words for an authentication code of another Nextcloud app's translations
# (nextcloud/twofactor_totp: Greek with its accent, Croatian "šifra").
KEPT_APART_MIN_EXACT = 0.90
# heldout2.jsonl, gathered in three batches, each batch's third set apart before tuning on
# it: first measured at 70.1% exact, 0% wrong (first batch, 67 messages), then 91.0% exact,
# 0% wrong (two batches, 89), then 89.0% exact, 3.0% wrong (three batches, 100); 92.0%
# exact, 0% wrong after tuning on it; 93.0% since. Below the goal (MIN_EXACT): only its
# totals are read. 99.0% since codes of letters only are read where a code word names them
# plainly and they do not read as a word.
KEPT_APART_2_MIN_EXACT = 0.99
# heldout3.jsonl: 94.2% exact, 0% wrong when first measured (before any change); 96.2%,
# 0% wrong since. Below the goal (MIN_EXACT): only its totals are read.
KEPT_APART_3_MIN_EXACT = 0.96
# heldout4.jsonl, gathered in three batches, each batch's third set apart before tuning on
# it: 98.0% exact, 0% wrong, 2.0% abstained (first batch, 98 messages, before any change);
# the second batch's 12 at 83.3%, 0% wrong before tuning on it (the whole set 96.4%); 98.2%,
# 0% wrong since a rule drawn under the line naming a code is read past; the third batch's
# 7 at 100% before tuning on it (the whole set 98.3%). Only its totals are read.
KEPT_APART_4_MIN_EXACT = 0.982  # (115 of 117)
# heldout5.jsonl, gathered in six batches, each batch's third set apart before tuning on
# it: the first batch's 12 at 100%, 0% wrong before any change; the second batch's 11 at
# 90.9%, 0% wrong before tuning on it (the set's 23 at 95.7%); 100% since Vietnamese words
# for the code to enter and the one that follows (its tune part's miss: the same Keycloak
# template in another part of the mail); the third batch's 3 at 66.7%, 0% wrong before
# tuning on it (the set's 26 at 96.2%); 100% since long codes of up to 32 characters (16
# random bytes in hexadecimal) are read where a code word plainly names them; the fourth
# batch's 10, the fifth's 6 and the sixth's 5 at 100% before tuning on them. Only its totals
# are read.
KEPT_APART_5_MIN_EXACT = 1.0  # (47 of 47)
# Every kept-apart set taken together: the third of every message gathered that was never
# tuned on. 97.3% exact, 0% wrong (324 of 333) when first measured; 327 of 336 with the
# fifth set's third batch, 337 of 346 with its fourth, 343 of 352 (97.4%) with its fifth,
# 348 of 357 (97.5%) with its sixth.
ALL_KEPT_APART_MIN_EXACT = 0.974
KEPT_APART = {
    "heldout.jsonl": KEPT_APART_MIN_EXACT,
    "heldout2.jsonl": KEPT_APART_2_MIN_EXACT,
    "heldout3.jsonl": KEPT_APART_3_MIN_EXACT,
    "heldout4.jsonl": KEPT_APART_4_MIN_EXACT,
    "heldout5.jsonl": KEPT_APART_5_MIN_EXACT,
}


def _figures(rows: list[dict[str, Any]]) -> training.Figures:
    figures = training.Figures()
    extractor = ex.Extractor()
    for row in rows:
        decision = extractor.decide(
            channel=row["channel"],
            subject=row.get("subject") or "",
            text=row.get("text") or "",
            html=row.get("html") or "",
        )
        figures.add(row["expected"], decision)
    return figures


def _check(name: str, figures: training.Figures, min_exact: float = MIN_EXACT) -> None:
    print(f"{name}: {figures}")
    assert figures.exact / figures.n >= min_exact, f"{name}: {figures}"
    assert figures.wrong / figures.n <= MAX_WRONG, f"{name}: {figures}"


def test_shared_corpus() -> None:
    """The corpus the rules were tuned on: >= 97% exact, <= 1% wrong."""
    need_shared(CORPUS / "otp_dev.jsonl", CORPUS / "email_dev.jsonl")
    rows = training.load(CORPUS / "otp_dev.jsonl") + training.load(CORPUS / "email_dev.jsonl")
    _check("shared corpus", _figures(rows))


def test_leave_one_source_out() -> None:
    """Every source read with what the others taught: >= 97% exact, <= 1% wrong, overall
    and over the messages that hold codes; no source of mails without codes gets one."""
    need_shared(CORPUS / "otp_dev.jsonl", CORPUS / "email_dev.jsonl")
    coded, links = training.training_rows(CORPUS)
    by_source: dict[str, list[dict[str, Any]]] = {}
    for row in coded + links:
        by_source.setdefault(training.source_of(row), []).append(row)
    overall, with_codes = training.Figures(), training.Figures()
    coded_sources = {training.source_of(r) for r in coded}
    for source, rows in sorted(by_source.items()):
        f = _figures(rows)
        if f.exact < f.n:
            print(f"  {source}: {f}")
        for into in (overall, with_codes) if source in coded_sources else (overall,):
            into.include(f)
        if source not in coded_sources:
            assert f.wrong == 0, source
    assert len(by_source) >= 50
    _check("leave one source out, every message", overall)
    _check("leave one source out, messages of code corpora", with_codes)


def test_kept_apart_set() -> None:
    """The messages set apart before tuning: never a wrong code, and no fewer exact than now."""
    rows = training.load(CODES / "heldout.jsonl")
    tune_ids = {r["id"] for r in training.load(CODES / "tune.jsonl")}
    assert rows and not tune_ids & {r["id"] for r in rows}
    _check("kept-apart set", _figures(rows), KEPT_APART_MIN_EXACT)


def _gathered_set(number: int, *, at_least: int, sources: int) -> list[dict[str, Any]]:
    """A gathered set's kept-apart third, checked against its tune part: at least *at_least*
    messages from *sources* sources in all, no message in both, and the split the hash's
    (not a choice); the tune part's figures are printed."""
    rows = training.load(CODES / f"heldout{number}.jsonl")
    tune = training.load(CODES / f"tune{number}.jsonl")
    assert len(rows) + len(tune) >= at_least
    assert len({training.source_of(r) for r in rows + tune}) >= sources
    assert not {r["id"] for r in tune} & {r["id"] for r in rows}
    for row in rows + tune:
        apart = int(hashlib.sha256(row["id"].encode()).hexdigest(), 16) % 3 == 0
        assert apart == (row in rows), row["id"]
    print(f"set {number}, tune part: {_figures(tune)}")
    return rows


def test_second_kept_apart_set() -> None:
    """The second gathered set's kept-apart third (by a hash of the id): never a wrong code,
    and no fewer exact than now; its tune part is measured too, all figures printed."""
    rows = _gathered_set(2, at_least=200, sources=1)
    _check("second kept-apart set", _figures(rows), KEPT_APART_2_MIN_EXACT)


def test_third_kept_apart_set() -> None:
    """The third gathered set's kept-apart third (by a hash of the id), committed before any
    tuning on the set: never a wrong code, and no fewer exact than now."""
    rows = _gathered_set(3, at_least=130, sources=3)
    _check("third kept-apart set", _figures(rows), KEPT_APART_3_MIN_EXACT)


def test_fourth_kept_apart_set() -> None:
    """The fourth gathered set's kept-apart third (by a hash of the id), committed before any
    tuning on the set (bank SMS, discount mails, sign-in mails in many languages): never a
    wrong code, and no fewer exact than now."""
    rows = _gathered_set(4, at_least=360, sources=3)
    _check("fourth kept-apart set", _figures(rows), KEPT_APART_4_MIN_EXACT)


def test_fifth_kept_apart_set() -> None:
    """The fifth gathered set's kept-apart third (by a hash of the id), each batch's committed
    before any tuning on it (sign-in code and link mails in the languages of South-East and
    South Asia, the Middle East and Africa, CJK SMS and mails, promotions): never a wrong
    code, and no fewer exact than now."""
    rows = _gathered_set(5, at_least=148, sources=10)
    _check("fifth kept-apart set", _figures(rows), KEPT_APART_5_MIN_EXACT)


def test_every_kept_apart_set_together() -> None:
    """All kept-apart sets as one (each one's figure printed): never a wrong code, and no
    fewer exact than now; none shares a message with a part tuned on."""
    together = training.Figures()
    tuned = {
        r["id"]
        for n in ("tune", "tune2", "tune3", "tune4", "tune5")
        for r in training.load(CODES / f"{n}.jsonl")
    }
    for name, pinned in KEPT_APART.items():
        rows = training.load(CODES / name)
        assert not tuned & {r["id"] for r in rows}, name
        figures = _figures(rows)
        print(f"{name}: {figures} (pinned at {pinned:.1%})")
        together.include(figures)
    assert together.n >= 357
    _check("every kept-apart set", together, ALL_KEPT_APART_MIN_EXACT)


def test_gathered_set_names_its_sources() -> None:
    """Each gathered message says where it comes from and what a person would type."""
    names = ("tune", "heldout", "tune2", "heldout2", "tune3", "heldout3", "tune4", "heldout4")
    names += ("tune5", "heldout5")
    for name in (f"{n}.jsonl" for n in names):
        for line in (CODES / name).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            assert ":" in row["source"] and row["family"] and row["lang"]
            shown = (row.get("subject") or "") + (row.get("text") or "") + (row.get("html") or "")
            # (allauth shows its code as XXXX-XXXX; a person may type it without the dash)
            assert row["expected"] is None or row["expected"] in shown.replace("-", "")


def test_ranker_training_is_deterministic_and_shipped_as_trained() -> None:
    """The shipped weights are what the training script learns from the repository's data."""
    need_shared(CORPUS / "otp_dev.jsonl", CORPUS / "email_dev.jsonl")
    coded, links = training.training_rows(CORPUS)
    samples = [training.read(r) for r in coded + links]
    weights = training.fit(samples)
    assert weights == training.fit(samples)
    assert len(weights) == len(ranker.FEATURES)
    assert weights == ranker_weights.WEIGHTS


# --- time ------------------------------------------------------------------------------

# Goal: no message within 50 ms (see benchmarks/extract_speed.py). The guard here
# is generous, for a loaded CI machine; it catches a quadratic slip, not a few ms.
WORST_CPU_SECONDS = 1.0

_PIECES = [
    "1", "7", " ", "  ", "\t", "\n", "123456", "1234 5678", "12 34 56", "123-456", "G-", "#",
    "code", "Code: ", "verification code is ", "OTP", "PIN ", "验证码", "認証コード", "\uff1a",
    "order ", "card ending ", "$1,234.56", "12.03.2024", "10:42", "a.", "www.", "@a.com",
    "ABCDEF", "A1B2C3", "abcdef", "<td>", "</td>", "<p>", "<br>", "<style>", "&amp;", "<x y='",
    "20% off", "Meeting", ",", ".", "-", "(", ")", "【", "】",
]  # fmt: skip


@st.composite
def _adversarial(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.tuples(st.sampled_from(_PIECES), st.integers(1, 4_000)), max_size=6))
    return "".join(piece * times for piece, times in parts)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(text=_adversarial(), subject=_adversarial())
def test_no_message_takes_long(text: str, subject: str) -> None:
    """Adversarial text as text part, HTML part and subject: bounded time, a sane answer."""
    extractor = ex.Extractor()
    for parts in ({"text": text}, {"html": text}):
        started = time.process_time()
        code = extractor.code(channel="email", subject=subject, **parts)
        assert time.process_time() - started < WORST_CPU_SECONDS, (len(text), parts.keys())
        assert code is None or (code.strip() == code and 3 <= len(code) <= ex.LONG_CODE_CHARS[1])


@pytest.mark.parametrize("markup", ["<x y='", '<a b="', "<x y='>'", "<!--", "<p"])
def test_markup_html_parser_reads_slowly_is_bounded(markup: str) -> None:
    """Markup left open, which html.parser reads in quadratic time, is read in bounded time."""
    html = markup * (ex.MAX_HTML_CHARS // len(markup))
    started = time.process_time()
    assert ex.extract_code(channel="email", subject="Your code", html=html) is None
    assert time.process_time() - started < WORST_CPU_SECONDS


def test_benchmark_worst_cases_stay_bounded() -> None:
    """The benchmark's adversarial inputs, each up to the size limits, within the guard."""
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import extract_speed
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    slowest = extract_speed.worst_cases(rounds=1)
    assert slowest[0][0] < WORST_CPU_SECONDS * 1000, slowest[:3]
