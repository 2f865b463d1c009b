"""Task bodies: fetch settings from Airflow, call the business logic in `reviews`, return counts.

DAG files stay thin by calling these. Everything heavy is imported inside the functions so that
parsing a DAG file imports neither pandas nor Great Expectations. Return values go to XCom: they
hold counts and ids only, never case data. Settings are fetched first, through `settings`: one
that is missing or wrong raises settings.ConfigurationError, which fails the task without retries.
"""
from __future__ import annotations

import logging

from reviews_airflow import settings

log = logging.getLogger(__name__)


def run_dates(context) -> dict:
    """The as-of date and period of a run, from its data interval.

    An asset-triggered run has no interval: it is about the date the triggering runs were about
    (their asset events carry `as_of`), or failing that the day it was asked to run.
    """
    from reviews.core.run_dates import as_of_date, period_bounds

    start, end, logical = context.get("data_interval_start"), context.get("data_interval_end"), context.get("logical_date")
    if start is None and end is None and logical is None:
        logical = _triggering_as_of(context) or getattr(context.get("dag_run"), "run_after", None)
    first, last = period_bounds(start, end, logical)
    return {"as_of": as_of_date(start, end, logical), "period_start": first, "period_end": last}


def _triggering_as_of(context):
    """The latest `as_of` named by the asset events that triggered this run, as a datetime."""
    from datetime import datetime, time

    from reviews.core.run_dates import LONDON

    days = []
    for events in (context.get("triggering_asset_events") or {}).values():
        for event in events:
            extra = getattr(event, "extra", None) or {}
            if extra.get("as_of"):
                days.append(extra["as_of"])
    if not days:
        return None
    return datetime.combine(datetime.fromisoformat(max(days)).date(), time(12), tzinfo=LONDON)


def publish_cases(context) -> dict:
    """Say, on the cases asset event, which date this load was about (timeliness judges as of it)."""
    from reviews_airflow.assets import CASES

    as_of = run_dates(context)["as_of"].isoformat()
    context["outlet_events"][CASES].extra = {"as_of": as_of}
    return {"as_of": as_of}


def partnership_codes() -> list[str]:
    return list(settings.config().partnerships)


def ingest(partnership: str, context) -> dict:
    """One partnership: gather from its source, load, write Data Docs, build its quality reports."""
    from reviews.returns.quality_reports import build_quality_reports
    from reviews.returns.ingest import ingest_partnership
    from reviews.returns.sources import gather

    cfg = settings.config()
    key = settings.pseudonymisation_key()  # first: a missing key fails the task at once, before any fetch
    p = cfg.partnership(partnership)
    as_of = run_dates(context)["as_of"]
    data = settings.data_dir()
    engine = settings.warehouse_engine()
    with settings.source_access(p) as access:
        got = gather(p, settings.inbox(), settings.staging_dir(), as_of, max_bytes=cfg.limits.max_file_bytes, **access)
    log.info("%s: source %s (%s), %d file(s) fetched this run", partnership, got.kind, got.folder, len(got.fetched))
    for note in got.notes:
        log.warning("%s: %s", partnership, note)
    summary = ingest_partnership(
        engine, cfg, partnership, settings.inbox(), data / "raw", key, as_of,
        folder=got.folder, docs_dir=data / "reports" / "data_docs" / partnership,
    )
    log.info(
        "%s as of %s: %d new file(s) (%d failed), %d rows read, %d loaded (%d of them flagged), %d quarantined, "
        "%d earlier quarantined row(s) corrected; already loaded: %d",
        partnership, as_of, summary.files_new, summary.files_failed, summary.rows_read, summary.rows_loaded,
        summary.rows_flagged, summary.rows_quarantined, summary.rows_resolved, summary.files_skipped_already_loaded,
    )
    for rule, n in sorted(summary.rule_counts.items()):
        log.info("%s: %d row(s) failed %s", partnership, n, rule)
    for page in summary.data_docs:
        log.info("%s: Great Expectations Data Docs: %s", partnership, page)
    reports = build_quality_reports(engine, cfg, partnership, data / "reports" / "quality", as_of)
    for r in reports:
        log.info("%s: data quality report for the return of %s (bulletin %d): %s",
                 partnership, r["return_date"], r["bulletin_id"], r["path"])
    out = summary.to_dict()
    out["quality_reports"] = [r["bulletin_id"] for r in reports]
    return out


