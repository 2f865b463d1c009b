"""The shortcuts in quality.validate give what the straightforward GX run gives.

validate gives GX only the columns the rules read, reuses a suite across calls, loads the batch
once, memoises three of GX's pure planning steps and each metric domain's rows (cut to the
domain's columns) while it runs (reviews.returns.gx_speedups, on the GX version they were checked
against only), pauses the garbage collector, and builds the failing rows column by column. Here
the same rows go through the plain path as well (a new suite, every column, GX's own methods,
Batch.validate, to_dict) and every failing row, rule, sentence and GX result must be the same;
validate with and without the GX speed-ups gives the same results and Data Docs pages, on hostile
returns and on a synthetic partnership's; with another GX version they are off, and the log says
so once; the domain rows are compared with GX's own for every kind of domain.
"""
from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import functools
import gc
import itertools
import logging
import math
import types
import uuid
from collections import defaultdict
from datetime import date

import numpy as np
import pandas as pd
import pytest

from reviews.returns import gx_speedups, quality
from reviews.core.gc_pause import gc_paused
from reviews.returns.gx_speedups import _plain_key
from reviews.returns.quality import KEY_COLUMN, RuleContext, _prepare, _rules, validate, write_data_docs
from reviews.returns.readers import EXTRA_COLUMN
from tests.unit.test_returns_quality import KEY, NOTIFICATION, RETURNED, _frame

AS_OF = date(2024, 7, 15)


def _straightforward(frame: pd.DataFrame, dataset: str, cfg, context):
    """The checks the plain way: a new suite, GX given every column (the frame and the derived
    ones), GX's own methods throughout, and each failing row's sentences from its whole row."""
    import great_expectations as gx

    _ctx, batch_definition = quality._gx_batch_definition()
    rules = _rules(dataset, cfg, context)
    suite = gx.ExpectationSuite(name=f"{dataset}_return")
    for rule in rules:
        rule.expectation.meta = {"rule": rule.rule_id, "notes": rule.title}
        suite.add_expectation(rule.expectation)
    full = pd.concat([frame, _prepare(frame, dataset, context)], axis=1)
    full.index = pd.Index(frame[KEY_COLUMN].to_numpy())
    batch = batch_definition.get_batch(batch_parameters={"dataframe": full})
    result = batch.validate(suite, result_format={"result_format": "COMPLETE", "return_unexpected_index_query": False})
    by_rule = {er.expectation_config.meta["rule"]: er for er in result.results}
    rows = {int(k): row for k, row in zip(full.index, full.to_dict(orient="records"))}
    failures, failed_rules, counts = defaultdict(list), defaultdict(list), {}
    for rule in rules:
        keys = sorted({int(k) for k in by_rule[rule.rule_id].result.get("unexpected_index_list") or []})
        counts[rule.rule_id] = len(keys)
        for k in keys:
            failures[k].append(rule.describe(rows[k]))
            failed_rules[k].append(rule.rule_id)
    return dict(failures), dict(failed_rules), counts, by_rule


