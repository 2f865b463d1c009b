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
        "%s as of %s: %d new file(s) (%d failed), %d rows read, %d loaded, %d quarantined, %d earlier "
        "quarantined row(s) corrected; already loaded: %d",
        partnership, as_of, summary.files_new, summary.files_failed, summary.rows_read, summary.rows_loaded,
        summary.rows_quarantined, summary.rows_resolved, summary.files_skipped_already_loaded,
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
    report = run_alerts(settings.warehouse_engine(), settings.config(), settings.transport() if send else None,
                        as_of, send=send, skip_reason=why)
    log.info("timeliness alerts %s", report.summary())
    for problem in report.problems:
        log.warning("timeliness alerts: %s", problem)
    if report.failed:  # certainly not delivered: fail so Airflow retries (and the business unit hears)
        raise RuntimeError(f"timeliness alert email not sent: {report.failed} alert(s) left to retry")
    return _plain(report)


def summary_period(context) -> dict:
    """The period this summary run builds (month or quarter, from config), or skip the run.

    Under a quarterly setting with a monthly data interval (an old run, or a manual trigger of
    such an interval) only the month that closes a quarter builds anything.
    """
    from airflow.sdk.exceptions import AirflowSkipException

    from reviews.core.reporting_periods import period_for_run

    kind = settings.config().summary.period
    p = period_for_run(context.get("data_interval_start"), context.get("data_interval_end"),
                       context.get("logical_date"), kind)
    if p is None:
        raise AirflowSkipException(f"bulletins are {kind}ly and this run's interval does not close a {kind}")
    log.info("building the %s bulletins for %s (%s to %s)", kind, p.label, p.start, p.end)
    return {"period_start": p.start.isoformat(), "period_end": p.end.isoformat(), "label": p.label}


def build_bulletins(period: dict, context) -> dict:
    """Every audience's bulletin for the period (HTML, text, PDF, XLSX), briefings, redaction list."""
    from datetime import date

    from reviews.learning.publication import build_period

    from reviews_airflow.assets import BULLETINS

    start, end = date.fromisoformat(period["period_start"]), date.fromisoformat(period["period_end"])
    report = build_period(settings.warehouse_engine(), settings.config(), start, end, end,
                          settings.data_dir() / "bulletins")
    for b in report.built:
        log.info("bulletin %s for %s: version %s (%s)", b["bulletin_id"], b["audience"], b["version"],
                 "new" if b["new"] else "unchanged")
    log.info("%d 7-minute briefing(s), %d PDF(s) printed, %d redaction(s) (internal list in %s/internal)",
             report.briefings, report.pdfs_printed, report.redactions, report.folder)
    circulate = not _is_backfill(context) or bool((context.get("params") or {}).get("circulate_backfill"))
    if not circulate:
        log.info("a backfill rebuilds bulletins but sends nothing (run parameter circulate_backfill is false)")
    context["outlet_events"][BULLETINS].extra = {
        "period_start": start.isoformat(), "period_end": end.isoformat(), "circulate": circulate,
    }
    return {"period_start": start.isoformat(), "period_end": end.isoformat(), **report.to_xcom()}


def _is_backfill(context) -> bool:
    run_type = getattr(context.get("dag_run"), "run_type", None)
    return str(getattr(run_type, "value", run_type)) == "backfill"


def periods_to_send(context, engine) -> list[tuple]:
    """The periods whose bulletins this run circulates.

    - The `period_end` run parameter: that period (an analyst's manual send).
    - A run of the circulation timetable, or a manual one: the period of its data interval. If
      its bulletins are not built, the run fails (the business unit is told); they go out by
      themselves when built (below), or clear the task.
    - A run triggered by the bulletins asset (a build): each period its events name whose send
      day has come, as of the run's own start (`run_after`), and is at most
      `circulation.late_send_window_days` behind: a late build goes out as soon as it is built,
      an on-time build waits for its day (nothing to do now), and a backfill of an old period is
      not circulated (use `period_end` for that).
    Never every period: someone newly added to a list should not be sent the whole archive.
    """
    from datetime import date, timedelta

    import pendulum
    from sqlalchemy import select

    from reviews.core.reporting_periods import period_containing, period_for_run, period_of
    from reviews.core.warehouse import bulletins

    from reviews_airflow.timetables import circulation_timetable

    cfg = settings.config()
    kind = cfg.summary.period
    periods = set()
    asked = (context.get("params") or {}).get("period_end")
    events = [e for evs in (context.get("triggering_asset_events") or {}).values() for e in evs]
    if asked:
        p = period_containing(date.fromisoformat(str(asked)), kind)
        periods.add((p.start, p.end))
    elif events:
        dag_run = context.get("dag_run")
        started = pendulum.instance(getattr(dag_run, "run_after", None) or pendulum.now("UTC"))
        timetable = circulation_timetable()
        for event in events:
            extra = getattr(event, "extra", None) or {}
            if "period_start" not in extra or "period_end" not in extra:
                continue
            if extra.get("circulate") is False:
                log.info("%s to %s was rebuilt by a backfill: not circulated (circulate_backfill was false)",
                         extra["period_start"], extra["period_end"])
                continue
            p = period_of(date.fromisoformat(extra["period_start"]), date.fromisoformat(extra["period_end"]))
            due = timetable.run_after(p)
            if due > started:
                log.info("%s was built before its send day (%s): the timetable sends it then", p.label, due)
            elif started - due > timedelta(days=cfg.circulation.late_send_window_days):
                log.info("%s was rebuilt %s after its send day: not circulated by itself (use period_end)",
                         p.label, started - due)
            else:
                periods.add((p.start, p.end))
        return sorted(periods)
    else:
        p = period_for_run(context.get("data_interval_start"), context.get("data_interval_end"),
                           context.get("logical_date"), kind)
        if p is not None:
            periods.add((p.start, p.end))
    is_bulletin = ~bulletins.c.audience.contains(":")  # not feedback ('quality:…', 'returns:…')
    with engine.connect() as conn:
        built = {(r[0], r[1]) for r in conn.execute(
            select(bulletins.c.period_start, bulletins.c.period_end).where(is_bulletin).distinct())}
    missing = sorted(p for p in periods if p not in built)
    if missing:
        raise RuntimeError(
            "no bulletins are built for " + ", ".join(f"{a} to {b}" for a, b in missing)
            + ": they will be sent as soon as regional_learning_summary builds them (or clear this task after)"
        )
    return sorted(periods)


def queue_sends(context) -> dict:
    from reviews.circulation.bulletin_sends import queue_bulletin_sends

    engine = settings.warehouse_engine()
    if _is_backfill(context) and not (context.get("params") or {}).get("send_in_backfill"):
        log.info("a backfill of bulletin_circulation sends nothing (run parameter send_in_backfill is false)")
        return {"queued": 0, "backfill": True}
    periods = periods_to_send(context, engine)
    log.info("circulating bulletins for period(s): %s", [f"{a}..{b}" for a, b in periods])
    resend_ids = context["params"].get("resend_bulletin_ids") or []
    report = queue_bulletin_sends(
        engine, settings.config(), resend_bulletin_ids={int(i) for i in resend_ids}, periods=periods
    )
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
    A backfill run sends nothing unless its `send_in_backfill` parameter is true.
    """
    import os

    from reviews.circulation.bulletin_sends import send_pending
    from reviews.learning.publication import attachments_for_factory

    if context is not None and _is_backfill(context) and not (context.get("params") or {}).get("send_in_backfill"):
        log.info("a backfill of bulletin_circulation sends nothing (run parameter send_in_backfill is false)")
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
