"""The one configuration loader: a typed Config, errors naming the file and the key, and no
business function reading the file again (summary, bulletins, timetables use what was loaded)."""
from __future__ import annotations

import ast
import dataclasses
import pickle
from pathlib import Path

import pydantic
import pytest
import yaml

from reviews.core import warehouse as wh
from reviews.core.config import DEFAULT_CONFIG, ConfigError, Limits, load_config
from tests.bulletin_data import JUNE, PUBLISHED_REVIEW, build

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, edit) -> Path:
    """The project's config file changed by edit(raw), written under tmp_path."""
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    edit(raw)
    path = tmp_path / "reviews.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize("edit, key, message", [
    # a key missing
    (lambda raw: raw["partnerships"]["knowsley"].pop("ons_code"), "partnerships.knowsley.ons_code", "field required"),
    (lambda raw: raw["region"]["business_unit"].pop("email"), "region.business_unit.email", "field required"),
    (lambda raw: raw["timeliness"]["rule_sets"][1]["rapid_review"].pop("start"),
     "timeliness.rule_sets[1].rapid_review.start", "field required"),
    (lambda raw: raw["timeliness"]["rule_sets"][0].pop("lcspr_completion"),
     "timeliness.rule_sets[0].lcspr_completion", "field required"),
    # a value of the wrong type
    (lambda raw: raw["limits"].update(max_rows="lots"), "limits.max_rows",
     "input should be a valid integer, not 'lots'"),
    (lambda raw: raw["summary"].update(pdf="yes"), "summary.pdf", "input should be a valid boolean, not 'yes'"),
    (lambda raw: raw["timeliness"].update(at_risk_working_days=True), "timeliness.at_risk_working_days",
     "must be a number, not True"),
    (lambda raw: raw["returns"].update(expected_from="31/12/2023"), "returns.expected_from",
     "'31/12/2023' is not an ISO date"),
    (lambda raw: raw["partnerships"]["wirral"].update(file_format="ods"), "partnerships.wirral.file_format",
     "input should be 'csv' or 'xlsx', not 'ods'"),
    (lambda raw: raw["quality"]["severity"].update({"date:completed_date": "warn"}),
     "quality.severity.date:completed_date", "must be reject or flag, not 'warn'"),
    # a key it does not know where unknown keys are refused
    (lambda raw: raw["limits"].update(max_row=10), "limits.max_row",
     "unknown key (known: max_file_bytes, max_rows, max_xlsx_uncompressed_bytes, max_xlsx_compression_ratio, "
     "max_line_bytes)"),
])
def test_errors_name_the_file_and_the_key(tmp_path, edit, key, message):
    path = write(tmp_path, edit)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}: {key}: {message}")
    assert caught.value.path == path and caught.value.problems[0][0] == key


def test_every_problem_is_named_at_once(tmp_path):
    def edit(raw):
        del raw["region"]["sender"]
        raw["summary"]["period"] = "week"

    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, edit))
    lines = str(caught.value).splitlines()
    assert [line.split(": ")[1] for line in lines] == ["region.sender", "summary.period"]