def _batches(cfg) -> dict[str, tuple[pd.DataFrame, RuleContext]]:
    """A return of each dataset breaking every kind of rule, some rows more than one."""
    bad_notification = {**NOTIFICATION, "notification_id": "N-2", "child_ref": "", "incident_date": "31/02/2024",
                        "aware_date": "12/05/2024", "notified_date": "10/05/2024", "incident_type": "accident",
                        "age_years": "18"}
    notifications = _frame(cfg, "notifications", [
        NOTIFICATION, bad_notification, {**NOTIFICATION, "notification_id": "N-1"},  # a repeated id
        {**NOTIFICATION, "notification_id": "N-3", "notified_date": "12/07/2024"},  # after the return
        {**NOTIFICATION, "notification_id": "N-4", "age_years": "x", "sex": "?"},
        {**NOTIFICATION, "notification_id": "N-5"},
    ])
    notifications.loc[notifications["notification_id"] == "N-5", EXTRA_COLUMN] = 2  # a ragged row
    rapid_reviews = _frame(cfg, "rapid_reviews", [
        {"rapid_review_id": "RR-1", "notification_id": "N-1", "completed_date": "01/05/2024"},  # before awareness
        {"rapid_review_id": "RR-2", "notification_id": "N-1", "completed_date": "02/05/2024"},
        {"rapid_review_id": "RR-3", "notification_id": "N-9", "completed_date": "20/07/2024", "outcome": "x"},
        {"rapid_review_id": "RR-3", "notification_id": "", "panel_response_date": "01/01/2024"},
    ])
    base = {"notification_id": "", "review_type": "lcspr", "decision_date": "01/06/2024"}
    practice_reviews = _frame(cfg, "practice_reviews", [
        {**base, "review_id": "R-1", "author": "independent reviewer a  (regional list)", "status": "in_progress"},
        {**base, "review_id": "R-2", "author": "A. Friend", "status": "completed", "completed_date": "01/06/2024",
         "final_report_sent_date": "01/05/2024"},
        {**base, "review_id": "R-3", "author": "", "status": "commissioned", "notification_id": "N-7"},
        {**base, "review_id": "R-4", "author": "", "status": "in_progress", "decision_date": "soon"},
        {**base, "review_id": "R-5", "review_type": "local_multi_agency", "status": "unknown"},
    ])
    learning = _frame(cfg, "learning", [
        {"finding_id": "F-1", "review_id": "R-1", "theme": "neglect", "action_due_date": "31/12/2024"},
        {"finding_id": "F-2", "review_id": "R-8", "theme": "weather", "action_status": "maybe",
         "action_completed_date": "01/08/2024"},
        {"finding_id": "F-2", "review_id": "", "theme": "", "action_due_date": "2024-13-01"},
    ])
    known = {"notifications": {"N-1", "N-2"}, "practice_reviews": {"R-1", "R-2"}}
    dates = {"notifications": {"aware_date": {"N-1": date(2024, 5, 2)}}}
    context = RuleContext(as_of=AS_OF, known_ids=known, dates=dates)
    return {"notifications": (notifications, context), "rapid_reviews": (rapid_reviews, context),
            "practice_reviews": (practice_reviews, context), "learning": (learning, context)}


@pytest.mark.parametrize("dataset", ["notifications", "rapid_reviews", "practice_reviews", "learning"])
def test_validate_finds_what_the_straightforward_run_finds(cfg, dataset):
    frame, context = _batches(cfg)[dataset]
    failures, failed_rules, counts, plain = _straightforward(frame, dataset, cfg, context)
    assert failures, "the return should break some rules"
    for _ in range(2):  # the second call reuses the suite the first one built
        result = validate(frame, dataset, cfg, context)
        assert result.failures == failures
        assert result.failed_rules == failed_rules
        assert result.rule_counts == counts
        # GX's own result for each rule (what the Data Docs page shows) is the same too.
        fast = {er.expectation_config.meta["rule"]: er for er in result.gx_result.results}
        assert fast.keys() == plain.keys()
        for rule_id, er in fast.items():
            assert er.success == plain[rule_id].success, rule_id
            assert er.result == plain[rule_id].result, rule_id
            assert er.expectation_config.to_json_dict() == plain[rule_id].expectation_config.to_json_dict(), rule_id


def test_a_suite_is_reused_only_for_the_same_rules(cfg):
    quality._gx_batch_definition()  # a suite is built in GX's context
    context = RuleContext(as_of=RETURNED, known_ids={"notifications": set()})
    suite, rules = quality._suite("rapid_reviews", _rules("rapid_reviews", cfg, context))
    assert quality._suite("rapid_reviews", _rules("rapid_reviews", cfg, context))[0] is suite
    assert [r.rule_id for r in rules] == [r.rule_id for r in _rules("rapid_reviews", cfg, context)]
    # Without the context there is no reference rule: a different suite.
    other, other_rules = quality._suite("rapid_reviews", _rules("rapid_reviews", cfg, None))
    assert other is not suite and "reference:notification_id" not in {r.rule_id for r in other_rules}
    # Another list of allowed themes is another rule set.
    fewer = dataclasses.replace(cfg, themes=dict(list(cfg.themes.items())[:2]))
    learning = quality._suite("learning", _rules("learning", cfg, None))[0]
    assert quality._suite("learning", _rules("learning", fewer, None))[0] is not learning


