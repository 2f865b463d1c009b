"""Late and missing returns: is each partnership's return for each period in, and was it on time?

The config's `returns` says how often returns are due (monthly, or quarterly on calendar quarters)
and how many days after the period ends, from the period ending `expected_from`. Judged as of a
run's as-of date, never the wall clock, so a backfill gives the same answer every time:

  received  the first return the partnership sent for the period: a file, not failed, dated (by
            its file name, or an SQL pull by its run's as-of date) on or after the period's last
            day and before the next period's last day, and not after the as-of date
  on_time   received on or before the due date
  late      received after the due date
  missing   nothing received, and the due date has passed (a period not yet due, with nothing
            received, has no row)

`return_expectations` holds one row per partnership and period for each as-of date (a run
replaces its own as-of date's rows). Each late or missing flag is written up once as a notice to
the business unit (a `bulletins` row with audience `returns:{code}` and period = the period's last
day), sent by feedback.send_feedback: a flag that is still there the next day is not sent again;
a missing return that then arrives late is a new flag.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, insert, select

from reviews.core import warehouse as wh
from reviews.core.audit import audit_now
from reviews.core.config import Config, ReturnsRule
from reviews.core.rendering import templates
from reviews.returns.quality_reports import RETURNS, store_feedback

ON_TIME, LATE, MISSING = "on_time", "late", "missing"
FLAGS = (LATE, MISSING)


def _month_end(d: date) -> date:
    nxt = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    return nxt - timedelta(days=1)


def period_end_of(d: date, frequency: str) -> date:
    """The last day of the period (month, or calendar quarter) that contains `d`."""
    if frequency == "monthly":
        return _month_end(d)
    return _month_end(date(d.year, ((d.month - 1) // 3 + 1) * 3, 1))


def periods(rule: ReturnsRule, upto: date) -> list[tuple[date, date]]:
    """(first day, last day) of every period from the one ending `expected_from` that ends by `upto`."""
    out = []
    end = period_end_of(rule.expected_from, rule.frequency)
    while end <= upto:
        start = end.replace(day=1) if rule.frequency == "monthly" else date(end.year, end.month - 2, 1)
        out.append((start, end))
        end = period_end_of(end + timedelta(days=1), rule.frequency)
    return out


def judge(rule: ReturnsRule, returns: list[tuple[date, int]], as_of: date) -> list[dict]:
    """The period rows for one partnership, from its (return date, file id) pairs (see module doc)."""
    rows = []
    dated = sorted((d, fid) for d, fid in returns if d is not None and d <= as_of)
    for start, end in periods(rule, as_of):
        next_end = period_end_of(end + timedelta(days=1), rule.frequency)
        due = end + timedelta(days=rule.due_days_after_period_end)
        first = next(((d, fid) for d, fid in dated if end <= d < next_end), None)
        if first is not None:
            status = ON_TIME if first[0] <= due else LATE
        elif as_of > due:
            status = MISSING
        else:
            continue
        rows.append({"period_start": start, "period_end": end, "due_date": due, "status": status,
                     "received_date": first[0] if first else None, "file_id": first[1] if first else None})
    return rows


def check_returns(
    engine: Engine, cfg: Config, as_of: date, out_dir: Path, clock: Callable[[], datetime] = audit_now,
) -> dict:
    """Replace the `return_expectations` rows for `as_of`, write up new flags; return counts only."""
    rule = cfg.returns
    if rule is None:
        return {"checked": False}
    rf, rx = wh.return_files.c, wh.return_expectations
    codes = list(cfg.partnerships)
    with engine.connect() as conn:
        files = conn.execute(
            select(rf.partnership_code, rf.return_date, rf.file_id)
            .where(rf.partnership_code.in_(codes), rf.status != "failed", rf.return_date.is_not(None))
        ).all()
    by_code: dict[str, list[tuple[date, int]]] = {code: [] for code in codes}
    for code, d, fid in files:
        by_code[code].append((d, fid))
    rows = [{"partnership_code": code, "as_of_date": as_of, **r}
            for code in codes for r in judge(rule, by_code[code], as_of)]
    now = clock()
    notices = []
    with engine.begin() as conn:
        conn.execute(rx.delete().where(rx.c.as_of_date == as_of, rx.c.partnership_code.in_(codes)))
        if rows:
            conn.execute(insert(rx), rows)
        for r in rows:
            if r["status"] in FLAGS:
                stored = _notice(conn, cfg, r, rule, Path(out_dir), now)
                if stored.new:
                    notices.append(stored.bulletin_id)
    counts = Counter(r["status"] for r in rows)
    return {"checked": True, "as_of": as_of.isoformat(), **{s: counts.get(s, 0) for s in (ON_TIME, LATE, MISSING)},
            "new_notices": notices}


def _notice(conn, cfg: Config, row: dict, rule: ReturnsRule, out_dir: Path, now: datetime):
    p = cfg.partnership(row["partnership_code"])
    period = "month" if rule.frequency == "monthly" else "quarter"
    end = row["period_end"]
    if row["status"] == MISSING:
        subject = f"Return missing: {p.name}, {period} ending {end:%d %B %Y}"
        lines = [f"No return from {p.name} for the {period} {row['period_start']:%d %B %Y} to {end:%d %B %Y} "
                 f"had been received by its due date, {row['due_date']:%d %B %Y}."]
    else:
        days = (row["received_date"] - row["due_date"]).days
        subject = f"Return late: {p.name}, {period} ending {end:%d %B %Y}"
        lines = [f"The return from {p.name} for the {period} {row['period_start']:%d %B %Y} to {end:%d %B %Y} "
                 f"was due on {row['due_date']:%d %B %Y} and is dated {row['received_date']:%d %B %Y}: "
                 f"{days} day{'s' if days != 1 else ''} late."]
    lines.append(f"Returns are due {rule.due_days_after_period_end} days after the end of each {period} "
                 "(config: returns). This notice is sent once; the table return_expectations has the "
                 "state as of each run.")
    context = {"subject": subject, "lines": lines, "contact": ", ".join(p.data_contact) or "none configured"}
    html = templates().get_template("return_notice.html.j2").render(context)
    text = templates().get_template("return_notice.txt.j2").render(context)
    return store_feedback(conn, kind=RETURNS, code=p.code, period_start=end, period_end=end, subject=subject,
                          html=html, text=text, folder=out_dir / p.code, stem=f"{end.isoformat()}_{row['status']}",
                          now=now, unless_subject_exists=True)