def report_returns(summaries: list[dict]) -> dict:
    totals = {k: sum(s[k] for s in summaries)
              for k in ("files_new", "files_failed", "rows_read", "rows_loaded", "rows_quarantined", "rows_resolved")}
    log.info("all partnerships: %s", totals)
    from reviews.returns.sources import unknown_inbox_entries

    unknown_inbox_entries(settings.inbox(), settings.config().partnerships)  # logged once a run, each by name
    return totals


def check_returns_due(context) -> dict:
    """Late, missing and failed (received, not loaded) returns as of the run's as-of date (table
    return_expectations + notices)."""
    from reviews.returns.returns_due import check_returns, source_folder

    as_of = run_dates(context)["as_of"]
    cfg = settings.config()
    inbox, staging = settings.inbox(), settings.staging_dir()
    # Files in a partnership's folder that no load recorded (its ingest failed first) arrived:
    # they are "received but not loaded", not missing.
    folders = {code: source_folder(p, inbox, staging) for code, p in cfg.partnerships.items()}
    result = check_returns(settings.warehouse_engine(), cfg, as_of,
                           settings.data_dir() / "reports" / "returns", folders=folders)
    log.info("returns as of %s: %s", as_of, result)
    return result


def send_feedback() -> dict:
    """Send the new quality reports and late/missing notices, exactly once (circulation ledger).

    As for bulletins (send_queued): transient failures are retried with backoff within the call,
    and anything this run left undone fails the task, so Airflow retries (sending only what is
    still pending) and the run shows it; what was sent stays sent.
    """
    import os

    from reviews.circulation.feedback_sends import send_feedback as send

    backoff = float(os.environ.get("REVIEWS_SEND_BACKOFF_SECONDS", "2"))  # tests set 0
    result = send(settings.warehouse_engine(), settings.config(), settings.transport(),
                  max_attempts=MAX_SEND_ATTEMPTS, attempts_per_call=SEND_ATTEMPTS_PER_CALL, backoff_seconds=backoff)
    log.info("feedback sent: %s", result)
    if result["pending"] or result["unconfirmed"] or result["new_failures"] or result["stopped"]:
        raise RuntimeError(f"feedback not all sent: {result['sent']} sent, {result['pending']} pending, "
                           f"{result['new_failures']} failed, {result['unconfirmed']} unconfirmed (ledger circulation_log)")
    return result


def judge_timeliness(context, as_of=None) -> dict:
    from reviews.timeliness.run import run_timeliness

    as_of = as_of or run_dates(context)["as_of"]
    counts = run_timeliness(settings.warehouse_engine(), settings.config(), as_of)
    for stage, by_status in sorted(counts.items()):
        log.info("timeliness as of %s, %s: %s", as_of, stage, dict(sorted(by_status.items())))
    return {"as_of": as_of.isoformat(), "counts": counts}


def build_case_journeys(context) -> dict:
    """Every case's journey as of the run's as-of date (table case_journeys, that day's rows
    replaced) and the business unit's dated XLSX tracker under the data folder (internal, never
    circulated). Counts, the findings by kind and the workbook's path go to XCom; no case data."""
    from reviews.journeys.store import run_journeys
    from reviews.journeys.workbook import write_tracker

    as_of = run_dates(context)["as_of"]
    cfg = settings.config()
    journeys, summary = run_journeys(settings.warehouse_engine(), cfg, as_of)
    path = write_tracker(journeys, cfg, as_of, settings.data_dir() / "tracker")
    log.info("case journeys as of %s: %s", as_of, summary)
    log.info("case tracker workbook (business unit only, never circulated): %s", path)
    return {"as_of": as_of.isoformat(), **summary, "xlsx": str(path)}