def _gx_methods() -> tuple:
    """The five GX methods gx_speedups replaces while GX validates, as they are now."""
    from great_expectations.core.id_dict import IDDict
    from great_expectations.execution_engine.pandas_execution_engine import PandasExecutionEngine
    from great_expectations.expectations.expectation import Expectation
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    return (Expectation.__dict__["configuration"], ExpectationConfiguration.__dict__["to_domain_obj"],
            IDDict.__dict__["to_id"], PandasExecutionEngine.__dict__["get_domain_records"],
            PandasExecutionEngine.__dict__["get_compute_domain"])


def _watch_gx(monkeypatch) -> list[bool]:
    """Each time GX validates a suite from now on, whether GX's five methods are replaced then
    (True) or all its own (False); some but not all replaced fails the validation."""
    from great_expectations.validator.v1_validator import Validator

    own = _gx_methods()
    real = Validator.validate_expectation_suite
    seen: list[bool] = []

    def watched(self, *args, **kwargs):
        replaced = {now is not theirs for now, theirs in zip(_gx_methods(), own)}
        assert len(replaced) == 1, "some of GX's methods replaced, not all"
        seen.append(replaced.pop())
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Validator, "validate_expectation_suite", watched)
    return seen


def _other_gx_version(monkeypatch, version: str = "1.99.0") -> None:
    """gx_speedups reads another installed GX version, and has not warned yet in this process."""
    monkeypatch.setattr(gx_speedups, "installed_gx_version", lambda: version)
    monkeypatch.setattr(gx_speedups, "_warned", False)


HOSTILE = "<script>alert('x')</script> & \"quoted\""


def _hostile_notifications(cfg) -> pd.DataFrame:
    """Notifications whose found values are markup and quotes (as a Data Docs page shows them)."""
    return _frame(cfg, "notifications", [
        NOTIFICATION, {**NOTIFICATION, "notification_id": "N-2", "incident_type": HOSTILE},
        {**NOTIFICATION, "notification_id": "N-3", "incident_type": HOSTILE, "aware_date": "<b>12/05/2024</b>"}])


class _Clock(dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return cls(2024, 7, 15, 12, 30, tzinfo=tz)


def steady_gx(monkeypatch):
    """GX with a fixed clock (a result's batch load time, a page's time stamp); calling what this
    returns restarts the page's element ids (GX's are random)."""
    from great_expectations.execution_engine import pandas_execution_engine
    from great_expectations.render.view import view

    fixed = types.SimpleNamespace(datetime=_Clock, timezone=dt.timezone)
    monkeypatch.setattr(view, "datetime", fixed)
    monkeypatch.setattr(pandas_execution_engine, "datetime", fixed)
    # The page renderer gx_speedups keeps per process may have been made by an earlier test (a
    # whole DAG run) before these patches, its view holding GX's own clock and uuid4: this test
    # gets a fresh one, made under the patches, and the process gets its own back afterwards.
    monkeypatch.setattr(gx_speedups, "_kept_page_renderer", functools.lru_cache(maxsize=1)(gx_speedups._new_page_renderer))

    def restart():
        ids = itertools.count()
        monkeypatch.setattr(view, "uuid4", lambda: uuid.UUID(int=next(ids)))

    return restart


@pytest.fixture(scope="module")
def synthetic_batches(tmp_path_factory) -> list[tuple[str, pd.DataFrame, RuleContext]]:
    """What ingest_partnership validates for one synthetic partnership (two years of returns with
    extra columns, one value in six or so broken): each dataset's batch of rows, with the context
    it was checked with as it was then."""
    from reviews.core.config import load_config
    from reviews.core.template import DATASET_ORDER
    from reviews.core.warehouse import make_engine
    from reviews.returns import ingest
    from reviews_dev.synthetic import extra_column_partnerships, generate_returns

    cfg = load_config()
    code = extra_column_partnerships(cfg)[0]
    root = tmp_path_factory.mktemp("synthetic")
    generate_returns(root / "inbox", cfg, start=date(2023, 1, 1), end=date(2024, 12, 31), seed=13, inflate=5,
                     fault_rate=0.15, partnerships=[code])
    seen = []
    real = ingest.validate

    def spy(batch, dataset, cfg, context):
        seen.append((dataset, batch.copy(), copy.deepcopy(context)))
        return real(batch, dataset, cfg, context)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ingest, "validate", spy)
        ingest.ingest_partnership(make_engine(f"sqlite:///{root / 'warehouse.db'}"), cfg, code, root / "inbox",
                                  root / "raw", KEY, date(2025, 1, 31))
    assert [dataset for dataset, _, _ in seen] == list(DATASET_ORDER)
    return seen


