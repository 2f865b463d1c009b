"""Action plans (reviews.learning.actions): the register, the due-soon and overdue judgement, and the
reminders ledger (once per action and state, across reruns and runs about later and earlier days),
on hand-made rows, on SQLite and PostgreSQL; and overdue actions by agency in the bulletins.

As of Friday 21 June 2024, reminders 10 working days ahead (Friday 5 July is 10 working days on):
  KNO-F-1  due Thu 20 Jun, open                          overdue
  KNO-F-2  due Fri 5 Jul, in progress                    due soon (10 left)
  KNO-F-3  due Mon 8 Jul, open                           nothing yet (11 left)
  KNO-F-4  due Mon 10 Jun, completed Wed 12 Jun          completed
  KNO-F-5  due Fri 21 Jun (the day), open                due soon (0 left)
  KNO-F-6  due Sat 1 Jun, status completed, no date      completed
  KNO-F-7  due Sat 1 Jun, completed Tue 25 Jun (later)   overdue as of 21 Jun
  WIR-F-1  due Mon 17 Jun, open                          overdue (Wirral: no learning contact here)
"""
from __future__ import annotations

import dataclasses
import email
import io
from datetime import date, datetime, timezone
from email import policy
from pathlib import Path

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from reviews.core import warehouse as wh
from reviews.core.mail import OutboxTransport
from reviews.learning import actions as ac

ROOT = Path(__file__).resolve().parents[2]
AS_OF = date(2024, 6, 21)
LOADED = datetime(2024, 6, 20, 12, 0, tzinfo=timezone.utc)
SECRET = "Finding text about the child Jamie"


def _lineage(i: int) -> dict:
    return {"return_date": date(2024, 6, 20), "source_file_id": 1, "source_row": i + 2, "row_hash": f"{i:064d}",
            "loaded_at": LOADED}


ACTIONS = [  # partnership, finding, agency, due, status, completed
    ("knowsley", "KNO-F-1", "Merseyside Police", date(2024, 6, 20), "open", None),
    ("knowsley", "KNO-F-2", "Health", date(2024, 7, 5), "in_progress", None),
    ("knowsley", "KNO-F-3", "=cmd|' /C calc'!A0", date(2024, 7, 8), "open", None),
    ("knowsley", "KNO-F-4", "Education", date(2024, 6, 10), "completed", date(2024, 6, 12)),
    ("knowsley", "KNO-F-5", "merseyside  police", date(2024, 6, 21), "open", None),
    ("knowsley", "KNO-F-6", "Health", date(2024, 6, 1), "completed", None),
    ("knowsley", "KNO-F-7", "Children's social care", date(2024, 6, 1), "completed", date(2024, 6, 25)),
    ("wirral", "WIR-F-1", None, date(2024, 6, 17), "open", None),
]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    engine = wh.make_engine(url)
    wh.ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(wh.practice_reviews), [
            {"partnership_code": code, "review_id": rid, "review_type": "lcspr", "decision_date": date(2023, 6, 1),
             "completed_date": date(2024, 3, 1), "status": "completed", **_lineage(i)}
            for i, (code, rid) in enumerate((("knowsley", "KNO-R-1"), ("wirral", "WIR-R-1")))])
        conn.execute(sa.insert(wh.learning), [
            {"partnership_code": code, "finding_id": fid, "review_id": f"{code[:3].upper()}-R-1",
             "theme": "information_sharing", "finding": SECRET, "recommendation": "Share records",
             "owner_agency": agency, "action_due_date": due, "action_status": status,
             "action_completed_date": done, **_lineage(i)}
            for i, (code, fid, agency, due, status, done) in enumerate(ACTIONS)])
    yield engine
    engine.dispose()


@pytest.fixture
def acfg(cfg):
    """The project's config with Wirral's learning contact removed (its reminders go to the business unit)."""
    parts = dict(cfg.partnerships)
    parts["wirral"] = dataclasses.replace(parts["wirral"], learning_contact=())
    return dataclasses.replace(cfg, partnerships=parts)


def _states(rows) -> dict[str, tuple]:
    return {r["finding_id"]: (r["action_state"], r["reminder_state"], r["working_days_left"]) for r in rows}


def _mails(folder) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in sorted(folder.glob("*.eml"))]


def test_reminder_state_rules():
    f = ac.reminder_state
    assert f("overdue", date(2024, 6, 20), AS_OF, -1, 10) == ac.OVERDUE
    assert f("open", AS_OF, AS_OF, 0, 10) == ac.DUE_SOON
    assert f("in_progress", date(2024, 7, 5), AS_OF, 10, 10) == ac.DUE_SOON
    assert f("open", date(2024, 7, 8), AS_OF, 11, 10) is None
    assert f("completed", date(2024, 6, 25), AS_OF, 2, 10) is None
    assert f("open", None, AS_OF, None, 10) is None
    assert f("open", date(2024, 6, 24), AS_OF, 1, 0) is None  # 0: only on the due day itself
    assert ac.working_days_left(AS_OF, date(2099, 1, 1)) is None  # outside the bank-holiday calendar


