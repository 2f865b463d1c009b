"""Free-text screening on the labelled corpus (issue 14, "Free-text screening ... measured").

The corpus is tests/unit/screening_corpus.py: ordinary findings and recommendations sentences,
and sentences with planted personal details (NHS numbers, phones, postcodes, emails, spelled-out
emails, street addresses, given names, dates of birth, full-width forms). Figures, for the
screener (reviews.privacy.screening) and the one before issue 14 (reviews_dev.screening_reference):
  recall: planted details no longer in the text after screening, by detail;
  changed: ordinary sentences that screening changed (false positives);
  speed: sentences screened per second over the whole corpus (fastest of --repeat rounds,
  alternating with the old screener so both see the same machine load), and the ratio.
Targets: recall at least 99 %; at most 2 % of ordinary sentences changed; at most 3 times slower
than the old screener. A few seconds.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from reviews_dev.bench import Target, benchmark, interleaved, say
from reviews_dev import screening_reference
from reviews.privacy import names, screening

ROOT = Path(__file__).resolve().parents[3]
RECALL_TARGET = 0.99
CHANGED_TARGET = 0.02
SLOWDOWN_TARGET = 3.0


def load_corpus():
    """tests/unit/screening_corpus.py, loaded by path (tests/ is not a package the image has)."""
    path = ROOT / "tests" / "unit" / "screening_corpus.py"
    spec = importlib.util.spec_from_file_location("screening_corpus", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("screening_corpus", module)
    spec.loader.exec_module(module)
    return module


def figures(screen_text, corpus) -> tuple[float, float, int, int]:
    """(recall by planted detail, share of ordinary sentences changed, details, ordinary sentences)."""
    ordinary = corpus.ordinary_sentences()
    changed = sum(screen_text(s) != s for s in ordinary)
    items = missed = 0
    for sentence, details in corpus.planted_sentences():
        out = screen_text(sentence)
        for detail in details:
            items += 1
            missed += not corpus.planted_gone(out, detail)
    return 1 - missed / items, changed / len(ordinary), items, len(ordinary)


@benchmark("screening", "free-text screening on the labelled corpus: recall, false positives, speed (issue 14)")
def run(options: argparse.Namespace) -> list[Target]:
    corpus = load_corpus()
    names.given_names()  # read once per process, as in the pipeline; not timed
    new = figures(lambda s: screening.screen(s).text, corpus)
    old = figures(lambda s: screening_reference.screen(s).text, corpus)
    say(f"  corpus: {new[2]} planted details, {new[3]} ordinary sentences")
    say(f"  recall: {new[0]:.1%} (before issue 14: {old[0]:.1%}); ordinary sentences changed: "
        f"{new[1]:.1%} (before: {old[1]:.1%})")
    sentences = corpus.ordinary_sentences() + [s for s, _ in corpus.planted_sentences()]
    rounds = 20  # one pass is a few milliseconds: time 20 passes per round

    def timed(fn):
        return lambda: [fn(s) for _ in range(rounds) for s in sentences]

    best = interleaved(options.repeat, {"new": timed(screening.screen), "old": timed(screening_reference.screen)})
    rate = {k: rounds * len(sentences) / best[k][0] for k in best}
    slowdown = rate["old"] / rate["new"]
    say(f"  speed: {rate['new']:,.0f} sentences/s (before issue 14: {rate['old']:,.0f}); "
        f"{slowdown:.2f} times slower")
    return [
        Target(f"recall of planted details >= {RECALL_TARGET:.0%}", f"{new[0]:.1%}", new[0] >= RECALL_TARGET),
        Target(f"ordinary sentences changed <= {CHANGED_TARGET:.0%}", f"{new[1]:.1%}", new[1] <= CHANGED_TARGET),
        Target(f"at most {SLOWDOWN_TARGET:.0f} times slower than before", f"{slowdown:.2f}x",
               slowdown <= SLOWDOWN_TARGET),
    ]