def alerts_wanted(context) -> tuple[bool, str | None]:
    """(send?, why not) for this run's timeliness alerts.

    `send_alerts` given in the run's conf decides (e.g. `airflow backfill create ... --dag-run-conf
    '{"send_alerts": true}'`); otherwise backfill runs do not send (they are about the past) and
    other runs follow the DAG param (default true).
    """
    dag_run = context.get("dag_run")
    conf = getattr(dag_run, "conf", None) or {}
    if "send_alerts" in conf:
        asked = conf["send_alerts"] in (True, "true", "True", "yes", 1)
        return asked, None if asked else "send_alerts is false in the run's conf"
    run_type = getattr(dag_run, "run_type", None)
    if str(getattr(run_type, "value", run_type) or "").lower() == "backfill":
        return False, "backfill run (alerts are about the present; pass send_alerts=true in the conf to send)"
    if not (context.get("params") or {}).get("send_alerts", True):
        return False, "send_alerts param is false"
    return True, None


def send_timeliness_alerts(context) -> dict:
    """Email the business unit the cases that became at risk or overdue, once each (counts to XCom)."""
    from reviews.timeliness.alerts import run_alerts

    as_of = run_dates(context)["as_of"]
    send, why = alerts_wanted(context)
    from reviews_airflow.notifier import status_page_url

    report = run_alerts(settings.warehouse_engine(), settings.config(), settings.transport() if send else None,
                        as_of, send=send, skip_reason=why,
                        status_url=status_page_url())
    log.info("timeliness alerts %s", report.summary())
    for problem in report.problems:
        log.warning("timeliness alerts: %s", problem)
    if report.failed:  # certainly not delivered: fail so Airflow retries (and the business unit hears)
        raise RuntimeError(f"timeliness alert email not sent: {report.failed} alert(s) left to retry")
    return _plain(report)


def remind_actions(context) -> dict:
    """The action register per partnership as of the run's date (internal XLSX under the data folder,
    its path logged), then the learning contacts' reminders and overdue notices, once each (ledger
    action_reminders). Backfill runs write the registers but send nothing, as timeliness alerts."""
    from reviews.learning.actions import run_actions

    as_of = run_dates(context)["as_of"]
    send, why = alerts_wanted(context)
    report = run_actions(settings.warehouse_engine(), settings.config(), settings.data_dir(),
                         settings.transport() if send else None, as_of, send=send, skip_reason=why)
    for code, reg in report.registers.items():
        log.info("action register %s as of %s: %d action(s), %d overdue, %d due soon: %s (%s)", code, as_of,
                 reg["actions"], reg["overdue"], reg["due_soon"], reg["path"], "written" if reg["written"] else "unchanged")
    log.info("action reminders %s", report.summary())
    for problem in report.problems:
        log.warning("action reminders: %s", problem)
    if report.failed:  # certainly not delivered: fail so Airflow retries (and the business unit hears)
        raise RuntimeError(f"action reminder email not sent: {report.failed} reminder(s) left to retry")
    return report.to_xcom()


def _own_period(context):
    """The period of a timetable, manual or backfill run's data interval (None for an asset-triggered
    run, or a monthly interval under a quarterly setting that does not close a quarter)."""
    from reviews.core.reporting_periods import period_for_run

    if _triggering_events(context):
        return None
    if context.get("data_interval_start") is None and context.get("logical_date") is None:
        return None  # an asset-triggered run (Airflow 3 gives it no logical date)
    return period_for_run(context.get("data_interval_start"), context.get("data_interval_end"),
                          context.get("logical_date"), settings.config().summary.period)


def _triggering_events(context) -> list:
    return [e for evs in (context.get("triggering_asset_events") or {}).values() for e in evs]


