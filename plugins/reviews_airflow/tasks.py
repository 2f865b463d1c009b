"""Task bodies: fetch settings from Airflow, call the business logic in `reviews`, return counts.

DAG files stay thin by calling these. Everything heavy is imported inside the functions so that
parsing a DAG file imports neither pandas nor Great Expectations. Return values go to XCom: they
hold counts and ids only, never case data.
"""
from __future__ import annotations

import logging

from reviews_airflow import settings

log = logging.getLogger(__name__)


def run_dates(context) -> dict:
    from reviews.periods import as_of_date, period_bounds

    start, end, logical = context.get("data_interval_start"), context.get("data_interval_end"), context.get("logical_date")
    first, last = period_bounds(start, end, logical)
    return {"as_of": as_of_date(start, end, logical), "period_start": first, "period_end": last}


def partnership_codes() -> list[str]:
    return list(settings.config().partnerships)


def ingest(partnership: str, context) -> dict:
    from reviews.ingest import ingest_partnership

    cfg = settings.config()
    as_of = run_dates(context)["as_of"]
    summary = ingest_partnership(
        settings.warehouse_engine(), cfg, partnership, settings.inbox(), settings.data_dir() / "raw",
        settings.pseudonymisation_key(), as_of,
    )
    log.info(
        "%s as of %s: %d new file(s), %d rows read, %d loaded, %d quarantined; already loaded: %d",
        partnership, as_of, summary.files_new, summary.rows_read, summary.rows_loaded,
        summary.rows_quarantined, summary.files_skipped_already_loaded,
    )
    for rule, n in sorted(summary.rule_counts.items()):
        log.info("%s: %d row(s) failed %s", partnership, n, rule)
    return summary.to_dict()


def report_returns(summaries: list[dict]) -> dict:
    totals = {k: sum(s[k] for s in summaries) for k in ("files_new", "rows_read", "rows_loaded", "rows_quarantined")}
    log.info("all partnerships: %s", totals)
    return totals


def judge_timeliness(context, as_of=None) -> dict:
    from reviews.pipeline import run_timeliness

    as_of = as_of or run_dates(context)["as_of"]
    counts = run_timeliness(settings.warehouse_engine(), settings.config(), as_of)
    for stage, by_status in sorted(counts.items()):
        log.info("timeliness as of %s, %s: %s", as_of, stage, dict(sorted(by_status.items())))
    return {"as_of": as_of.isoformat(), "counts": counts}


def build_bulletins(context) -> dict:
    from reviews.pipeline import build_bulletins as build

    from reviews_airflow.assets import BULLETINS

    dates = run_dates(context)
    built = build(
        settings.warehouse_engine(), settings.config(), dates["period_start"], dates["period_end"],
        dates["period_end"], settings.data_dir() / "bulletins",
    )
    log.info("bulletins for %s to %s: %s", dates["period_start"], dates["period_end"], built)
    context["outlet_events"][BULLETINS].extra = {
        "period_start": dates["period_start"].isoformat(), "period_end": dates["period_end"].isoformat(),
    }
    return {"period_start": dates["period_start"].isoformat(), "period_end": dates["period_end"].isoformat(), "bulletins": built}


def periods_to_send(context, engine) -> list[tuple]:
    """The periods whose bulletins this run circulates.

    The ones named by the asset events that triggered the run (each summary run says which
    period it built); for a manual run, the latest period built. Never every period: someone
    newly added to a list should not be sent the whole archive.
    """
    from datetime import date

    from sqlalchemy import func, select

    from reviews.warehouse import bulletins

    periods = set()
    for events in (context.get("triggering_asset_events") or {}).values():
        for event in events:
            extra = getattr(event, "extra", None) or {}
            if "period_start" in extra and "period_end" in extra:
                periods.add((date.fromisoformat(extra["period_start"]), date.fromisoformat(extra["period_end"])))
    if not periods:
        with engine.connect() as conn:
            latest = conn.execute(select(func.max(bulletins.c.period_end))).scalar()
            if latest is not None:
                rows = conn.execute(select(bulletins.c.period_start, bulletins.c.period_end)
                                    .where(bulletins.c.period_end == latest).distinct()).all()
                periods = {(r[0], r[1]) for r in rows}
    return sorted(periods)


def queue_sends(context) -> dict:
    from reviews.circulation import queue_bulletin_sends

    engine = settings.warehouse_engine()
    periods = periods_to_send(context, engine)
    log.info("circulating bulletins for period(s): %s", [f"{a}..{b}" for a, b in periods] or "none built yet")
    resend_ids = context["params"].get("resend_bulletin_ids") or []
    report = queue_bulletin_sends(
        engine, settings.config(), resend_bulletin_ids={int(i) for i in resend_ids}, periods=periods
    )
    log.info("circulation queued: %s", report)
    return _plain(report)


def send_queued() -> dict:
    from reviews.circulation import send_pending

    report = send_pending(settings.warehouse_engine(), settings.config(), settings.transport())
    log.info("circulation sent: %s", report)
    return _plain(report)


def _plain(report) -> dict:
    """A dataclass report as a small dict of counts for XCom (no addresses, no content)."""
    from dataclasses import asdict, is_dataclass

    data = asdict(report) if is_dataclass(report) else dict(report)
    return {k: v for k, v in data.items() if isinstance(v, (int, float, str, bool))}
