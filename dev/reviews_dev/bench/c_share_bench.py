"""How much of a bulletin is `c` at real volumes (issue 17: "fewer than a quarter of the numbers
the regional bulletin publishes are c").

Builds `--histories` synthetic five-year histories of single-digit serious cases a year per
partnership (tests/bulletin_data.py `build_realistic`, seeds 1..N), compiles the quarter April to
June 2026 and renders every audience's HTML; counts the published figures (table cells and bold
figures, as tests/browser/test_bulletin_reading.py does) and the `c`s among them.
Figures: the regional page's share of `c` per history (lowest, median, highest) and the
partnerships' pages' mean and highest. Target: every history's regional page under 25 %.
About 3 s a history.
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
from pathlib import Path

from reviews_dev.bench import Target, benchmark, say

ROOT = Path(__file__).resolve().parents[3]
TARGET = 0.25


def load_bulletin_data():
    """tests/bulletin_data.py, loaded by path (tests/ is not a package the image has)."""
    path = ROOT / "tests" / "bulletin_data.py"
    spec = importlib.util.spec_from_file_location("bulletin_data", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bulletin_data", module)
    spec.loader.exec_module(module)
    return module


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--histories", type=int, default=20, help="synthetic five-year histories (seeds 1..N)")


@benchmark("c_share", "share of c in the bulletins at real volumes, over synthetic histories (issue 17)", _arguments)
def run(options: argparse.Namespace) -> list[Target]:
    from reviews.core.config import load_config
    from reviews.core.warehouse import make_engine
    from reviews.learning.bulletin import REGION, render_bulletin
    from reviews.learning.summary import compile_summary

    data = load_bulletin_data()
    cfg = load_config()
    start, end = data.REALISTIC_QUARTER
    region, pages = [], []
    for seed in range(1, getattr(options, "histories", 20) + 1):
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{Path(tmp) / 'w.db'}")
            data.build_realistic(engine, cfg, seed=seed)
            summary = compile_summary(engine, cfg, start, end, end)
            engine.dispose()
        for audience in [REGION, *cfg.partnerships]:
            figures = data.published_figures(render_bulletin(summary, cfg, audience).html)
            share = figures.count(cfg.suppression_symbol) / len(figures)
            (region if audience == REGION else pages).append(share)
    say(f"  {len(region)} histories, quarter {start} to {end}, 12 months In numbers")
    say(f"  regional page: c is {min(region):.0%} to {max(region):.0%} of its figures "
        f"(median {statistics.median(region):.0%})")
    say(f"  partnerships' pages: mean {statistics.mean(pages):.0%}, highest {max(pages):.0%} "
        "(a partnership's own 12-month counts are single figures)")
    return [Target(f"regional page under {TARGET:.0%} c in every history", f"highest {max(region):.0%}",
                   max(region) < TARGET)]