def plan_builds(context) -> dict:
    """The periods this summary run builds: its own period and every period still waiting for
    returns, or built without someone's data, whose returns are now in or waited for long enough
    (learning.readiness). Periods that must wait are recorded and logged, in words; none ready skips."""
    from airflow.sdk.exceptions import AirflowSkipException

    from reviews.learning.readiness import WAITING, data_as_of, period_readiness, periods_to_recheck, record, stored_status

    cfg, engine = settings.config(), settings.warehouse_engine()
    as_of = data_as_of(engine, run_dates(context)["as_of"])
    own = _own_period(context)
    candidates = set(periods_to_recheck(engine))
    if own is not None:
        candidates.add((own.start, own.end))
    ready, waiting = [], []
    for start, end in sorted(candidates):
        r = period_readiness(engine, cfg, start, end, as_of)
        stored = stored_status(engine, start, end)
        if not r.ready:
            record(engine, r, WAITING)
            waiting.append(r.describe())
            log.info("not built yet: %s", r.describe())
        elif own is not None and (start, end) == (own.start, own.end) or stored is None \
                or stored["status"] == WAITING or stored["data_status"] != r.data_status():
            ready.append({"period_start": start.isoformat(), "period_end": end.isoformat(), "label": r.label})
            log.info("to build: %s", r.describe())
    if not ready:
        raise AirflowSkipException("no period to build now" + ("; " + "; ".join(waiting) if waiting else ""))
    return {"as_of": as_of.isoformat(), "periods": ready}


def build_bulletins(plan: dict, context) -> dict:
    """Every audience's bulletin (HTML, text, PDF, XLSX), briefings and redaction list, per planned period.

    Timeliness is judged as of each period's last day first, so a bulletin never depends on which
    daily runs happened. A new version built (not by a backfill) after its period's send day asks
    bulletin_circulation for a sign-off (late builds and updates after late data)."""
    from datetime import date, timedelta

    from reviews.core.reporting_periods import period_of, send_day
    from reviews.learning.publication import build_period
    from reviews.learning.readiness import BUILT, period_readiness, record

    from reviews_airflow.assets import BULLETINS

    cfg, engine = settings.config(), settings.warehouse_engine()
    as_of = date.fromisoformat(plan["as_of"])
    backfill = _is_backfill(context)
    built = []
    for item in plan["periods"]:
        start, end = date.fromisoformat(item["period_start"]), date.fromisoformat(item["period_end"])
        judge_timeliness(None, as_of=end)
        r = period_readiness(engine, cfg, start, end, as_of)
        report = build_period(engine, cfg, start, end, end, settings.data_dir() / "bulletins", readiness=r)
        for b in report.built:
            log.info("bulletin %s for %s: version %s (%s)", b["bulletin_id"], b["audience"], b["version"],
                     "new" if b["new"] else "unchanged")
        log.info("%s: %d 7-minute briefing(s), %d PDF(s) printed, %d redaction(s) (internal list in %s/internal)",
                 r.label, report.briefings, report.pdfs_printed, report.redactions, report.folder)
        for line in r.notices():
            log.info("%s: %s", r.label, line)
        sch = cfg.circulation.schedule
        due = send_day(period_of(start, end), sch.weekday, sch.not_before_working_day)
        new = any(b["new"] for b in report.built)
        wanted = (new and not backfill and due <= as_of
                  and as_of - due <= timedelta(days=cfg.circulation.late_send_window_days))
        if new and backfill:
            log.info("%s: a backfill builds but asks for no sign-off and sends nothing", r.label)
        elif wanted:
            log.info("%s: built after its send day (%s): bulletin_circulation asks the business unit to sign it off",
                     r.label, due)
        record(engine, r, BUILT, signoff_wanted=True if wanted else None)
        built.append({"period_start": start.isoformat(), "period_end": end.isoformat(), **report.to_xcom(),
                      "signoff_wanted": wanted})
    context["outlet_events"][BULLETINS].extra = {
        "periods": [[b["period_start"], b["period_end"]] for b in built], "backfill": backfill,
    }
    return {"periods": built}


def write_analyst_extract(built: dict) -> dict:
    """The analysts' internal extract (reporting views, pseudonymised, unsuppressed) per period built,
    `{data_dir}/analyst/analyst_extract_{period_end}.xlsx`. Never circulated; logs its path and row counts only."""
    from datetime import date

    from reviews.learning.analyst_extract import write_extract

    engine = settings.warehouse_engine()
    extracts = []
    for item in built["periods"]:
        report = write_extract(engine, settings.data_dir(), date.fromisoformat(item["period_end"]))
        log.info("analyst extract %s (%s): %s", report.path, "written" if report.written else "unchanged",
                 ", ".join(f"{name} {n} rows" for name, n in report.rows.items()))
        extracts.append(report.to_xcom())
    return {"extracts": extracts}


