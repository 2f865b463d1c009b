"""The synthetic returns generator: layout, partnership habits, cumulative restatement, faults.

Ingest, validation and the demo trust these files to look like real returns with known faults,
so the tests read the files back the way a partnership's file would be read, not via internals.
"""
from __future__ import annotations

import csv
import re
import tempfile
import time
from contextlib import contextmanager
from collections import defaultdict
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reviews_dev import synthetic
from reviews.core.config import load_config, normalise_word
from reviews_dev.synthetic import FAULT_KINDS, GenerationReport, generate_returns, return_schedule
from reviews.core.template import DATASETS, DATASET_ORDER

START, END = date(2023, 10, 1), date(2026, 9, 30)  # the demo window
CFG = load_config()
NHS_LIKE = re.compile(r"(?<!\d)(\d{10}|\d{3} \d{3} \d{4})(?!\d)")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[GenerationReport, float]:
    inbox = tmp_path_factory.mktemp("inbox")
    t0 = time.perf_counter()
    report = generate_returns(inbox, CFG, start=START, end=END)
    return report, time.perf_counter() - t0


@pytest.fixture(scope="module")
def report(demo) -> GenerationReport:
    return demo[0]


# ----------------------------------------------------------------- reading files back


def _columns(code: str, dataset: str) -> dict[str, str]:
    """Their header -> template column (template names when they have no mapping)."""
    mapping = CFG.partnership(code).header_map(dataset)
    return mapping or {c: c for c in DATASETS[dataset].column_names}


@lru_cache(maxsize=None)
def _sheets(path: Path) -> dict[str, list[list]]:
    """dataset -> rows (header first) of one file, CSV or XLSX, values as the file holds them."""
    if path.suffix == ".xlsx":
        wb = openpyxl.load_workbook(path)
        return {ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in wb}
    dataset = path.stem.rsplit("_", 1)[0]
    with path.open(encoding="utf-8", newline="") as fh:
        return {dataset: list(csv.reader(fh))}


@lru_cache(maxsize=None)
def _records(path: Path, code: str) -> dict[str, list[dict]]:
    """dataset -> rows as {template column or extra header: value}, with '_row' (1-based).

    Cached: files are written once per test session and never changed; callers must not mutate."""
    out = {}
    for dataset, rows in _sheets(path).items():
        names = _columns(code, dataset)
        header = [names.get(h, h) for h in rows[0]]
        out[dataset] = [
            {**{k: ("" if v is None else v) for k, v in zip(header, r)}, "_row": n}
            for n, r in enumerate(rows[1:], 1)
        ]
    return out


def _return_date(path: Path) -> date:
    return date.fromisoformat(path.stem.rsplit("_", 1)[1])


def _all(report: GenerationReport):
    """(code, path, dataset, row) for every data row written."""
    for path in sorted(report.files):
        code = path.parent.name
        for dataset, rows in _records(path, code).items():
            for row in rows:
                yield code, path, dataset, row


def _fault_cells(report: GenerationReport) -> dict[tuple[Path, str, int, str], str]:
    return {(f.path, f.dataset, f.row, f.column): f.kind for f in report.fault_log}


