"""Rotating the pseudonymisation key: the warehouse is re-keyed from the raw copies, in one
transaction, or not at all (reviews/admin/rekey.py, docs/security.md)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from reviews.core import warehouse as wh
from reviews.returns.ingest import ingest_partnership
from reviews.privacy.pseudonymise import child_key
from reviews.admin.rekey import NEW_KEY_ENV, OLD_KEY_ENV, RekeyError, rekey

ROOT = Path(__file__).resolve().parents[2]
KEY_A = "key-A-the-one-in-use-0123456789"
KEY_B = "key-B-the-new-one-9876543210zyx"
CLOCK = lambda: datetime(2030, 1, 1, tzinfo=timezone.utc)  # noqa: E731

HEADER = ("notification_id,child_ref,incident_date,aware_date,notified_date,incident_type,age_years,sex,"
          "ethnicity,disability,looked_after,cp_plan,cin_plan,known_to_csc\r\n")
FIRST = HEADER + (
    "KNO-1,REF-ONE,01/05/2024,02/05/2024,08/05/2024,death,7,female,,N,N,N,N,Y\r\n"
    "KNO-2,ref two,01/05/2024,03/05/2024,09/05/2024,serious_harm,4,male,,N,N,Y,N,Y\r\n"
    "KNO-3,REF-THREE,01/05/2024,12/05/2024,10/05/2024,accident,4,male,,N,N,Y,N,Y\r\n"  # quarantined (incident_type)
)
SECOND = HEADER + (  # a later return restates KNO-1 (a second history version)
    "KNO-1,REF-ONE,01/05/2024,02/05/2024,08/05/2024,death,7,female,White British,N,N,N,N,Y\r\n"
)
THIRD = HEADER + (  # after the rotation, under key B: the same child, and a new one
    "KNO-1,REF-ONE,01/05/2024,02/05/2024,08/05/2024,death,8,female,White British,N,N,N,N,Y\r\n"
    "KNO-4,REF-FOUR,01/08/2024,02/08/2024,05/08/2024,death,2,male,,N,N,N,N,Y\r\n"
)


def _liverpool_workbook(path: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "Notifications"
    ws.append(["Notification Ref", "Child Reference", "Date of Incident", "Date LA Aware", "Date Notified to Panel",
               "Incident Type", "Age", "Sex"])
    ws.append(["LIV-1", "LIV-REF-1", datetime(2024, 5, 1), datetime(2024, 5, 2), datetime(2024, 5, 3), "Death", 3, "F"])
    ws.append(["LIV-2", "REF-ONE", datetime(2024, 5, 1), datetime(2024, 5, 2), datetime(2024, 5, 3), "Death", 3, "F"])
    wb.save(path)


def _load(engine, cfg, inbox: Path, raw: Path, key: str, as_of: date, code: str = "knowsley"):
    return ingest_partnership(engine, cfg, code, inbox, raw, key.encode(), as_of, clock=CLOCK)


def _every_value(engine) -> str:
    parts = []
    with engine.connect() as conn:
        for table in wh.metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                parts.append(" | ".join("" if v is None else str(v) for v in row))
    return "\n".join(parts)


def _snapshot(engine) -> dict:
    with engine.connect() as conn:
        return {t.name: sorted(map(tuple, conn.execute(sa.select(t)).all()), key=repr) for t in wh.metadata.sorted_tables}


@pytest.fixture
def loaded(tmp_path, cfg, request):
    """Knowsley (two CSV returns) and Liverpool (a workbook in its own headers) loaded under key A."""
    url = request.getfixturevalue(request.param) if hasattr(request, "param") else f"sqlite:///{tmp_path / 'wh.db'}"
    engine = wh.make_engine(url)
    inbox, raw = tmp_path / "inbox", tmp_path / "raw"
    (inbox / "knowsley").mkdir(parents=True)
    (inbox / "liverpool").mkdir(parents=True)
    (inbox / "knowsley" / "notifications_2024-07-10.csv").write_text(FIRST, encoding="utf-8")
    _liverpool_workbook(inbox / "liverpool" / "return_2024-07-10.xlsx")
    _load(engine, cfg, inbox, raw, KEY_A, date(2024, 7, 15))
    _load(engine, cfg, inbox, raw, KEY_A, date(2024, 7, 15), "liverpool")
    (inbox / "knowsley" / "notifications_2024-07-20.csv").write_text(SECOND, encoding="utf-8")
    _load(engine, cfg, inbox, raw, KEY_A, date(2024, 7, 25))
    yield engine, inbox, raw
    engine.dispose()


def _a_hashes() -> dict[str, str]:
    refs = {("knowsley", r) for r in ("REF-ONE", "ref two", "REF-THREE", "REF-FOUR")}
    refs |= {("liverpool", r) for r in ("LIV-REF-1", "REF-ONE")}
    return {f"{code}:{ref}": child_key(ref, code, KEY_A.encode()) for code, ref in refs}


@pytest.mark.parametrize("loaded", ["sqlite_url", pytest.param("postgres_url", marks=pytest.mark.postgres)],
                         indirect=True)
def test_rekey_then_a_new_return_under_the_new_key_matches(loaded, cfg):
    engine, inbox, raw = loaded
    a = _a_hashes()
    before = _every_value(engine)
    assert a["knowsley:REF-ONE"] in before and a["knowsley:REF-THREE"] in before  # quarantined row: raw_values

    report = rekey(engine, cfg, KEY_A, KEY_B)
    assert report.updated == {"notifications": 4, "record_history": 5, "quarantine": 1}
    assert report.references == 5 and report.files_read == 3

    after = _every_value(engine)
    for name, old in a.items():
        assert old not in after, f"an old-key hash of {name} is left"
    with engine.connect() as conn:
        keys = dict(conn.execute(sa.select(wh.notifications.c.notification_id, wh.notifications.c.child_key)).all())
        raw_values = conn.execute(sa.select(wh.quarantine.c.raw_values)).scalar_one()
    b = lambda ref, code="knowsley": child_key(ref, code, KEY_B.encode())  # noqa: E731
    assert keys == {"KNO-1": b("REF-ONE"), "KNO-2": b("ref two"), "LIV-1": b("LIV-REF-1", "liverpool"),
                    "LIV-2": b("REF-ONE", "liverpool")}
    assert b("REF-THREE") in raw_values
    assert keys["KNO-1"] != keys["LIV-2"]  # the same reference in two partnerships is two children

    # The next return, pseudonymised with key B, finds the same child under the same key.
    (inbox / "knowsley" / "notifications_2024-08-10.csv").write_text(THIRD, encoding="utf-8")
    summary = _load(engine, cfg, inbox, raw, KEY_B, date(2024, 8, 15))
    assert summary.rows_loaded == 2
    with engine.connect() as conn:
        h = wh.record_history.c
        versions = conn.execute(sa.select(h.values_json, h.row_hash).where(h.record_id == "KNO-1")
                                .order_by(h.history_id)).all()
        now = dict(conn.execute(sa.select(wh.notifications.c.notification_id, wh.notifications.c.child_key)).all())
    assert now["KNO-1"] == keys["KNO-1"] and now["KNO-4"] == b("REF-FOUR")
    assert len(versions) == 3 and len({re.search(r'"child_key": "(\w+)"', v).group(1) for v, _ in versions}) == 1
    # Row hashes were recomputed with the new keys, so they are what ingest would write today.
    from reviews.returns.ingest import _row_hash
    import json

    assert all(_row_hash(json.loads(v)) == digest for v, digest in versions)
    # Rekeying again with the same keys is harmless: everything is already under key B.
    again = rekey(engine, cfg, KEY_A, KEY_B)
    assert sum(again.updated.values()) == 0 and again.already_new == {"notifications": 5, "record_history": 7, "quarantine": 1}


def test_wrong_old_key_is_refused_and_nothing_changes(loaded, cfg):
    engine, _inbox, _raw = loaded
    before = _snapshot(engine)
    with pytest.raises(RekeyError) as err:
        rekey(engine, cfg, "not-the-key-in-use-at-all-000", KEY_B)
    message = str(err.value)
    assert "10 stored child_key(s) match no child reference" in message
    assert "notifications (knowsley): 2" in message and "notifications (liverpool): 2" in message
    assert "record_history (knowsley): 3" in message and "quarantine (knowsley): 1" in message
    assert "Nothing was changed" in message
    assert _snapshot(engine) == before
    for secret in ("not-the-key", KEY_B, "REF-ONE"):
        assert secret not in message


def test_a_missing_raw_copy_is_refused_and_a_dry_run_changes_nothing(loaded, cfg):
    engine, _inbox, _raw = loaded
    before = _snapshot(engine)
    report = rekey(engine, cfg, KEY_A, KEY_B, dry_run=True)
    assert report.updated["notifications"] == 4 and "dry run (rolled back)" in report.summary()
    assert _snapshot(engine) == before

    with engine.connect() as conn:
        path = Path(conn.execute(sa.select(wh.return_files.c.raw_path)
                                 .where(wh.return_files.c.partnership_code == "liverpool")).scalar_one())
    os.chmod(path, 0o644)
    path.unlink()
    with pytest.raises(RekeyError, match=r"liverpool: the raw copy of file \d+ \(return_2024-07-10.xlsx\) is missing"):
        rekey(engine, cfg, KEY_A, KEY_B)
    assert _snapshot(engine) == before


def test_same_key_twice_is_refused(loaded, cfg):
    engine, _inbox, _raw = loaded
    with pytest.raises(RekeyError, match="the same"):
        rekey(engine, cfg, KEY_A, KEY_A)


@pytest.mark.slow  # four `python -m reviews.admin.rekey` processes: about 3.5 s
def test_command_line_takes_the_keys_from_the_environment_only(loaded, cfg, tmp_path):
    engine, _inbox, _raw = loaded
    url = str(engine.url.render_as_string(hide_password=False))
    base = {k: v for k, v in os.environ.items() if not k.startswith(("REVIEWS_REKEY", "AIRFLOW_CONN_REVIEWS"))}
    cmd = [sys.executable, "-m", "reviews.admin.rekey", "--warehouse", url, "--config", str(ROOT / "config" / "reviews.yaml")]

    missing = subprocess.run(cmd, env=base, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and OLD_KEY_ENV in missing.stderr

    as_argument = subprocess.run(cmd + ["--old-key", KEY_A], env=base, capture_output=True, text=True, timeout=120)
    assert as_argument.returncode == 2  # there is no such option: keys never go on a command line

    env = {**base, OLD_KEY_ENV: KEY_A, NEW_KEY_ENV: KEY_B}
    dry = subprocess.run(cmd + ["--dry-run"], env=env, capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0, dry.stderr
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "re-keyed notifications 4, quarantine 1, record_history 5" in done.stdout
    for text in (dry.stdout + dry.stderr, done.stdout + done.stderr):
        assert KEY_A not in text and KEY_B not in text and "REF-ONE" not in text
    with engine.connect() as conn:
        assert conn.execute(sa.select(wh.notifications.c.child_key)
                            .where(wh.notifications.c.notification_id == "KNO-2")).scalar_one() == \
            child_key("ref two", "knowsley", KEY_B.encode())