def test_judgement_as_of_a_day(engine, acfg):
    rows = ac.action_rows(engine, acfg, AS_OF)
    assert _states(rows) == {
        "KNO-F-1": ("overdue", "overdue", -1),
        "KNO-F-2": ("in_progress", "due_soon", 10),
        "KNO-F-3": ("open", None, 11),
        "KNO-F-4": ("completed", None, -9),
        "KNO-F-5": ("open", "due_soon", 0),
        "KNO-F-6": ("completed", None, -14),
        "KNO-F-7": ("overdue", "overdue", -14),
        "WIR-F-1": ("overdue", "overdue", -4),
    }
    later = _states(ac.action_rows(engine, acfg, date(2024, 6, 26)))
    assert later["KNO-F-7"][0] == "completed" and later["KNO-F-5"][1] == "overdue"


def test_register_is_internal_deterministic_and_holds_no_free_text(engine, acfg, tmp_path):
    report = ac.run_actions(engine, acfg, tmp_path, None, AS_OF, send=False)
    reg = report.registers["knowsley"]
    assert reg["actions"] == 7 and reg["overdue"] == 2 and reg["due_soon"] == 2 and reg["written"]
    path = tmp_path / "actions" / "knowsley" / "action_register_knowsley_2024-06-21.xlsx"
    assert reg["path"] == str(path)
    data = path.read_bytes()
    assert ac.run_actions(engine, acfg, tmp_path, None, AS_OF, send=False).registers["knowsley"]["written"] is False
    assert path.read_bytes() == data
    wb = load_workbook(io.BytesIO(data))
    ws = wb["Actions"]
    header = [c.value for c in ws[1]]
    assert header[:3] == ["Finding", "Review", "Review type"] and not any("vidence" in h for h in header)
    cells = [c.value for row in ws.iter_rows() for c in row]
    assert SECRET not in cells and "Share records" not in cells
    assert "'=cmd|' /C calc'!A0" in cells  # a formula is neutralised
    by_id = {r[0].value: [c.value for c in r] for r in ws.iter_rows(min_row=2)}
    assert by_id["KNO-F-1"][header.index("State as of the register's date")] == "Overdue"
    assert by_id["KNO-F-5"][header.index("Reminder due")] == "Due soon"
    assert "Evidence" in " ".join(str(c.value) for row in wb["About"].iter_rows() for c in row if c.value)
    assert report.skipped and report.new == 0  # not sending: the ledger is left alone
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(wh.action_reminders)).scalar_one() == 0


def test_each_reminder_is_sent_once_across_reruns_later_and_earlier_days(engine, acfg, tmp_path):
    outbox = tmp_path / "outbox"
    transport = OutboxTransport(outbox)
    first = ac.run_actions(engine, acfg, tmp_path, transport, AS_OF)
    assert (first.due_soon, first.overdue, first.new, first.emails, first.listed) == (2, 3, 5, 2, 5), first.summary()
    mails = {m["To"]: m for m in _mails(outbox)}
    assert set(mails) == {"learning@knowsley.gov.uk", "business.unit@merseyside-safeguarding.gov.uk"}
    kno = mails["learning@knowsley.gov.uk"]
    text = kno.get_body(("plain",)).get_content()
    html = kno.get_body(("html",)).get_content()
    for needle in ("KNO-F-1", "KNO-F-2", "KNO-F-5", "KNO-F-7", "KNO-R-1", "Merseyside Police", "20 June 2024",
                   "In progress", "due today"):
        assert needle in text and needle in html.replace("&#39;", "'"), needle
    assert "KNO-F-3" not in text and SECRET not in text and SECRET not in html and "Share records" not in text
    assert " ".join(str(kno["Subject"]).split()) == "[reviews] Knowsley learning actions as of 21 June 2024: 2 overdue, 2 due soon"

    again = ac.run_actions(engine, acfg, tmp_path, transport, AS_OF)
    assert (again.new, again.emails, again.already_told) == (0, 0, 5)
    assert len(_mails(outbox)) == 2

    # Monday 8 July: KNO-F-2 became overdue, KNO-F-3 falls due today; KNO-F-5 overdue too.
    later = ac.run_actions(engine, acfg, tmp_path, transport, date(2024, 7, 8))
    assert (later.new, later.emails, later.listed) == (3, 1, 3), later.summary()
    # An earlier day than any run so far: KNO-F-1 was "due soon" then, but has been told overdue.
    earlier = ac.run_actions(engine, acfg, tmp_path, transport, date(2024, 6, 14))
    assert (earlier.new, earlier.emails) == (0, 0), earlier.summary()
    assert len(_mails(outbox)) == 3
    with engine.connect() as conn:
        rows = conn.execute(sa.select(wh.action_reminders.c.finding_id, wh.action_reminders.c.state,
                                      wh.action_reminders.c.send_status)).all()
    told = sorted((f, s) for f, s, st in rows if st == "sent")
    assert told == sorted([("KNO-F-1", "overdue"), ("KNO-F-2", "due_soon"), ("KNO-F-5", "due_soon"),
                           ("KNO-F-7", "overdue"), ("WIR-F-1", "overdue"), ("KNO-F-2", "overdue"),
                           ("KNO-F-3", "due_soon"), ("KNO-F-5", "overdue")])


