"""A configuration error fails partnership_returns at once, with one alert saying what to set; and a
return that arrived but was not loaded is told as such, never as missing (issue 14 items 8, 9).

Real `dag.test()` runs on SQLite, the outbox as the mail path.
"""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from tests.integration.returns_support import prepare, write_config

pytestmark = pytest.mark.slow

RETURNS = {"frequency": "quarterly", "due_days_after_period_end": 10, "expected_from": "2024-06-30"}
CODES = ["knowsley", "liverpool", "sefton", "st_helens", "wirral"]
SHORT_KEY = "Sh0rtKey-91x"  # 12 characters: refused, and never to appear anywhere
NOTIFICATIONS = (
    "notification_id,child_ref,incident_date,aware_date,notified_date,incident_type,age_years,sex\r\n"
    "{p}-CF-1,{p}-CF-CHILD-1,01/06/2024,02/06/2024,05/06/2024,death,3,female\r\n"
)


def _run(dagbag, day: date):
    dag = dagbag.get_dag("partnership_returns")
    dr = dag.test(logical_date=datetime(day.year, day.month, day.day, tzinfo=timezone.utc))
    return dr, {(ti.task_id, ti.map_index): ti for ti in dr.get_task_instances()}


def test_a_short_key_fails_every_partnership_once_with_one_alert(dagbag, tmp_path, sqlite_url, monkeypatch):
    env = prepare(monkeypatch, tmp_path, sqlite_url, write_config(tmp_path, {c: {} for c in CODES}, returns=RETURNS))
    monkeypatch.setenv("REVIEWS_PSEUDONYMISATION_KEY", SHORT_KEY)
    for code in CODES:
        (env.inbox / code).mkdir()
        if code != "sefton":  # Sefton sends nothing: its return is missing
            (env.inbox / code / "notifications_2024-07-05.csv").write_text(
                NOTIFICATIONS.format(p=code[:3].upper()), encoding="utf-8")

    dr, tis = _run(dagbag, date(2024, 7, 15))
    assert dr.state == "failed"
    ingests = [ti for (task_id, _), ti in tis.items() if task_id == "ingest"]
    assert len(ingests) == 5
    assert all(ti.state == "failed" and ti.try_number == 1 for ti in ingests), [
        (ti.map_index, ti.state, ti.try_number) for ti in ingests]  # no retries
    assert tis[("check_returns_due", -1)].state == "success" and tis[("send_feedback", -1)].state == "success"

    messages = env.outbox()
    alerts = [m for m in messages if m["Subject"].startswith("[reviews] configuration error")]
    assert len(alerts) == 1, [m["Subject"] for m in messages]
    assert not [m for m in messages if m["Subject"].startswith("[reviews] failed")]
    text = alerts[0].get_body(("plain",)).get_content()
    assert ("What to set: the pseudonymisation key is missing or shorter than 16 characters: set the Airflow "
            "connection reviews_pseudonymisation (password field) or the environment variable "
            "REVIEWS_PSEUDONYMISATION_KEY") in text
    assert f"Run: {dr.run_id}" in text
    # The returns in the inbox arrived: "not loaded", not "missing"; Sefton's is missing.
    subjects = sorted(m["Subject"] for m in messages if m["Subject"].startswith("Return"))
    assert subjects == sorted([f"Return not loaded: {n}, quarter ending 30 June 2024"
                               for n in ("Knowsley", "Liverpool", "St Helens", "Wirral")]
                              + ["Return missing: Sefton, quarter ending 30 June 2024"])
    assert {r["partnership_code"]: r["status"] for r in env.rows(
        "select partnership_code, status from return_expectations")} == {
        "knowsley": "failed", "liverpool": "failed", "sefton": "missing", "st_helens": "failed", "wirral": "failed"}
    wirral = next(m for m in messages if m["Subject"].startswith("Return not loaded: Wirral"))
    assert "arrived on" in wirral.get_body(("plain",)).get_content()
    assert "no load recorded it" in wirral.get_body(("plain",)).get_content()
    # The key is nowhere: not in any email, file or table.
    for path in env.data_dir.rglob("*"):
        if path.is_file():
            assert SHORT_KEY.encode() not in path.read_bytes(), path
    assert SHORT_KEY not in env.every_table_text()

    # The key is put right: the next run loads the returns, and nobody is told twice.
    monkeypatch.setenv("REVIEWS_PSEUDONYMISATION_KEY", "a-proper-key-for-the-test-0123456789")
    dr2, tis2 = _run(dagbag, date(2024, 7, 16))
    assert dr2.state == "success"
    assert {r["partnership_code"]: r["status"] for r in env.rows(
        "select partnership_code, status from return_expectations where as_of_date = '2024-07-16'")} == {
        "knowsley": "on_time", "liverpool": "on_time", "sefton": "missing", "st_helens": "on_time", "wirral": "on_time"}
    later = env.outbox()
    assert len([m for m in later if m["Subject"].startswith("[reviews] configuration error")]) == 1
    assert len([m for m in later if m["Subject"].startswith("Return")]) == 5  # no new notice


def test_an_unreadable_return_is_not_loaded_rather_than_missing(dagbag, tmp_path, sqlite_url, monkeypatch):
    env = prepare(monkeypatch, tmp_path, sqlite_url,
                  write_config(tmp_path, {"knowsley": {}, "wirral": {}}, returns=RETURNS))
    (env.inbox / "knowsley").mkdir()
    (env.inbox / "wirral").mkdir()
    (env.inbox / "knowsley" / "notifications_2024-07-05.csv").write_text(NOTIFICATIONS.format(p="KNO"), encoding="utf-8")
    (env.inbox / "wirral" / "notifications_2024-07-05.csv").write_bytes(b"\x00\x01\x02binary junk\xff" * 50)

    dr, tis = _run(dagbag, date(2024, 7, 15))
    assert dr.state == "success", {k: ti.state for k, ti in tis.items()}
    assert {r["partnership_code"]: (r["status"], str(r["received_date"])[:10]) for r in env.rows(
        "select partnership_code, status, received_date from return_expectations")} == {
        "knowsley": ("on_time", "2024-07-05"), "wirral": ("failed", "2024-07-05")}
    [notice] = [m for m in env.outbox() if m["Subject"].startswith("Return")]
    assert notice["Subject"] == "Return not loaded: Wirral, quarter ending 30 June 2024"
    text = notice.get_body(("plain",)).get_content()
    assert "dated 05 July 2024, arrived on" in text and "but could not be loaded" in text
    assert "Wirral's data quality report for the return of 05 July 2024" in text
    assert "File received: notifications_2024-07-05.csv." in text