def _outcome(result, page, restart) -> dict:
    """All of a validation's outcome: the failing rows, rules and counts, GX's own result, and the
    Data Docs page's bytes."""
    restart()
    written = write_data_docs(result, page)
    return {"failures": result.failures, "failed_rules": result.failed_rules, "rule_counts": result.rule_counts,
            "rule_titles": result.rule_titles, "suite_name": result.suite_name,
            "gx_result": None if result.gx_result is None else result.gx_result.to_json_dict(),
            "page": None if written is None else written.read_bytes()}


@pytest.mark.slow  # about 4 s of CPU
def test_validate_gives_the_same_with_and_without_the_gx_speedups(cfg, synthetic_batches, monkeypatch, tmp_path):
    restart = steady_gx(monkeypatch)
    watched = _watch_gx(monkeypatch)
    notifications, context = _batches(cfg)["notifications"]
    returns = [(name, name, frame, ctx) for name, (frame, ctx) in _batches(cfg).items()]
    returns += [("hostile", "notifications", _hostile_notifications(cfg), RuleContext(as_of=RETURNED)),
                ("on its own", "notifications", notifications, None),  # no reference or cross-dataset rules
                ("empty", "notifications", notifications.iloc[0:0], context)]
    returns += [(f"synthetic {dataset}", dataset, frame, ctx) for dataset, frame, ctx in synthetic_batches]
    validated = sum(not frame.empty for _, _, frame, _ in returns)

    fast = {name: _outcome(validate(frame, dataset, cfg, ctx), tmp_path / "fast" / f"{name}.html", restart)
            for name, dataset, frame, ctx in returns}
    assert watched == [True] * validated  # GX ran with the speed-ups, as in production
    watched.clear()
    _other_gx_version(monkeypatch)
    plain = {name: _outcome(validate(frame, dataset, cfg, ctx), tmp_path / "plain" / f"{name}.html", restart)
             for name, dataset, frame, ctx in returns}
    assert watched == [False] * validated  # and here GX's own methods throughout

    for name in fast:
        for part in fast[name]:
            assert fast[name][part] == plain[name][part], (name, part)
    assert all(fast[name]["failures"] for name in fast if name != "empty"), "every return should break some rules"
    assert fast["empty"]["page"] is None and all(fast[name]["page"] for name in fast if name != "empty")
    assert HOSTILE.encode() not in fast["hostile"]["page"]


def test_the_speedups_were_checked_against_the_installed_gx(caplog):
    import great_expectations

    assert gx_speedups.installed_gx_version() == great_expectations.__version__
    assert gx_speedups.CHECKED_GX_VERSION == great_expectations.__version__, (
        "GX is not the version the speed-ups were checked against, so they are off: run this file and "
        "test_data_docs_equivalence.py with CHECKED_GX_VERSION set to the new version, and keep it if they pass")
    own = _gx_methods()
    with caplog.at_level(logging.WARNING, logger=gx_speedups.__name__):
        with gx_speedups.applied() as on:
            assert on and all(now is not theirs for now, theirs in zip(_gx_methods(), own))
        first, again = gx_speedups.page_renderer(), gx_speedups.page_renderer()
        assert first[0] is again[0] and first[1] is again[1]  # made once per process
    assert _gx_methods() == own
    assert not [r for r in caplog.records if r.name == gx_speedups.__name__]


