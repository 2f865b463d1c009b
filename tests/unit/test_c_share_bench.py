"""`make bench BENCH_ARGS="--only c_share"` keeps working: registered, prints its figures.

Two histories here (the bench runs 20); the share itself is asserted by
tests/unit/test_bulletin_disclosure.py and tests/browser/test_bulletin_reading.py.
"""
from __future__ import annotations

import pytest

from reviews_dev.bench import discover, main

pytestmark = pytest.mark.slow


def test_the_c_share_benchmark_is_registered_and_prints_its_figures(capsys):
    assert "c_share" in discover()
    code = main(["--only", "c_share", "--histories", "2"])
    out = capsys.readouterr().out
    assert code == 0
    for text in ("2 histories", "regional page: c is", "(median", "partnerships' pages: mean",
                 "regional page under 25% c in every history", "bench summary:"):
        assert text in out, text