def test_a_pending_reminder_of_an_action_that_moved_on_is_withdrawn(engine, acfg, tmp_path):
    report = ac.ActionReport(AS_OF.isoformat())
    ac.record_reminders(engine, ac.action_rows(engine, acfg, AS_OF), AS_OF, report)
    assert report.new == 5
    with engine.begin() as conn:  # KNO-F-1 is completed before anything was sent
        conn.execute(sa.update(wh.learning).where(wh.learning.c.finding_id == "KNO-F-1")
                     .values(action_status="completed", action_completed_date=date(2024, 6, 24)))
    day = date(2024, 6, 24)
    rows = ac.action_rows(engine, acfg, day)
    sent = ac.ActionReport(day.isoformat())
    ac.send_reminders(engine, acfg, OutboxTransport(tmp_path / "outbox"), rows, day, sent)
    assert sent.withdrawn >= 1
    with engine.connect() as conn:
        status = conn.execute(sa.select(wh.action_reminders.c.send_status)
                              .where(wh.action_reminders.c.finding_id == "KNO-F-1")).scalar_one()
    assert status == "withdrawn"
    assert all("KNO-F-1" not in m.get_body(("plain",)).get_content() for m in _mails(tmp_path / "outbox"))


def test_overdue_by_agency_in_the_bulletins(engine, acfg):
    from reviews.learning.bulletin import render_bulletin
    from reviews.learning.summary import compile_summary

    s = compile_summary(engine, acfg, date(2024, 4, 1), date(2024, 6, 30), date(2024, 6, 30))
    kno = next(p for p in s["partnerships"] if p["code"] == "knowsley")
    # As at 30 June: KNO-F-1, -5 (Merseyside Police, one agency in two spellings), -2 not yet due, -7 done 25 Jun.
    assert {a: n for a, n in kno["overdue_by_agency"].items() if n} == {"Merseyside Police": 2}
    for area in (*s["partnerships"], s["region"]):
        assert sum(area["overdue_by_agency"].values()) == area["actions"]["overdue"]
    assert s["region"]["overdue_by_agency"] == {"Merseyside Police": 2, "Not recorded": 1}
    for audience in ("region", "knowsley"):
        r = render_bulletin(s, acfg, audience)
        assert "Overdue actions by agency" in r.text and "Overdue actions by agency" in r.html
        table = next(t for t in r.tables if t.caption.startswith("Overdue actions by owner agency"))
        labels = [label for label, _, _ in table.rows]
        assert "Merseyside Police" in labels and labels[-1] == "All agencies"
        assert all(v == "c" for _, cells, _ in table.rows for v in cells if v not in ("0",))  # counts of 1-5


def test_linked_totals_keep_what_the_other_table_shows():
    import numpy as np

    from reviews.privacy.suppression import recoverable_cells, suppression_mask, table_lines, with_totals

    grid = with_totals(np.array([[7, 2], [6, 9]]))  # column totals 13 and 11, published elsewhere
    alone = suppression_mask(grid)
    assert alone[0, 1]  # the 2
    linked = suppression_mask(grid, shown=frozenset({(2, 0), (2, 1), (2, 2)}))
    assert not linked[2, 0] and not linked[2, 1] and not linked[2, 2]
    assert not recoverable_cells(grid, linked, table_lines(grid.shape, True, True))
    forced = suppression_mask(grid, hidden=frozenset({(2, 0)}))
    assert forced[2, 0] and not recoverable_cells(grid, forced, table_lines(grid.shape, True, True))


def test_the_demo_prints_the_action_registers(engine, acfg, tmp_path):
    """`make demo`'s action summary (scripts/demo.py action_summary), read back from the warehouse
    and the ledger after a run: states per partnership, reminders sent, where each register is."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("demo_script", ROOT / "scripts" / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    ac.run_actions(engine, acfg, tmp_path, OutboxTransport(tmp_path / "outbox"), AS_OF)
    text = demo.action_summary(engine, AS_OF, tmp_path)
    lines = text.splitlines()
    knowsley = next(line for line in lines if line.strip().startswith("Knowsley"))
    # KNO-F-1 (due 20 June) overdue, F-5 due today, F-2 and F-3 not yet due, F-4 and F-6 completed,
    # F-7 completed after the day: not yet completed then, and overdue (due 1 June)
    assert "7 actions: 2 overdue" in knowsley and "4 reminders sent" in knowsley, knowsley
    assert "2 completed" in knowsley
    assert str(ac.register_path(tmp_path, "knowsley", AS_OF)) in text
    sefton = next(line for line in lines if line.strip().startswith("Sefton"))
    assert "0 actions" in sefton and "0 reminders sent" in sefton
    assert SECRET not in text and "Share records" not in text