def _is_backfill(context) -> bool:
    run_type = getattr(context.get("dag_run"), "run_type", None)
    return str(getattr(run_type, "value", run_type)) == "backfill"


def plan_signoff(context) -> dict:
    """What this circulation run asks the business unit to sign off (bulletin_signoffs), or skip.

    - The `period_end` run parameter: that period (an analyst's manual send).
    - A run of the circulation timetable, or a manual one: the period of its data interval. If its
      bulletins are not built, the run fails and says what the period waits for.
    - Any period whose new version was built after its send day (a late build, or an update after
      late data: bulletin_periods.signoff_wanted), whatever woke this run.
    - A backfill of this DAG asks nothing and sends nothing (unless `send_in_backfill`).
    Only versions not yet sent, approved or already asked about are asked about (`resend_bulletin_ids`
    are asked about again). Never every period: someone newly added to a list is not sent the archive.
    """
    from datetime import date

    from airflow.sdk.exceptions import AirflowSkipException

    from reviews.circulation.signoff import build_request, newest_bulletins, record_request, to_sign_off

    from reviews.core.reporting_periods import period_containing
    from reviews.learning.readiness import data_as_of, period_readiness, take_signoff_wanted

    params = context.get("params") or {}
    if _is_backfill(context) and not params.get("send_in_backfill"):
        raise AirflowSkipException("a backfill of bulletin_circulation asks for no sign-off and sends nothing "
                                   "(run parameter send_in_backfill is false)")
    cfg, engine = settings.config(), settings.warehouse_engine()
    periods = set()
    if params.get("period_end"):
        p = period_containing(date.fromisoformat(str(params["period_end"])), cfg.summary.period)
        periods.add((p.start, p.end))
    else:
        own = _own_period(context)
        if own is not None:
            if not newest_bulletins(engine, cfg, own.start, own.end):
                r = period_readiness(engine, cfg, own.start, own.end, data_as_of(engine, run_dates(context)["as_of"]))
                raise RuntimeError(f"no bulletins are built for {own.label}: {r.describe()}. They are put to "
                                   "sign-off as soon as regional_learning_summary builds them.")
            periods.add((own.start, own.end))
    periods |= set(take_signoff_wanted(engine))
    resend = [int(i) for i in params.get("resend_bulletin_ids") or []]
    if resend:
        from sqlalchemy import select

        from reviews.core import warehouse as wh

        with engine.connect() as conn:
            periods |= {(a, b) for a, b in conn.execute(select(wh.bulletins.c.period_start, wh.bulletins.c.period_end)
                                                          .where(wh.bulletins.c.bulletin_id.in_(resend)))}
    wanted = to_sign_off(engine, cfg, periods, resend)
    if not wanted:
        unsent = _unsent(engine)
        log.info("nothing waits for sign-off (%s); %d approved send(s) still to go",
                 ", ".join(f"{a}..{b}" for a, b in sorted(periods)) + " already approved, asked about or sent"
                 if periods else "no period is due", unsent)
        return {"request": None, "unsent": unsent}
    request = build_request(engine, cfg, wanted)
    dag_run = context["dag_run"]
    record_request(engine, request, wanted, dag_run.dag_id, dag_run.run_id)
    log.info("asked the business unit to sign off %d bulletin(s) for %s", len(request.bulletin_ids),
             ", ".join(f"{a}..{b}" for a, b in request.periods))
    return {"request": request.to_xcom(), "unsent": _unsent(engine)}


def build_yearly_report(context) -> dict:
    """The yearly report of the financial year ended by the run's date (learning.yearly): every
    audience's HTML, text, PDF and XLSX, stored in `bulletins` (audiences yearly:*)."""
    from reviews.learning.yearly import build_yearly, financial_year_ended_by

    year = financial_year_ended_by(run_dates(context)["as_of"])
    report = build_yearly(settings.warehouse_engine(), settings.config(), year, settings.data_dir() / "yearly")
    for b in report.built:
        log.info("yearly report %s for %s: bulletin %s, version %s (%s)", report.year, b["audience"],
                 b["bulletin_id"], b["version"], "new" if b["new"] else "unchanged")
    log.info("yearly report %s: %d PDF(s) printed; files in %s (internal/summary.json is for the business unit only)",
             report.year, report.pdfs_printed, report.folder)
    return {"year_start": year.start.isoformat(), "year_end": year.end.isoformat(), **report.to_xcom()}