def test_unreadable_files_are_named(tmp_path):
    with pytest.raises(ConfigError, match="config file not found: .*nowhere.yaml"):
        load_config(tmp_path / "nowhere.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("region: [unclosed\n")
    with pytest.raises(ConfigError, match=f"^{bad}: not valid YAML"):
        load_config(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match=f"^{bad}: the file must be a mapping"):
        load_config(bad)


def test_unknown_keys_elsewhere_are_ignored_as_before(tmp_path):
    def edit(raw):
        raw["partnerships"]["knowsley"]["notes"] = "sends on time"
        raw["summary"]["colour"] = "blue"
        raw["something_new"] = {"a": 1}

    assert load_config(write(tmp_path, edit)).partnerships["knowsley"].name == "Knowsley"


def test_one_typed_object_with_every_section():
    cfg = load_config()
    assert cfg.summary.period == "quarter" and cfg.summary.pdf is True and cfg.summary.wait_for_returns_days == 7
    assert cfg.circulation.schedule.describe() == (
        "the first working Tuesday, no earlier than working day 15, after the period ends, at 09:00 Europe/London")
    assert cfg.circulation.signoff_reminder_hours == 24
    assert cfg.circulation.xlsx_to_business_unit and cfg.circulation.late_send_window_days == 92
    assert cfg.round_regional_totals_to is None and cfg.briefings.links[0][1].startswith("https://")
    assert cfg.limits == Limits() and cfg.retention.keep_years == 10 and cfg.returns.frequency == "quarterly"
    assert cfg.code_synonyms["incident_type"]["serious harm"] == "serious_harm"
    assert cfg.code_synonyms["disability"] == cfg.code_synonyms["cp_plan"]  # the shared yes/no list
    assert cfg.code_synonym_spellings["serious harm"] == "Serious Harm"
    assert [rs.in_force_from.year for rs in cfg.rule_sets] == [2018, 2023]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.summary.period = "quarter"
    with pytest.raises(pydantic.ValidationError):  # a copy is checked like the file
        dataclasses.replace(cfg, suppression_low="many")


def test_repr_is_deterministic_and_leaves_out_the_workers(tmp_path):
    """repr(cfg) is hashed by the timeliness and bulletin digests: the same file, the same repr."""
    path = write(tmp_path, lambda raw: raw["summary"].update(workers=1))
    one, again = load_config(path), load_config(path)
    assert repr(one) == repr(again) and one == again
    assert "workers" not in repr(one) and "code_synonym_spellings" not in repr(one)
    assert repr(dataclasses.replace(one, summary=dataclasses.replace(one.summary, workers=2))) == repr(one)
    assert pickle.loads(pickle.dumps(one)) == one  # the rendering pool sends it to its workers


def test_summary_and_bulletins_use_the_loaded_config_not_the_file(tmp_path, monkeypatch):
    """compile_summary, the bulletin builder and build_period work from the Config alone: its file
    gone (and YAML unreadable), its non-default settings still apply."""
    from reviews.learning.bulletin import render_bulletin
    from reviews.learning.publication import build_period
    from reviews.learning.summary import compile_summary

    page = "https://www.knowsleyscp.org.uk/published-reviews"

    def edit(raw):
        raw["summary"].update(trend_periods=2, key_findings_per_partnership=1, pdf=False)
        raw["suppression"]["round_regional_totals_to"] = 10
        raw["partnerships"]["knowsley"]["published_reviews_url"] = page
        raw["briefings"]["questions"] = {"information_sharing": ["Who else needed to know?"]}

    path = write(tmp_path, edit)
    cfg = load_config(path)
    path.unlink()
    monkeypatch.setattr(yaml, "safe_load", lambda *a, **k: pytest.fail("the config file was read again"))

    engine = wh.make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    build(engine, cfg)
    summary = compile_summary(engine, cfg, *JUNE, JUNE[1])
    assert len(summary["trend_periods"]) == 2
    per_area: dict[str, int] = {}
    for finding in summary["key_findings"]:
        per_area[finding["partnership_code"]] = per_area.get(finding["partnership_code"], 0) + 1
    assert per_area and max(per_area.values()) == 1

    region = render_bulletin(summary, cfg, "region")
    assert next(t for t in region.tables if t.sheet == "Notifications").rows[-1][1][-1] == "20"  # 21, rounded
    briefing = next(b for b in region.briefings if b.review_id == PUBLISHED_REVIEW)
    assert page in briefing.html

    report = build_period(engine, cfg, *JUNE, JUNE[1], tmp_path / "bulletins")
    assert len(report.built) == 1 + len(cfg.partnerships) and report.pdfs_printed == 0  # pdf: false


def test_only_the_loader_reads_the_config_file():
    """No module of the product but reviews.core.config parses YAML (the DAG files' timetables
    call load_config too)."""
    readers = []
    for folder in ("include", "plugins", "dags"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
            names += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
            if "yaml" in names:
                readers.append(str(path.relative_to(ROOT)))
    assert readers == ["include/reviews/core/config.py"]