def _parse(value, code: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    return datetime.strptime(value, CFG.partnership(code).date_format).date()


# ----------------------------------------------------------------- tests


def test_same_seed_gives_identical_bytes(report, tmp_path):
    again = generate_returns(tmp_path, CFG, start=START, end=END)
    first = {p.relative_to(report.inbox): p.read_bytes() for p in report.files}
    second = {p.relative_to(tmp_path): p.read_bytes() for p in again.files}
    assert first.keys() == second.keys()
    assert all(first[k] == second[k] for k in first), "a file differs between two runs"
    assert again.faults == report.faults and again.rows == report.rows


def test_another_seed_gives_other_data(report, tmp_path):
    other = generate_returns(tmp_path, CFG, start=START, end=END, seed=7, partnerships=["knowsley"])
    theirs = (tmp_path / "knowsley" / "notifications_2025-01-10.csv").read_bytes()
    ours = (report.inbox / "knowsley" / "notifications_2025-01-10.csv").read_bytes()
    assert other.files and theirs != ours


def test_layout_one_return_per_quarter_dated_ten_days_after(report):
    quarter_ends = [date(2023, 12, 31), date(2024, 3, 31), date(2024, 6, 30), date(2024, 9, 30),
                    date(2024, 12, 31), date(2025, 3, 31), date(2025, 6, 30), date(2025, 9, 30),
                    date(2025, 12, 31), date(2026, 3, 31), date(2026, 6, 30)]  # Sep 2026's is due after END
    expected_dates = [q + timedelta(days=10) for q in quarter_ends]
    assert [r for _, r in return_schedule(START, END)] == expected_dates
    for code, p in CFG.partnerships.items():
        names = sorted(x.name for x in (report.inbox / code).iterdir())
        if p.file_format == "xlsx":
            want = [f"return_{d.isoformat()}.xlsx" for d in expected_dates]
        else:
            want = [f"{ds}_{d.isoformat()}.csv" for ds in DATASET_ORDER for d in expected_dates]
        assert names == sorted(want), code
    assert len(report.files) == len(set(report.files)) == sum(
        1 if p.file_format == "xlsx" else 4 for p in CFG.partnerships.values()) * len(expected_dates)


def test_headers_are_each_partnerships_own(report):
    for path in report.files:
        code = path.parent.name
        for dataset, rows in _sheets(path).items():
            inverted = {}
            for theirs, ours in CFG.partnership(code).header_map(dataset).items():
                inverted.setdefault(ours, theirs)
            want = [inverted.get(c, c) for c in DATASETS[dataset].column_names]
            got = [h for h in rows[0] if h not in synthetic.EXTRA_HEADERS]
            assert got == want, (path, dataset)
            extras = [h for h in rows[0] if h in synthetic.EXTRA_HEADERS]
            if dataset == "notifications" and code in report.extra_columns:
                assert extras == list(synthetic.EXTRA_HEADERS)
            else:
                assert extras == []
    assert CFG.partnership("knowsley").header_map("notifications") == {}  # template names case


def test_csv_is_utf8_with_crlf(report):
    data = (report.inbox / "sefton" / "learning_2025-04-10.csv").read_bytes()
    data.decode("utf-8")
    assert data.count(b"\r\n") >= 2 and data.count(b"\n") == data.count(b"\r\n")


def test_liverpool_workbook_has_four_sheets_and_mixed_dates(report):
    books = sorted((report.inbox / "liverpool").glob("return_*.xlsx"))
    assert books
    real = text = 0
    for path in books:
        wb = openpyxl.load_workbook(path)
        assert wb.sheetnames == list(DATASET_ORDER)
        assert wb.properties.created == datetime.combine(_return_date(path), datetime.min.time()).replace(hour=9)
        for ws in wb:
            dates = {i for i, h in enumerate(next(ws.iter_rows(values_only=True)))
                     if _columns("liverpool", ws.title).get(h) in DATASETS[ws.title].of_kind("date")}
            for r in ws.iter_rows(min_row=2):
                for i in dates:
                    v = r[i].value
                    real += isinstance(v, datetime)
                    text += isinstance(v, str) and bool(re.fullmatch(r"\d\d/\d\d/\d{4}", v))
                    if isinstance(v, datetime):
                        assert r[i].number_format == "DD/MM/YYYY"
    assert real > 10 * text > 0, (real, text)


def test_dates_parse_with_the_partnerships_own_format(report):
    faulty = _fault_cells(report)
    checked = 0
    for code, path, dataset, row in _all(report):
        for col in DATASETS[dataset].of_kind("date"):
            v = row[col]
            if v == "" or faulty.get((path, dataset, row["_row"], col)) == "unparseable_date":
                continue
            _parse(v, code)  # raises if the partnership's own format does not fit
            checked += 1
    assert checked > 1000


def test_no_date_is_later_than_the_quarter_end_it_reports(report):
    """Except planned dates (an action's due date is returned when the action is agreed): some
    actions are due after the quarter the return reports."""
    faulty = _fault_cells(report)
    planned_ahead = 0
    for code, path, dataset, row in _all(report):
        quarter_end = _return_date(path) - timedelta(days=synthetic.RETURN_LAG_DAYS)
        for col in DATASETS[dataset].of_kind("date"):
            if row[col] != "" and (path, dataset, row["_row"], col) not in faulty:
                if col in synthetic.PLANNED_COLUMNS:
                    planned_ahead += _parse(row[col], code) > quarter_end
                    continue
                assert _parse(row[col], code) <= quarter_end, (path, dataset, row["_row"], col)
    assert planned_ahead > 100


def test_every_fault_kind_is_injected_and_found_where_logged(report):
    assert set(report.faults) == set(FAULT_KINDS)
    assert all(report.faults[k] >= 1 for k in FAULT_KINDS), report.faults
    assert sum(report.faults.values()) == len(report.fault_log)
    for f in report.fault_log:
        rows = _records(f.path, f.partnership)[f.dataset]
        row = rows[f.row - 1]
        id_col = DATASETS[f.dataset].id_column
        assert row[id_col] == f.record_id
        value = row[f.column]
        if f.kind == "missing_required_date":
            assert value == ""
        elif f.kind == "aware_after_notified":
            assert _parse(row["aware_date"], f.partnership) > _parse(row["notified_date"], f.partnership)
        elif f.kind == "unknown_incident_type":
            assert normalise_word(value) not in CFG.code_synonyms["incident_type"]
            assert value not in DATASETS["notifications"].column("incident_type").codes
        elif f.kind == "duplicate_id":
            assert [r[id_col] for r in rows].count(f.record_id) == 2
        elif f.kind == "unknown_theme":
            assert normalise_word(value) not in CFG.theme_lookup()
        elif f.kind == "unparseable_date":
            with pytest.raises(ValueError):
                _parse(value, f.partnership)
            with pytest.raises(ValueError):
                date.fromisoformat(value)
        elif f.kind == "age_out_of_range":
            assert int(value) >= 18


def test_faults_are_about_the_rate_and_spread(report):
    total = sum(sum(per.values()) for per in report.rows.values())
    assert 0.03 < len(report.fault_log) / total < 0.09
    assert {f.partnership for f in report.fault_log} == set(CFG.partnerships)
    assert {f.dataset for f in report.fault_log} == set(DATASET_ORDER)


def test_no_faults_when_rate_is_zero(tmp_path):
    clean = generate_returns(tmp_path, CFG, start=START, end=date(2024, 12, 31), fault_rate=0.0)
    assert clean.fault_log == [] and not any(clean.faults.values())


def test_codes_are_template_codes_or_the_partnerships_words(report):
    faulty = _fault_cells(report)
    themes = CFG.theme_lookup()
    words_used = themes_used = 0
    for _code, path, dataset, row in _all(report):
        for col in DATASETS[dataset].of_kind("code"):
            v = row[col]
            if v == "" or (path, dataset, row["_row"], col) in faulty:
                continue
            if col == "theme":
                assert normalise_word(v) in themes, v
                themes_used += v not in CFG.themes
                continue
            codes = DATASETS[dataset].column(col).codes
            if v not in codes:
                assert CFG.code_synonyms[col][normalise_word(v)] in codes, (col, v)
                words_used += 1
    assert words_used > 50 and themes_used > 20


def test_a_case_open_in_one_return_is_updated_in_a_later_one(report):
    updated = 0
    for code in CFG.partnerships:
        seen: dict[str, str] = {}
        files = [p for p in report.files if p.parent.name == code and not p.name.startswith(
            ("notifications", "practice_reviews", "learning"))]  # rapid_reviews CSVs or workbooks
        for path in sorted(files, key=_return_date):
            for row in _records(path, code)["rapid_reviews"]:
                rid = row["rapid_review_id"]
                if seen.get(rid) == "" and row["completed_date"] != "":
                    updated += 1
                seen[rid] = row["completed_date"]
    assert updated >= 5


def test_returns_restate_open_cases_and_drop_finished_ones(report):
    """A notification appears in consecutive returns from its first; finished ones drop out."""
    appearances: dict[str, list[date]] = defaultdict(list)
    for code, path, dataset, row in _all(report):
        if dataset == "notifications" and code == "knowsley":
            appearances[row["notification_id"]].append(_return_date(path))
    schedule = [r for _, r in return_schedule(START, END)]
    restated = 0
    for nid, dates in appearances.items():
        dates = sorted(set(dates))
        i = schedule.index(dates[0])
        assert dates == schedule[i:i + len(dates)], nid  # no gaps
        restated += len(dates) > 1
    assert restated > 10
    assert any(schedule.index(min(d)) + len(set(d)) < len(schedule) for d in appearances.values())


def test_references_resolve_within_each_return(report):
    for path in report.files:
        code = path.parent.name
        day = _return_date(path)
        group = [p for p in report.files if p.parent == path.parent and _return_date(p) == day]
        records: dict[str, list[dict]] = {}
        for p in group:
            records.update(_records(p, code))
        notified = {r["notification_id"] for r in records["notifications"]}
        reviews = {r["review_id"] for r in records["practice_reviews"]}
        assert {r["notification_id"] for r in records["rapid_reviews"]} == notified  # one each
        assert {r["notification_id"] for r in records["practice_reviews"]} - {""} <= notified
        assert {r["review_id"] for r in records["learning"]} <= reviews


def test_volumes_are_realistic_times_the_inflation(report):
    years = (return_schedule(START, END)[-1][0] - START).days / 365.25
    for code, per in report.records.items():
        expected = synthetic.BASE_NOTIFICATIONS_PER_YEAR * 10 * synthetic.VOLUME_WEIGHT.get(code, 1)
        assert 0.6 * expected * years <= per["notifications"] <= 1.5 * expected * (years + 1), code
    others = [report.records[c]["notifications"] for c in CFG.partnerships if c != "liverpool"]
    assert report.records["liverpool"]["notifications"] > 1.4 * max(others)


def test_case_mix_is_realistic(report):
    latest: dict[str, dict] = {}
    reviews: dict[str, dict] = {}
    for code, _path, dataset, row in _all(report):
        key = (code, row[DATASETS[dataset].id_column])
        if dataset == "notifications":
            latest[key] = row
        elif dataset == "practice_reviews":
            reviews[key] = row
    def share(col, codes):
        vals = [normalise_word(r[col]) for r in latest.values()]
        words = {w for w, c in CFG.code_synonyms.get(col, {}).items() if c in codes} | {normalise_word(c) for c in codes}
        return sum(v in words for v in vals) / len(vals)
    assert 0.35 < share("incident_type", {"death"}) < 0.65
    assert 0.35 < share("incident_type", {"serious_harm"}) < 0.65
    assert 0.15 < share("looked_after", {"Y"}) < 0.35
    kinds = defaultdict(int)
    for r in reviews.values():
        kinds[CFG.code_synonyms["review_type"].get(normalise_word(r["review_type"]), r["review_type"])] += 1
    assert kinds["lcspr"] > 0.15 * len(latest)
    assert kinds["local_multi_agency"] > 0 and kinds["single_agency"] > 0
    assert all(r["notification_id"] == "" for r in reviews.values()
               if normalise_word(r["review_type"]) in {"local_multi_agency", "local multi agency", "lmar",
                                                        "single_agency", "single agency", "sar"})


def test_some_publications_are_too_close_to_the_final_report(report):
    gaps = []
    for code, _path, dataset, row in _all(report):
        if dataset == "practice_reviews" and row["published_date"] and row["final_report_sent_date"]:
            try:
                sent = _parse(row["final_report_sent_date"], code)
                published = _parse(row["published_date"], code)
            except ValueError:
                continue
            gaps.append((published - sent).days)
    assert gaps and min(gaps) < 9 and max(gaps) >= 9  # 7 working days is at least 9 calendar days


def test_ids_are_partnership_prefixed_and_children_synthetic(report):
    prefixes = {"knowsley": "KNO", "liverpool": "LIV", "sefton": "SEF", "st_helens": "STH", "wirral": "WIR"}
    patterns = {"notification_id": r"N-\d{4}", "rapid_review_id": r"RR-\d{4}", "review_id": r"R-\d{3}",
                "finding_id": r"F-\d{4}", "child_ref": r"C-\d{6}"}
    children: dict[str, set] = defaultdict(set)
    for code, _path, dataset, row in _all(report):
        for col, pat in patterns.items():
            if row.get(col):
                assert re.fullmatch(rf"{prefixes[code]}-{pat}", row[col]), (col, row[col])
        if dataset == "notifications":
            children[row["notification_id"]].add(row["child_ref"])
            if code in report.extra_columns:
                assert re.fullmatch(rf"Child {prefixes[code]}-\d+", row["Child Name"])
                assert re.fullmatch(r"[A-Z]{1,2}\d{1,2} \d[A-Z]{2}", row["Home Postcode"])
    assert all(len(refs) == 1 for refs in children.values()), "a child reference changed between returns"


def test_nothing_looks_like_an_nhs_number(report):
    for path in report.files:
        for rows in _sheets(path).values():
            for r in rows:
                for v in r:
                    if isinstance(v, (str, int)):
                        assert not NHS_LIKE.search(str(v)), (path, v)


# ----------------------------------------------------------------- what the business unit must see (issue 16)


def _code(col: str, value: str) -> str:
    """A code as the template spells it, whatever words the partnership used."""
    return CFG.code_synonyms.get(col, {}).get(normalise_word(value), value)


def _latest(report: GenerationReport, dataset: str) -> dict[tuple[str, str], dict]:
    """(partnership, id) -> the record's row in the last return that holds it, faulty rows left out."""
    faulty = {(f.path, f.dataset, f.row) for f in report.fault_log}
    out = {}
    for code, path, ds, row in sorted(_all(report), key=lambda x: _return_date(x[1])):
        if ds == dataset and (path, ds, row["_row"]) not in faulty:
            out[(code, row[DATASETS[ds].id_column])] = {**row, "_path": path}
    return out


def test_rapid_reviews_are_late_about_a_quarter_of_the_time(report):
    from reviews.core.working_days import add_working_days

    aware = {(c, r["notification_id"]): _parse(r["aware_date"], c) for (c, _), r in _latest(report, "notifications").items()}
    late = done = 0
    for (code, _), row in _latest(report, "rapid_reviews").items():
        if row["completed_date"] and (code, row["notification_id"]) in aware:
            done += 1
            late += _parse(row["completed_date"], code) > add_working_days(aware[(code, row["notification_id"])], 15)
    assert done > 300 and 0.18 < late / done < 0.32, (late, done)


def test_lcspr_authors_blank_in_progress_and_some_not_approved(report):
    approved = {normalise_word(a) for a in CFG.approved_authors}
    blank_in_progress, blank_commissioned, unapproved = set(), set(), set()
    for code, _path, dataset, row in _all(report):
        if dataset != "practice_reviews" or _code("review_type", row["review_type"]) != "lcspr":
            continue
        status = _code("status", row["status"])
        if row["author"] == "":
            (blank_commissioned if status == "commissioned" else blank_in_progress).add((code, row["review_id"]))
        elif normalise_word(row["author"]) not in approved:
            unapproved.add((code, row["review_id"]))
    assert len(blank_in_progress) >= 10 and len(blank_commissioned) >= 10 and 2 <= len(unapproved) <= 40, (
        len(blank_in_progress), len(blank_commissioned), len(unapproved))
    assert {c for c, _ in blank_in_progress} == set(CFG.partnerships)


def test_delays_and_not_published_reviews_say_why(report):
    faulty = {(f.path, f.dataset, f.row) for f in report.fault_log}
    delays, words = defaultdict(int), 0
    not_published = with_reason = improvements = 0
    for code, path, dataset, row in _all(report):
        if dataset != "practice_reviews" or (path, dataset, row["_row"]) in faulty:
            continue
        if row["delay_reason"]:
            delays[_code("delay_reason", row["delay_reason"])] += 1
            words += row["delay_reason"] not in DATASETS[dataset].column("delay_reason").codes
            assert _code("review_type", row["review_type"]) == "lcspr"
        if _code("status", row["status"]) == "not_published" and _code("review_type", row["review_type"]) == "lcspr":
            not_published += 1
            with_reason += row["not_published_reason"] != ""
            if row["improvements_published_date"]:
                improvements += 1
                assert _parse(row["improvements_published_date"], code) >= _parse(row["completed_date"], code)
        elif row["not_published_reason"] or row["improvements_published_date"]:
            raise AssertionError(("a reason not to publish a review that is not 'not published'", row))
    assert set(delays) == set(DATASETS["practice_reviews"].column("delay_reason").codes), dict(delays)
    assert words > 0  # some in the partnership's own words (config code_synonyms.delay_reason)
    assert not_published > 10 and with_reason == not_published and 0 < improvements < not_published


def test_some_delayed_lcsprs_are_in_progress(report):
    in_progress = [r for (_c, _), r in _latest(report, "practice_reviews").items() if r["delay_reason"]
                   and _code("status", r["status"]) == "in_progress"]
    assert in_progress


def test_an_rr_that_chose_an_lcspr_has_no_lcspr_record_in_the_last_return(report):
    assert report.lcspr_not_listed
    for code, rr_id in report.lcspr_not_listed:
        last = max((p for p in report.files if p.parent.name == code), key=_return_date)
        group = [p for p in report.files if p.parent.name == code and _return_date(p) == _return_date(last)]
        records: dict[str, list[dict]] = {}
        for p in group:
            records.update(_records(p, code))
        rr = next(r for r in records["rapid_reviews"] if r["rapid_review_id"] == rr_id)
        assert _code("outcome", rr["outcome"]) == "lcspr" and rr["panel_response_date"]
        assert rr["notification_id"] not in {r["notification_id"] for r in records["practice_reviews"]}


def test_a_completed_date_returned_earlier_is_na_in_the_last_return(report):
    na = [f for f in report.fault_log if (f.dataset, f.column, f.value) == ("rapid_reviews", "completed_date", "n/a")
          and _return_date(f.path) == max(report.return_dates[f.partnership])]
    was_a_date = 0
    for f in na:
        assert _records(f.path, f.partnership)["rapid_reviews"][f.row - 1]["completed_date"] == "n/a"
        before = max((p for p in report.files if p.parent.name == f.partnership and _return_date(p) < _return_date(f.path)
                      and "rapid_reviews" in _records(p, f.partnership)), key=_return_date)
        row = next((r for r in _records(before, f.partnership)["rapid_reviews"] if r["rapid_review_id"] == f.record_id), {})
        was_a_date += row.get("completed_date", "") not in ("", "n/a")  # (a random fault may also write n/a)
    assert was_a_date >= 1


def test_late_and_missing_returns_when_asked(tmp_path):
    window = dict(start=date(2024, 10, 1), end=date(2026, 7, 31), seed=3, inflate=2)
    on_time = generate_returns(tmp_path / "on_time", CFG, **window)
    rep = generate_returns(tmp_path / "inbox", CFG, late_and_missing_returns=True, **window)
    schedule = return_schedule(window["start"], window["end"])
    due = [r for _, r in schedule]
    assert rep.late_returns and rep.missing_returns and rep.late_returns != on_time.late_returns == {}
    assert "Late returns:" in rep.describe() and "Returns never sent:" in rep.describe()
    for code in CFG.partnerships:
        late = dict(rep.late_returns.get(code, []))
        missing = rep.missing_returns.get(code, [])
        want = [late.get(d, d) for d in due if d not in missing]
        assert rep.return_dates[code] == want
        assert want[-synthetic.ON_TIME_LAST_RETURNS:] == due[-synthetic.ON_TIME_LAST_RETURNS:]
        for d, sent in late.items():
            q = schedule[due.index(d)][0]
            assert d < sent < synthetic._quarter_end(q + timedelta(days=1))  # before the next period ends
        files = {p.name for p in (rep.inbox / code).iterdir()}
        assert not any(d.isoformat() in name for d in missing for name in files)
        # a return after a missing one restates what the missing one would have held
        ids = {r["notification_id"] for p in on_time.files if p.parent.name == code
               for r in _records(p, code).get("notifications", [])}
        theirs = {r["notification_id"] for p in rep.files if p.parent.name == code
                  for r in _records(p, code).get("notifications", [])}
        assert theirs == ids, code
    assert not any(p.parent.name == "knowsley" and "knowsley" not in rep.late_returns and
                   _return_date(p) not in due for p in rep.files)


def test_default_demo_stays_small(report):
    """The demo's data must stay demo-sized (speed itself is for benchmarks, not tests)."""
    rows = sum(sum(d.values()) for d in report.rows.values())
    assert 3_000 < rows < 20_000 and len(report.files) < 300


def test_describe_and_cli(report, tmp_path, capsys):
    text = report.describe()
    assert "knowsley" in text and "Faults injected" in text and len(text.splitlines()) >= 4
    assert synthetic.main(["--inbox", str(tmp_path), "--start", "2024-01-01", "--end", "2024-12-31",
                           "--partnership", "wirral", "--inflate", "2"]) == 0
    out = capsys.readouterr().out
    assert "wirral" in out and "liverpool" not in out
    assert sorted(p.name for p in (tmp_path / "wirral").iterdir())[0] == "learning_2024-04-10.csv"


def test_bad_arguments_fail_early(tmp_path):
    with pytest.raises(ValueError):
        generate_returns(tmp_path, CFG, start=END, end=START)
    with pytest.raises(Exception, match="unknown partnership"):
        generate_returns(tmp_path, CFG, start=START, end=END, partnerships=["halton"])


def test_no_wall_clock_in_the_generator():
    source = Path(synthetic.__file__).read_text(encoding="utf-8")
    assert "date.today(" not in source and "datetime.now(" not in source


@contextmanager
def _fresh_reads():
    """Temporary folders may reuse a name: do not let the read cache outlive them."""
    try:
        yield
    finally:
        _records.cache_clear()
        _sheets.cache_clear()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    start=st.dates(date(2019, 1, 1), date(2027, 1, 1)),
    months=st.integers(0, 15),
    code=st.sampled_from(sorted(CFG.partnerships)),
)
def test_any_window_gives_consistent_returns(seed, start, months, code):
    """Whatever the window: returns only for due quarters, dates as known, references hold."""
    end = start + timedelta(days=months * 31)
    with tempfile.TemporaryDirectory() as tmp, _fresh_reads():
        rep = generate_returns(Path(tmp), CFG, start=start, end=end, seed=seed, inflate=2, partnerships=[code])
        schedule = return_schedule(start, end)
        assert all(start <= q <= end and r <= end for q, r in schedule)
        assert rep.return_dates[code] == [r for _, r in schedule]
        faulty = _fault_cells(rep)
        for path in rep.files:
            quarter_end = _return_date(path) - timedelta(days=synthetic.RETURN_LAG_DAYS)
            for dataset, rows in _records(path, code).items():
                for row in rows:
                    for col in DATASETS[dataset].of_kind("date"):
                        if row[col] != "" and (path, dataset, row["_row"], col) not in faulty \
                                and col not in synthetic.PLANNED_COLUMNS:
                            assert _parse(row[col], code) <= quarter_end