def plan_yearly_signoff(built: dict, context) -> dict:
    """What the yearly_report run asks the business unit to sign off: the year's newest versions not
    yet approved, asked about or sent (so a rerun asks nothing and sends nothing twice). A backfill
    asks nothing unless its `send_in_backfill` is true."""
    from datetime import date

    from airflow.sdk.exceptions import AirflowSkipException

    from reviews.circulation.signoff import build_yearly_request, record_request, to_sign_off, yearly_audiences

    params = context.get("params") or {}
    if _is_backfill(context) and not params.get("send_in_backfill"):
        raise AirflowSkipException("a backfill of yearly_report builds the report but asks for no sign-off and "
                                   "sends nothing (run parameter send_in_backfill is false)")
    cfg, engine = settings.config(), settings.warehouse_engine()
    year = (date.fromisoformat(built["year_start"]), date.fromisoformat(built["year_end"]))
    wanted = to_sign_off(engine, cfg, [year], audiences=yearly_audiences(cfg))
    if not wanted:
        unsent = _unsent(engine)
        log.info("the yearly report %s was already approved, asked about or sent; %d approved send(s) still to go",
                 built["year"], unsent)
        return {"request": None, "unsent": unsent}
    request = build_yearly_request(cfg, wanted)
    dag_run = context["dag_run"]
    record_request(engine, request, wanted, dag_run.dag_id, dag_run.run_id)
    log.info("asked the business unit to sign off the yearly report %s: bulletin(s) %s", built["year"],
             list(request.bulletin_ids))
    return {"request": request.to_xcom(), "unsent": _unsent(engine)}


def _unsent(engine) -> int:
    """Sends approved earlier and not yet done (pending or failed rows of the ledger): a rerun sends them."""
    from sqlalchemy import func, select

    from reviews.circulation.bulletin_sends import FAILED, PENDING
    from reviews.core.warehouse import circulation_log as c

    with engine.connect() as conn:
        return conn.execute(select(func.count()).where(c.c.status.in_((PENDING, FAILED)))).scalar_one()


def ask_or_send(plan: dict) -> list[str]:
    """The branch after plan_signoff: ask for sign-off, or send what was approved before, or nothing."""
    if plan.get("request"):
        return ["sign_off", "remind_signoff"]
    if plan.get("unsent"):
        return ["resume_sends"]
    return []


def record_signoff(context) -> dict:
    """Keep the business unit's answer (bulletin_signoffs); a rejection skips the sends."""
    from airflow.sdk.exceptions import AirflowSkipException

    from reviews.circulation.signoff import APPROVE, approved_ids, record_decision

    answer = context["ti"].xcom_pull(task_ids="sign_off") or {}
    chosen = list(answer.get("chosen_options") or [])
    by = answer.get("responded_by_user") or {}
    who = (by.get("name") or by.get("id") or "unknown") if isinstance(by, dict) else str(by)
    reason = str((answer.get("params_input") or {}).get("reason") or "").strip()
    dag_run = context["dag_run"]
    engine = settings.warehouse_engine()
    approved = APPROVE in chosen
    decided = record_decision(engine, dag_run.dag_id, dag_run.run_id, approved, who, reason)
    if not approved:
        log.info("rejected by %s (%d request(s)): %s; nothing is sent", who, decided, reason or "no reason given")
        raise AirflowSkipException(f"rejected by {who}: {reason or 'no reason given'}; nothing is sent")
    ids = sorted(approved_ids(engine, dag_run.dag_id, dag_run.run_id))
    log.info("approved by %s: bulletin(s) %s", who, ids)
    return {"approved": True, "by": who, "bulletin_ids": ids}


