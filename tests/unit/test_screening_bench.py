"""`make bench --only screening` keeps working: registered, runs in seconds, prints its figures.

No timing is asserted (a benchmark is not a test); recall and false positives are, by
tests/unit/test_screening_corpus.py.
"""
from __future__ import annotations

from reviews_dev.bench import discover, main


def test_the_screening_benchmark_is_registered():
    assert "screening" in discover()


def test_bench_prints_recall_false_positives_and_speed_against_the_old_screener(capsys):
    code = main(["--only", "screening", "--repeat", "1"])
    out = capsys.readouterr().out
    assert code == 0
    for text in ("planted details", "recall:", "(before issue 14:", "ordinary sentences changed:", "sentences/s",
                 "times slower", "recall of planted details >= 99%", "bench summary:"):
        assert text in out, text
    assert "recall of planted details >= 99%         " in out and "PASS" in out