def test_another_gx_version_gets_gx_as_it_is_and_one_warning(cfg, monkeypatch, caplog, tmp_path):
    watched = _watch_gx(monkeypatch)
    own = _gx_methods()
    _other_gx_version(monkeypatch, "1.99.0")
    frame, context = _batches(cfg)["notifications"]
    with caplog.at_level(logging.WARNING, logger=gx_speedups.__name__):
        result = validate(frame, "notifications", cfg, context)
        validate(frame, "notifications", cfg, context)
        assert write_data_docs(result, tmp_path / "page.html").exists()
        with gx_speedups.applied() as on:
            assert not on and _gx_methods() == own
        renderers = [gx_speedups.page_renderer() for _ in range(2)]
    assert watched == [False, False]
    assert renderers[0][0] is not renderers[1][0] and renderers[0][1] is not renderers[1][1]  # GX's way: new each time
    said = [r for r in caplog.records if r.name == gx_speedups.__name__]
    assert len(said) == 1 and said[0].levelno == logging.WARNING  # once per process
    assert "1.99.0" in said[0].getMessage() and gx_speedups.CHECKED_GX_VERSION in said[0].getMessage()
    assert result.failures


def test_gx_methods_are_its_own_again_after_validating(cfg, monkeypatch):
    from great_expectations.validator.v1_validator import Validator

    before = _gx_methods()
    frame, context = _batches(cfg)["notifications"]
    validate(frame, "notifications", cfg, context)
    assert _gx_methods() == before
    for block in (gx_speedups.applied, gx_speedups._planning_memoised, gx_speedups._domains_memoised):
        with pytest.raises(RuntimeError):
            with block():
                assert _gx_methods() != before
                raise RuntimeError("a failing validation")
        assert _gx_methods() == before

    def failing(self, *args, **kwargs):  # GX fails part way through a validation
        raise RuntimeError("GX failed")

    monkeypatch.setattr(Validator, "validate_expectation_suite", failing)
    with pytest.raises(RuntimeError, match="GX failed"):
        validate(frame, "notifications", cfg, context)
    assert _gx_methods() == before


def test_the_garbage_collector_is_as_it_was_after_validating(cfg, monkeypatch):
    frame, context = _batches(cfg)["notifications"]
    during = []
    real = quality._validate

    def spy(*args):
        during.append(gc.isenabled())
        return real(*args)

    monkeypatch.setattr(quality, "_validate", spy)
    assert gc.isenabled()
    validate(frame, "notifications", cfg, context)
    assert gc.isenabled() and during == [False]
    gc.disable()
    try:
        validate(frame, "notifications", cfg, context)
        assert not gc.isenabled()  # left off, as the caller had it
    finally:
        gc.enable()
    with pytest.raises(KeyError):  # a failing validation turns it back on too
        validate(frame.drop(columns=[KEY_COLUMN]), "notifications", cfg, context)
    assert gc.isenabled()
    with gc_paused():
        with gc_paused():
            pass
        assert not gc.isenabled()  # the outer block is still open
    assert gc.isenabled()


def _domain_frame() -> pd.DataFrame:
    """Blanks of every kind in every column, text with quotes, an index of row keys."""
    nat = pd.NaT
    return pd.DataFrame({
        "a": ["x", None, "y", "x", float("nan"), "it's", "z", None],
        "b": pd.array(["1", "2", None, "4", "5", None, "7", "8"], dtype="str"),
        "c": ["lcspr", "lcspr", "other", None, "lcspr", "lcspr", "other", "lcspr"],
        "d1": pd.to_datetime(["2024-01-01", nat, "2024-01-03", nat, "2024-01-05", "2024-01-06", nat, "2024-01-08"]),
        "d2": pd.to_datetime(["2024-01-02", "2024-01-02", nat, nat, "2024-01-04", "2024-01-07", "2024-01-07", nat]),
        "n": [0, 1, 2, 3, 4, 5, 6, 7],
    }, index=pd.Index([10, 11, 12, 13, 14, 15, 16, 17]))


