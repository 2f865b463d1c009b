"""Briefing and bulletin file names never collide (issue 14 item 9: `KNO-R-100` and `KNO/R/100`
made the same briefing file, so one review's briefing overwrote the other's)."""
from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import insert

from reviews.core import warehouse as wh
from reviews.core.config import load_config
from reviews.learning.briefing import briefing_slug
from reviews.learning.publication import _file_names, build_period
from tests.bulletin_data import JUNE, _lineage, build

ALIKE = ["KNO-R-100", "KNO/R/100", "KNO R 100", "KNO--R--100", "KNO-R-100/"]


def _slug(review_id: str, code: str = "knowsley") -> str:
    return briefing_slug({"partnership_code": code, "review_id": review_id})


def test_ids_that_normalise_alike_get_names_of_their_own():
    names = [_slug(r) for r in ALIKE]
    assert names[0] == "knowsley_KNO-R-100"  # a safe id keeps its plain name
    assert len(set(names)) == len(ALIKE)
    assert all(n.startswith("knowsley_KNO-R-100~") and len(n) == len("knowsley_KNO-R-100") + 17 for n in names[1:])
    assert [_slug(r) for r in ALIKE] == names  # stable: the same id, the same name, every build
    # Long ids: bounded, and still apart when they differ only past the cut.
    long_a, long_b = "R" * 200 + "a", "R" * 200 + "b"
    assert _slug(long_a) != _slug(long_b) and max(len(_slug(long_a)), len(_slug(long_b))) <= 80
    # Nothing outside ASCII letters, digits, '-', '_' and the '~' of a hashed name.
    for rid in ("../../etc/passwd", "KNO\\R\\1", "KNÖ-R-1", "KNO-R-1\n", "", "KNO:R:1*?"):
        name = _slug(rid)
        assert name and all(c.isascii() and (c.isalnum() or c in "-_~") for c in name), name
    # A plain id cannot be chosen to take a hashed name (a plain name never has '~').
    assert _slug(names[1].removeprefix("knowsley_")) != names[1]


def test_audiences_whose_names_make_the_same_file_name_get_their_codes():
    assert _file_names({"region": "Merseyside", "knowsley": "Knowsley"}) == {"region": "Merseyside", "knowsley": "Knowsley"}
    got = _file_names({"region": "Merseyside", "st_helens": "St Helens", "st_helens_2": "St. Helens"})
    assert got == {"region": "Merseyside", "st_helens": "St Helens st_helens", "st_helens_2": "St. Helens st_helens_2"}


@pytest.fixture
def engine_with_alike_reviews(tmp_path):
    cfg = load_config()
    engine = wh.make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    build(engine, cfg)
    reviews, learning = [], []
    for i, rid in enumerate(ALIKE[:3]):
        reviews.append({
            "partnership_code": "knowsley", "review_id": rid, "notification_id": None, "review_type": "lcspr",
            "decision_date": date(2023, 9, 1), "author": "Independent reviewer B (regional list)",
            "methodology": "Systems approach", "completed_date": date(2024, 2, 20),
            "final_report_sent_date": date(2024, 6, 3), "published_date": date(2024, 6, 10 + i),
            "status": "published", **_lineage()})
        learning.append({
            "partnership_code": "knowsley", "finding_id": f"{rid}-F0", "review_id": rid, "theme": "neglect",
            "finding": f"Finding number {i} of its own review.", "recommendation": f"Recommendation number {i}.",
            "owner_agency": "health", "action_due_date": date(2024, 9, 30), "action_status": "open",
            "action_completed_date": None, **_lineage()})
    with engine.begin() as conn:
        conn.execute(insert(wh.practice_reviews), reviews)
        conn.execute(insert(wh.learning), learning)
    yield engine, dataclasses.replace(cfg, summary=dataclasses.replace(cfg.summary, pdf=False))
    engine.dispose()


def test_each_review_gets_its_own_briefing_file(engine_with_alike_reviews, tmp_path):
    engine, cfg = engine_with_alike_reviews
    report = build_period(engine, cfg, *JUNE, JUNE[1], tmp_path / "bulletins")
    folder = Path(report.folder) / "briefings"
    assert report.briefings == 4  # the three alike and the bulletin data's own published review
    pages = {p.stem: p.read_text(encoding="utf-8") for p in folder.glob("*.html")}
    texts = {p.stem: p.read_text(encoding="utf-8") for p in folder.glob("*.txt")}
    assert len(pages) == len(texts) == 4
    for i, rid in enumerate(ALIKE[:3]):
        name = _slug(rid)
        assert name in pages, (name, sorted(pages))
        assert f"Finding number {i} of its own review." in texts[name]
        assert f"(ref. {rid})" in texts[name]
        others = [j for j in range(3) if j != i]
        assert not any(f"Finding number {j} of its own review." in texts[name] for j in others)
    # A rebuild writes the same names, nothing more.
    again = build_period(engine, cfg, *JUNE, JUNE[1], tmp_path / "bulletins")
    assert sorted(p.name for p in (Path(again.folder) / "briefings").iterdir()) == sorted(
        [f"{s}.html" for s in pages] + [f"{s}.txt" for s in texts])
