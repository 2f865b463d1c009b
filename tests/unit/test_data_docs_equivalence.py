"""The Data Docs page written without deep-copying the GX result is the page the deep copy gave.

write_data_docs used to deep-copy the whole GX result and HTML-escape every string in the copy;
now only each expectation result's `result` dict is rebuilt, escaped, and the rest is shared.
The old way lives here as the reference (a new renderer and view per page, as GX makes them;
gx_speedups keeps one pair per process). GX stamps a page with the time and with random ids, so
both renders run with the same clock and the same run of ids. With another GX version installed,
the page is made the old way (tests/unit/test_quality_speed_equivalence.py compares the two).
"""
from __future__ import annotations

import copy

import pytest

from reviews.returns import gx_speedups, quality
from reviews.returns.quality import RuleContext, validate, write_data_docs
from tests.unit.test_quality_speed_equivalence import (
    HOSTILE,
    _batches,
    _hostile_notifications,
    _other_gx_version,
    steady_gx,
)
from tests.unit.test_returns_quality import RETURNED


@pytest.fixture
def steady(monkeypatch):
    """GX's page renderer with a fixed clock; calling the fixture's value restarts its ids."""
    return steady_gx(monkeypatch)


def _old_page(result) -> str:
    """write_data_docs as it was: a deep copy of the whole result, every string in it escaped."""
    renderer, view = gx_speedups._new_page_renderer()
    gx_result = copy.deepcopy(result.gx_result)
    for er in gx_result.results:
        er.result = quality._escaped(er.result)
    return view.render(renderer.render(gx_result))


def _results(cfg) -> dict[str, object]:
    results = {name: validate(frame, name, cfg, context) for name, (frame, context) in _batches(cfg).items()}
    results["hostile"] = validate(_hostile_notifications(cfg), "notifications", cfg, RuleContext(as_of=RETURNED))
    return results


@pytest.mark.slow  # about 3 s of CPU
def test_the_page_is_the_page_the_deep_copy_gave(cfg, tmp_path, steady):
    for name, result in _results(cfg).items():
        before = result.gx_result.to_json_dict()
        steady()
        old = _old_page(result).encode("utf-8")
        steady()
        new = write_data_docs(result, tmp_path / f"{name}.html").read_bytes()
        assert new == old, name
        assert result.gx_result.to_json_dict() == before, name  # the result itself is left as it was
        steady()
        assert write_data_docs(result, tmp_path / f"{name}_again.html").read_bytes() == old, name



def test_with_another_gx_version_the_page_is_made_the_old_way(cfg, tmp_path, steady, monkeypatch):
    results = _results(cfg)
    _other_gx_version(monkeypatch)
    for name, result in results.items():
        before = result.gx_result.to_json_dict()
        steady()
        old = _old_page(result).encode("utf-8")
        steady()
        assert write_data_docs(result, tmp_path / f"{name}.html").read_bytes() == old, name
        assert result.gx_result.to_json_dict() == before, name


def test_found_values_are_escaped_on_the_page(cfg, tmp_path, steady):
    result = _results(cfg)["hostile"]
    steady()
    html = write_data_docs(result, tmp_path / "hostile.html").read_text(encoding="utf-8")
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert "<b>12/05/2024</b>" not in html
    found = [er.result.get("unexpected_list") for er in result.gx_result.results]
    assert [HOSTILE, HOSTILE] in found  # GX's own result keeps the values as found