# ----------------------------------------------------------------- fast paths against straightforward code


def _tables(cfg, codes, seed=5, inflate=8, fault_rate=0.2, start=date(2022, 1, 1), end=date(2025, 3, 31)):
    """The tables and styles generate_returns would write (faults in), without writing them."""
    caught = {}

    def keep(tables, styles, seed, report):
        caught.update(tables=tables, styles=styles)

    original, synthetic._write_all = synthetic._write_all, keep
    try:
        generate_returns(Path("/nonexistent-inbox"), cfg, start=start, end=end, seed=seed, inflate=inflate,
                         fault_rate=fault_rate, partnerships=codes)
    finally:
        synthetic._write_all = original
    return caught["tables"], caught["styles"]


def test_csv_text_is_what_the_csv_writer_writes(tmp_path):
    """Rows cut once and shared between returns give the bytes _render + csv.writer give."""
    codes = [c for c in CFG.partnerships if not CFG.partnership(c).file_format == "xlsx"]
    tables, styles = _tables(CFG, codes)
    assert any(type(r) is not synthetic._Row for t in tables for r in t.rows)  # faults included
    assert any(styles[c].columns["notifications"] != list(DATASETS["notifications"].column_names) for c in codes)
    for t in tables:
        style = styles[t.code]
        fast = synthetic._csv_text(t, style, 5).encode("utf-8")
        again = synthetic._csv_text(t, style, 5).encode("utf-8")  # plans now cached
        synthetic._write_csv(tmp_path / "plain.csv", style.headers[t.dataset], synthetic._render(t, style, 5))
        assert fast == again == (tmp_path / "plain.csv").read_bytes(), (t.code, t.dataset, t.return_date)


