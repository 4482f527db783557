"""Learn the candidate ranker's weights, and measure how well it generalises.

    python -m gateway.extraction.training [--corpus DIR] [--write] [--cv]

Reads the labelled messages the repository knows of: the shared corpus
(``otp_dev.jsonl``, ``email_dev.jsonl``), ``tests/data/codes/tune.jsonl``,
``tests/data/codes/tune2.jsonl`` to ``tune5.jsonl`` and, as messages with no code, the
link sets of ``tests/data/links``. Never the kept-apart
``tests/data/codes/heldout.jsonl`` to ``heldout5.jsonl``.
Every candidate of every message is a sample (is its value the expected code?); a logistic model is
fitted by Newton's method with a fixed ridge, from zero, in a fixed order:
the same data give the same weights, to the last digit. ``--write`` stores
them in ``ranker_weights.py``; ``--cv`` prints leave-one-source-out figures
(each source, a repository or a project's family, is left out in turn, the
weights learned from the rest, the source's messages read with them).

Offline only: nothing here runs in the gateway.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.extraction import extractor as ex
from gateway.extraction import ranker
from gateway.extraction.htmltext import blank_links, bodies, visible_text

ROOT = Path(__file__).resolve().parents[2]
CODES = ROOT / "tests" / "data" / "codes"
LINKS = ROOT / "tests" / "data" / "links"
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"
KEPT_APART = tuple(f"heldout{n}.jsonl" for n in ("", "2", "3", "4", "5"))
RIDGE = 1.0
ITERATIONS = 30
# The ranker's decision: a probability of ACCEPT, every other value at most MARGIN
# times it; a candidate from AMBIGUOUS on that is not taken makes it ambiguous.
ACCEPT = 0.7
MARGIN = 0.5
AMBIGUOUS = 0.2


@dataclass(frozen=True, slots=True)
class Sample:
    """One labelled message, read once: each body's WebOTP code or ranked candidates."""

    id: str
    source: str
    expected: str | None
    bodies: tuple[tuple[str | None, tuple[ex.Scored, ...]], ...]


def source_of(row: dict[str, Any]) -> str:
    """The source a message is left out with: its repository, or its project's family."""
    if row.get("family"):
        return str(row["family"]).split(":")[0]
    src = str(row.get("source", "")).split(" (")[0]
    if src.startswith("https://github.com/"):
        return "/".join(src.split("/")[3:5])
    return src.split(":")[0]


def load(path: Path, negative: bool = False) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    if negative:  # a link set: mails that hold an action link and no code
        rows = [dict(r, expected=None) for r in rows]
    return rows


def read(row: dict[str, Any]) -> Sample:
    """The message as :func:`ex.decide` reads it, kept for scoring with any weights."""
    subject = visible_text((row.get("subject") or "")[: ex.MAX_SUBJECT_CHARS])
    subject = subject.replace("\n", " ").strip()
    parts: list[tuple[str | None, tuple[ex.Scored, ...]]] = []
    text, html = row.get("text") or "", row.get("html") or ""
    for body in bodies(text, html, ex.MAX_TEXT_CHARS, ex.MAX_HTML_CHARS, ex.MAX_HTML_TAGS):
        doc = f"{subject}\n\n{body}" if subject else body
        web = ex._WEBOTP.search(doc) if "@" in doc else None
        if web:
            parts.append((web.group(1), ()))
            break
        ranked = ex._rank(blank_links(doc), subject_end=len(subject), features=True)
        parts.append((None, tuple(ranked)))
    return Sample(str(row["id"]), source_of(row), row["expected"], tuple(parts))


def decide(sample: Sample, weights: Sequence[float]) -> ex.Decision:
    """What the ranker answers for this message with these weights.

    A code needs a probability of ACCEPT and every other value at most MARGIN
    times it; a candidate above AMBIGUOUS that is not handed out is ambiguous.
    """
    w = tuple(weights)
    found = ex.Decision(None, "none", "no text")
    for web, ranked in sample.bodies:
        if web is not None:
            return ex.Decision(web, "code", "origin-bound WebOTP line")
        probs = sorted(
            ((ranker.probability(s.features, w), -i, s.value) for i, s in enumerate(ranked)),
            reverse=True,
        )
        if probs:
            p, _, value = probs[0]
            second = max((q for q, _, v in probs if v != value), default=0.0)
            if p >= ACCEPT and second <= p * MARGIN:
                return ex.Decision(value, "code", f"probability {p:.2f}")
            if p >= AMBIGUOUS:
                found = ex.Decision(None, "ambiguous", f"probability {p:.2f}, next {second:.2f}")
    return found