def remind_signoff(context) -> str:
    """'waiting' until the request is answered or reminded about; the reminder is sent once."""
    from airflow.sdk.timezone import utcnow

    from reviews.circulation.signoff import remind_if_due

    dag_run = context["dag_run"]
    state = remind_if_due(settings.warehouse_engine(), settings.config(), settings.transport(), dag_run.dag_id,
                          dag_run.run_id, utcnow(), settings.airflow_base_url())
    if state == "reminded":
        log.info("the sign-off request has waited %s hours: the business unit was reminded (once)",
                 settings.config().circulation.signoff_reminder_hours)
    return state


def queue_sends(context) -> dict:
    """Queue exactly the versions this run's sign-off approved (nothing else, ever)."""
    from reviews.circulation.bulletin_sends import queue_bulletin_sends
    from reviews.circulation.signoff import approved_ids

    engine = settings.warehouse_engine()
    dag_run = context["dag_run"]
    ids = approved_ids(engine, dag_run.dag_id, dag_run.run_id)
    # Approving a version is the decision to send it, to everyone on its list: an update after late
    # data goes again to those who had the earlier version, as a named correction would.
    report = queue_bulletin_sends(engine, settings.config(), resend_bulletin_ids=ids, approved_ids=ids)
    log.info("circulation queued: %s", report.summary())
    for problem in report.problems:
        log.warning("circulation: %s", problem)
    return _plain(report)


# A server outage is felt by the row that meets it first: two tries per task try, three task
# tries per run (retries=2), so one failed run uses 6 attempts and a rerun after the outage still
# has some left. A row is given up (and reported) only after 10.
MAX_SEND_ATTEMPTS = 10
SEND_ATTEMPTS_PER_CALL = 2


def send_queued(context=None) -> dict:
    """Send every pending row: the PDF to everyone, the XLSX to the business unit as well.

    Fails the task when this run left anything undone (see below); what was sent stays sent.
    A backfill run sends nothing unless its `send_in_backfill` parameter is true (bulletin_circulation,
    yearly_report).
    """
    import os

    from reviews.circulation.bulletin_sends import send_pending
    from reviews.learning.publication import attachments_for_factory

    if context is not None and _is_backfill(context) and not (context.get("params") or {}).get("send_in_backfill"):
        log.info("a backfill of %s sends nothing (run parameter send_in_backfill is false)",
                 getattr(context.get("dag_run"), "dag_id", "this DAG"))
        return {"sent": 0, "backfill": True}

    cfg = settings.config()
    backoff = float(os.environ.get("REVIEWS_SEND_BACKOFF_SECONDS", "2"))  # tests set 0
    report = send_pending(settings.warehouse_engine(), cfg, settings.transport(),
                          attachments_for=attachments_for_factory(cfg), backoff_seconds=backoff,
                          max_attempts=MAX_SEND_ATTEMPTS, attempts_per_call=SEND_ATTEMPTS_PER_CALL)
    log.info("circulation sent: %s", report.summary())
    for line in report.failures + report.unconfirmed:
        log.warning("circulation: %s", line)
    # Rows given up on in an earlier run were reported then; anything else left undone fails
    # the task, so Airflow retries (a retry sends only what is still pending) and the business
    # unit is told. Rows left 'sending' (delivery unknown) wait for an analyst.
    new_failures = [f for f in report.failures if "gave up after" not in f]
    if report.stopped or report.pending or report.unconfirmed or new_failures:
        raise RuntimeError(f"circulation incomplete: {report.summary()}")
    return _plain(report)


def _plain(report) -> dict:
    """A dataclass report as a small dict of counts for XCom (no addresses, no content)."""
    from dataclasses import asdict, is_dataclass

    data = asdict(report) if is_dataclass(report) else dict(report)
    return {k: v for k, v in data.items() if isinstance(v, (int, float, str, bool))}


def apply_retention(context) -> list[dict]:
    from reviews.admin.retention import apply_retention as apply

    as_of = run_dates(context)["as_of"]
    done = apply(settings.warehouse_engine(), settings.config(), as_of)
    for row in done:
        if row["records"] or row["held"]:
            log.info("retention %s: %s %s %s record(s), %s kept under legal hold", as_of, row["partnership_code"],
                     row["action"], row["records"], row["held"])
    return done