@pytest.mark.parametrize("text", ["plain", "a,b", 'say "hi"', "line\nbreak", "cr\rhere", "", " spaced ", "'quoted'"])
def test_csv_field_quotes_as_the_csv_writer_does(text):
    import io

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow([text, "x"])
    assert synthetic._csv_field(text) + ",x\r\n" == buf.getvalue()


def test_shared_rows_are_the_records_as_known():
    """_snapshot gives _as_known's row at every quarter end, the same object while it reads the same."""
    cases = synthetic._draw_cases(CFG, "knowsley", 3, 6, date(2021, 1, 1), date(2025, 6, 30))
    quarter_ends = [q for q, _ in return_schedule(date(2021, 1, 1), date(2026, 12, 31))]
    extra = synthetic.EXTRA_HEADERS
    for c in cases:
        records = [(c.notification, "notifications", extra), (c.rapid_review, "rapid_reviews", ())]
        records += [(c.review, "practice_reviews", ())] + [(f, "learning", ()) for f in c.findings]
        for rec, ds, ex in records:
            if rec is None:
                continue
            seen, states = {}, {}
            for q in quarter_ends:
                row = synthetic._snapshot(rec, ds, q, ex, states)
                assert row == synthetic._as_known(rec, ds, q, ex)
                key = tuple(row.items())
                assert seen.setdefault(key, row) is row