CONDITIONS = [{}, {"row_condition": 'c=="lcspr"', "condition_parser": "pandas"},
              {"row_condition": 'c=="lcspr" and a!="x"', "condition_parser": "pandas"}]
DOMAINS = ([{}, {"column": "a"}, {"column": "b"}, {"column": "d1"}]
           + [{"column_A": "d1", "column_B": "d2", "ignore_row_if": how}
              for how in ("both_values_are_missing", "either_value_is_missing", "neither")]
           + [{"column_A": "a", "column_B": "a", "ignore_row_if": "either_value_is_missing"}]
           + [{"column_list": ["a", "b", "d1"], "ignore_row_if": how}
              for how in ("all_values_are_missing", "any_value_is_missing", "never")]
           + [{"column_A": "d1", "column_B": "d2"}, {"column_list": ["a", "b"]}])


def _engine():
    from great_expectations.execution_engine.pandas_batch_data import PandasBatchData
    from great_expectations.execution_engine.pandas_execution_engine import PandasExecutionEngine

    engine = PandasExecutionEngine()
    engine.load_batch_data("b1", PandasBatchData(engine, _domain_frame()))
    return engine


@pytest.mark.parametrize("condition", CONDITIONS)
def test_domain_rows_are_gx_rows_cut_to_the_domain_columns(condition):
    engine = _engine()
    for domain in DOMAINS:
        kwargs = {"batch_id": "b1", **condition, **domain}
        plain = engine.get_domain_records(dict(kwargs))
        columns = gx_speedups._domain_columns(kwargs)
        expected = plain[list(columns)] if columns else plain
        with gx_speedups._domains_memoised():
            first = engine.get_domain_records(dict(kwargs))
            again = engine.get_domain_records(dict(reversed(list(kwargs.items()))))  # other order, same domain
        pd.testing.assert_frame_equal(first, expected)
        assert again is first, kwargs  # from the memo
    assert engine.get_domain_records({"batch_id": "b1", "column": "a"}).columns.tolist() == list(_domain_frame().columns)


@pytest.mark.parametrize("condition", CONDITIONS)
def test_a_column_metric_asking_again_gets_its_column(condition):
    from great_expectations.core.metric_domain_types import MetricDomainTypes

    engine = _engine()
    for column in ("a", "b", "d1"):
        kwargs = {"batch_id": "b1", "column": column, **condition}
        plain_data, plain_compute, plain_accessor = engine.get_compute_domain(dict(kwargs), MetricDomainTypes.COLUMN)
        with gx_speedups._domains_memoised():
            data, compute, accessor = engine.get_compute_domain(dict(kwargs), MetricDomainTypes.COLUMN)
            by_compute = engine.get_domain_records(compute)
            by_copy = engine.get_domain_records(dict(compute))  # not the dict GX handed back: whole rows
        assert compute == plain_compute and accessor == plain_accessor
        pd.testing.assert_frame_equal(data, plain_data[[column]])
        pd.testing.assert_frame_equal(by_compute, engine.get_domain_records(plain_compute)[[column]])
        pd.testing.assert_frame_equal(by_copy, engine.get_domain_records(plain_compute))


def test_domain_rows_gx_rejects_are_rejected_the_same_way():
    engine = _engine()
    for bad in ({"column_A": "d1", "column_B": "d2", "ignore_row_if": "sometimes"},
                {"column_list": ["a", "b"], "ignore_row_if": "sometimes"}, {"column": "missing"}):
        kwargs = {"batch_id": "b1", **bad}
        with pytest.raises(Exception) as plain:
            engine.get_domain_records(dict(kwargs))[list(gx_speedups._domain_columns(kwargs))]
        with gx_speedups._domains_memoised(), pytest.raises(type(plain.value)):
            engine.get_domain_records(dict(kwargs))[list(gx_speedups._domain_columns(kwargs))]