def rules_decide(sample: Sample) -> ex.Decision:
    """What the extractor answers (the hand-written score, as shipped)."""
    found = ex.Decision(None, "none", "no text")
    for web, ranked in sample.bodies:
        if web is not None:
            return ex.Decision(web, "code", "origin-bound WebOTP line")
        best = ranked[0] if ranked else None
        runner = max((s.score for s in ranked if best and s.value != best.value), default=None)
        decision = ex._verdict(
            ex._Best(best.value, best.score, float("-inf") if runner is None else runner, best.link)
            if best
            else None
        )
        if decision.code is not None:
            return decision
        if found.outcome != "ambiguous":
            found = decision
    return found


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting (the system is small and well posed)."""
    n = len(b)
    m = [[*row, b[i]] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(col + 1, n):
            f = m[r][col] / m[col][col]
            if f:
                for c in range(col, n + 1):
                    m[r][c] -= f * m[col][c]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (m[r][n] - sum(m[r][c] * x[c] for c in range(r + 1, n))) / m[r][r]
    return x


def fit(samples: Iterable[Sample]) -> tuple[float, ...]:
    """Logistic weights over every candidate of these messages (ridge RIDGE, no ridge on bias)."""
    counts: dict[tuple[float, ...], list[int]] = defaultdict(lambda: [0, 0])
    for sample in samples:
        for _, ranked in sample.bodies:
            for s in ranked:
                counts[s.features][s.value == sample.expected] += 1
    table = sorted(counts.items())
    d = len(ranker.FEATURES)
    w = [0.0] * d
    for _ in range(ITERATIONS):
        grad = [RIDGE * w[i] if i else 0.0 for i in range(d)]
        hess = [[(RIDGE if i == j and i else 0.0) for j in range(d)] for i in range(d)]
        for x, (neg, pos) in table:
            p = ranker.probability(x, tuple(w))
            g = (neg + pos) * p - pos
            h = (neg + pos) * max(p * (1 - p), 1e-9)
            for i in range(d):
                if x[i]:
                    grad[i] += g * x[i]
                    hi = hess[i]
                    for j in range(d):
                        if x[j]:
                            hi[j] += h * x[i] * x[j]
        step = _solve(hess, grad)
        w = [wi - si for wi, si in zip(w, step, strict=True)]
    return tuple(round(wi, 6) for wi in w)


@dataclass
class Figures:
    n: int = 0
    exact: int = 0
    wrong: int = 0
    ambiguous: int = 0
    missed: int = 0

    def add(self, expected: str | None, decision: ex.Decision) -> None:
        self.n += 1
        if decision.code == expected:
            self.exact += 1
        elif decision.code is not None:
            self.wrong += 1
        elif decision.outcome == "ambiguous":
            self.ambiguous += 1
        else:
            self.missed += 1

    def include(self, other: Figures) -> None:
        """Count *other*'s messages in these figures too."""
        self.n += other.n
        self.exact += other.exact
        self.wrong += other.wrong
        self.ambiguous += other.ambiguous
        self.missed += other.missed

    def __str__(self) -> str:
        n = max(self.n, 1)
        return (
            f"n={self.n} exact={self.exact / n:.1%} wrong={self.wrong / n:.1%} "
            f"abstained={(self.ambiguous + self.missed) / n:.1%} "
            f"(ambiguous={self.ambiguous / n:.1%})"
        )


def training_rows(corpus: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(messages with labelled codes, link-set messages with none)."""
    coded = load(corpus / "otp_dev.jsonl") + load(corpus / "email_dev.jsonl")
    coded += [
        r for n in ("tune", "tune2", "tune3", "tune4", "tune5") for r in load(CODES / f"{n}.jsonl")
    ]
    links = [r for n in ("tune", "consulted", "heldout") for r in load(LINKS / f"{n}.jsonl", True)]
    return coded, links


def cross_validate(samples: Sequence[Sample]) -> dict[str, Figures]:
    """Leave-one-source-out figures: per source, and ``"all"``."""
    by_source: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        by_source[s.source].append(s)
    figures: dict[str, Figures] = {"all": Figures()}
    for source in sorted(by_source):
        weights = fit(s for s in samples if s.source != source)
        f = figures.setdefault(source, Figures())
        for s in by_source[source]:
            decision = decide(s, weights)
            f.add(s.expected, decision)
            figures["all"].add(s.expected, decision)
    return figures


def write_weights(weights: Sequence[float]) -> None:
    pairs = zip(weights, ranker.FEATURES, strict=True)
    body = ",\n".join(f"    {w!r},  # {name}" for w, name in pairs)
    text = (
        '"""Weights of the candidate ranker (:mod:`.ranker`).\n\n'
        'Generated by ``python -m gateway.extraction.training --write``.\n"""\n\n'
        f"WEIGHTS: tuple[float, ...] = (\n{body},\n)\n"
    )
    (Path(__file__).parent / "ranker_weights.py").write_text(text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--write", action="store_true", help="store the learned weights")
    parser.add_argument("--cv", action="store_true", help="print leave-one-source-out figures")
    args = parser.parse_args(argv)
    coded, links = training_rows(args.corpus)
    samples = [read(r) for r in coded + links]
    weights = fit(samples)
    for name, w in zip(ranker.FEATURES, weights, strict=True):
        print(f"{name:>14} {w:+.3f}")
    if args.write:
        write_weights(weights)
    if args.cv:
        figures = cross_validate(samples)
        coded_sources = {source_of(r) for r in coded}
        only = Figures()
        for source, f in figures.items():
            if source in coded_sources:
                only.include(f)
            if source != "all" and f.exact < f.n:
                print(f"  {source}: {f}")
        print(f"leave-one-source-out, every message: {figures['all']}")
        print(f"leave-one-source-out, code corpora: {only}")
        rules, rules_coded = Figures(), Figures()
        for s in samples:
            decision = rules_decide(s)
            rules.add(s.expected, decision)
            if s.source in coded_sources:
                rules_coded.add(s.expected, decision)
        print(f"hand-written score alone, every message: {rules}")
        print(f"hand-written score alone, code corpora: {rules_coded}")
    for name in KEPT_APART:
        held = [read(r) for r in load(CODES / name)]
        kept = Figures()
        for s in held:
            kept.add(s.expected, decide(s, weights))
        print(f"kept-apart {name}: {kept}")
        if args.cv:
            rules_kept = Figures()
            for s in held:
                rules_kept.add(s.expected, rules_decide(s))
            print(f"kept-apart {name}, hand-written score alone: {rules_kept}")
    counts = Counter(source_of(r) for r in coded)
    print(f"sources: {len(counts)} with codes, {len({source_of(r) for r in links})} link families")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