def test_cases_by_quarter_is_the_full_scan():
    cases = synthetic._draw_cases(CFG, "wirral", 9, 5, date(2020, 6, 1), date(2024, 12, 31))
    quarters = [(q, synthetic._quarter_end(q - timedelta(days=92))) for q, _ in return_schedule(date(2021, 1, 1), date(2025, 1, 31))]
    for (q, prev), live in zip(quarters, synthetic._cases_by_quarter(cases, quarters)):
        assert live == [c for c in cases if not (c.start > q or c.end <= prev)]


def test_weighted_draws_as_random_choices():
    import random

    pairs = [synthetic.ETHNICITIES, (("a", 1), ("b", 0), ("c", 2.5)), ((1, 70), (2, 20), (3, 10))]
    for p in pairs:
        ours, theirs = random.Random(4), random.Random(4)
        values, weights = zip(*p)
        assert [synthetic._weighted(ours, tuple(p)) for _ in range(500)] == \
            [theirs.choices(values, weights=weights)[0] for _ in range(500)]


def test_working_day_lookup_gives_the_calendars_dates():
    import random

    from reviews.core import working_days

    rng = random.Random(7)
    for _ in range(3000):
        d = date(2011, 1, 1) + timedelta(days=rng.randrange(29 * 365))
        n = rng.randint(-15, 60)
        assert synthetic.add_working_days(d, n) == working_days.add_working_days(d, n), (d, n)
    with pytest.raises(working_days.OutsideCalendarError):
        synthetic.add_working_days(date(2040, 12, 20), 30)
    assert synthetic.add_working_days("2024-05-03", 1) == working_days.add_working_days("2024-05-03", 1)
