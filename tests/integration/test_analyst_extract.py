"""The analysts' extract through Airflow itself (`dag.test()`): regional_learning_summary writes it
after the bulletins, pandas reads every view's sheet back, a rerun leaves the same bytes, and
bulletin_circulation then sends the bulletins without it (outbox)."""
from __future__ import annotations

import email
from datetime import datetime, timezone

import pytest

from reviews.core import warehouse as wh
from reviews.core.views import VIEWS
from reviews_dev.signoff import Answerer
from tests.bulletin_data import build, monthly_config

pytestmark = pytest.mark.slow

SUMMARY_RUN = datetime(2024, 7, 1, tzinfo=timezone.utc)  # builds June 2024
SEND_RUN = datetime(2024, 7, 23, 8, 0, tzinfo=timezone.utc)  # June's send day


def _run(dagbag, dag_id: str, when: datetime):
    with Answerer() as answerer:  # the business unit approves the sign-off request
        dr = dagbag.get_dag(dag_id).test(logical_date=when)
    assert not answerer.errors, answerer.errors
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert dr.state == "success", states
    return dr, states


def test_the_summary_writes_the_extract_and_circulation_never_sends_it(dagbag, tmp_path, monkeypatch, cfg):
    import pandas as pd

    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    engine = wh.make_engine(url)
    build(engine, cfg)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("AIRFLOW_CONN_REVIEWS_WAREHOUSE", url)
    monkeypatch.setenv("AIRFLOW_VAR_REVIEWS_DATA_DIR", str(data_dir))
    monkeypatch.setenv("AIRFLOW_VAR_REVIEWS_CONFIG", str(monthly_config(tmp_path)))
    monkeypatch.delenv("AIRFLOW_CONN_REVIEWS_SMTP", raising=False)

    dr, states = _run(dagbag, "regional_learning_summary", SUMMARY_RUN)
    assert states["write_analyst_extract"] == "success"
    path = data_dir / "analyst" / "analyst_extract_2024-06-30.xlsx"
    xcom = dr.get_task_instance("write_analyst_extract").xcom_pull(task_ids="write_analyst_extract")
    assert xcom["extracts"][0]["path"] == str(path) and xcom["extracts"][0]["written"]

    sheets = pd.read_excel(path, sheet_name=None)
    assert list(sheets) == [*VIEWS, "About"]
    for name, view in VIEWS.items():
        assert list(sheets[name].columns) == view.columns(), name
        assert len(sheets[name]) == xcom["extracts"][0]["rows"][name], name
    with engine.connect() as conn:
        notifications = conn.exec_driver_sql("select count(*) from notifications").scalar()
        child_keys = {k for (k,) in conn.exec_driver_sql("select child_key from notifications")}
    assert len(sheets["v_case_journeys"]) == notifications
    assert len(sheets["v_actions"]) > 0 and len(sheets["v_themes_by_period"]) > 0
    # Timeliness as judged at the period end (build_bulletins judges June first).
    assert set(sheets["v_latest_timeliness"]["as_of_date"]) == {pd.Timestamp("2024-06-30")}
    cells = {str(v) for frame in sheets.values() for v in frame.to_numpy().ravel()}
    assert not child_keys & cells

    first = path.read_bytes()
    dr, _ = _run(dagbag, "regional_learning_summary", SUMMARY_RUN)
    again = dr.get_task_instance("write_analyst_extract").xcom_pull(task_ids="write_analyst_extract")
    assert path.read_bytes() == first and not again["extracts"][0]["written"]

    _run(dagbag, "bulletin_circulation", SEND_RUN)
    sent = sorted((data_dir / "outbox").glob("*.eml"))
    assert sent
    for eml in sent:
        message = email.message_from_bytes(eml.read_bytes())
        names = [p.get_filename() for p in message.walk() if p.get_filename()]
        assert names and not [n for n in names if "analyst" in n], names