def _same(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if a is pd.NaT or a is pd.NA:
        return a is b
    return a == b


def test_records_are_to_dict_records():
    frame = pd.DataFrame({
        "text": ["a", None, float("nan"), "it's <b>"],
        "str": pd.array(["x", None, "z", ""], dtype="str"),
        "int": [1, 2, 3, 4], "float": [1.5, float("nan"), 0.0, -2.0], "bool": [True, False, True, False],
        "nullable": pd.array([1, None, 3, 4], dtype="Int64"),
        "when": pd.to_datetime(["2024-01-01", None, "2024-02-29", "2023-12-31"]),
        "when_s": pd.to_datetime(["2024-01-01", None, "2024-02-29", "2023-12-31"]).astype("datetime64[s]"),
        "mixed": [None, True, np.int64(3), "x"], "numpy": [np.float64(1.5), np.bool_(True), np.int64(-1), pd.NA],
    })
    for picked in (frame, frame.iloc[[3, 1]], frame.iloc[0:0]):
        expected = picked.to_dict(orient="records")
        got = quality._records(picked)
        assert len(got) == len(expected)
        for row, want in zip(got, expected):
            assert list(row) == list(want)
            assert all(_same(row[c], want[c]) for c in want), (row, want)


def test_gx_ids_are_the_same_with_the_memo(cfg):
    from great_expectations.core.id_dict import IDDict

    samples = [IDDict({"column": "a", "batch_id": "b", "row_condition": None}),
               IDDict({"value_set": [1, 2], "result_format": {"result_format": "COMPLETE", "partial": 20}}),
               IDDict({"value_set": [True], "mostly": 1.0}), IDDict({"x": 1}), IDDict()]
    plain = [s.to_id() for s in samples]
    with gx_speedups._planning_memoised():
        assert [s.to_id() for s in samples] == plain
        assert [s.to_id() for s in samples] == plain  # from the memo


def test_plain_keys_tell_apart_what_json_tells_apart():
    assert len({_plain_key(v) for v in (1, 1.0, True, "1", None)}) == 5
    assert _plain_key([1, "a"]) != _plain_key((1, "a")) != _plain_key([1, "a", None])
    assert _plain_key({"a": [1], "b": {"c": None}}) == _plain_key({"a": [1], "b": {"c": None}})
    assert _plain_key({"a": 1}) != _plain_key({"a": True})
    # Anything else is not memoised.
    assert _plain_key({"a": date(2024, 1, 1)}) is None
    assert _plain_key([pd.Timestamp("2024-01-01")]) is None
    assert _plain_key({1: "a"}) is None



def test_a_partnerships_ingest_and_its_reports_run_with_the_collector_paused(cfg, sqlite_url, tmp_path):
    """ingest_partnership and build_quality_reports pause the cyclic collector (reviews.core.gc_pause)
    and put it back as it was, also when they fail."""
    from reviews.returns import quality_reports as feedback
    from reviews.returns import ingest
    from reviews.core.warehouse import make_engine

    class Watching:
        """A config that notes whether the collector is on when it is first asked, then fails."""

        def __init__(self):
            self.seen = []

        def partnership(self, code):
            self.seen.append(gc.isenabled())
            raise LookupError(code)

    for run in (lambda c: ingest.ingest_partnership(make_engine(sqlite_url), c, "knowsley", tmp_path, tmp_path,
                                                    b"k", date(2025, 1, 1)),
                lambda c: feedback.build_quality_reports(make_engine(sqlite_url), c, "knowsley", tmp_path,
                                                         date(2025, 1, 1))):
        watching = Watching()
        with pytest.raises(LookupError):
            run(watching)
        assert watching.seen == [False] and gc.isenabled()
    (tmp_path / "inbox" / "knowsley").mkdir(parents=True)
    ingest.ingest_partnership(make_engine(sqlite_url), cfg, "knowsley", tmp_path / "inbox", tmp_path / "raw", b"k",
                              date(2025, 1, 1))  # a real run (no files) leaves it on
    assert gc.isenabled()
