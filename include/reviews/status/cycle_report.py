"""A plain-text account of what a regional cycle did, read back from the warehouse."""
from __future__ import annotations

from datetime import date

from sqlalchemy import Engine, func, select

from reviews.core import warehouse as wh


def _table(headers: list[str], rows: list[list]) -> list[str]:
    widths = [max(len(str(x)) for x in [h, *[r[i] for r in rows]]) for i, h in enumerate(headers)]
    fmt = "  ".join("{:<%d}" % w if i == 0 else "{:>%d}" % w for i, w in enumerate(widths))
    return [fmt.format(*headers), fmt.format(*["-" * w for w in widths])] + [fmt.format(*map(str, r)) for r in rows]


def cycle_report(engine: Engine, as_of: date) -> str:
    rf, q, t, b, c = wh.return_files.c, wh.quarantine.c, wh.timeliness.c, wh.bulletins.c, wh.circulation_log.c
    lines: list[str] = []
    with engine.connect() as conn:
        files = conn.execute(
            select(rf.partnership_code, func.count(), func.sum(rf.rows_read), func.sum(rf.rows_loaded),
                   func.sum(rf.rows_quarantined), func.sum((rf.status == "failed").cast(wh.Integer)))
            .group_by(rf.partnership_code).order_by(rf.partnership_code)
        ).all()
        lines.append("Returns loaded (partnership_returns)")
        lines += _table(["partnership", "files", "rows read", "loaded", "quarantined", "files failed"],
                        [list(r) for r in files])
        top = conn.execute(
            select(q.failed_checks).limit(3).order_by(q.partnership_code, q.file_name, q.row_number)
        ).scalars().all()
        if top:
            lines.append("")
            lines.append("Examples of quarantined rows (reasons as sent back to partnerships):")
            lines += [f"  - {r.splitlines()[0]}" for r in top]

        statuses = ["met", "late", "open_on_track", "open_at_risk", "open_overdue", "not_applicable", "unknown"]
        by_stage: dict[str, dict[str, int]] = {}
        for stage, status, n in conn.execute(
            select(t.stage, t.status, func.count()).where(t.as_of_date == as_of).group_by(t.stage, t.status)
        ):
            by_stage.setdefault(stage, {})[status] = n
        lines.append("")
        lines.append(f"Statutory timeliness as of {as_of:%d %B %Y} (statutory_timeliness)")
        order = ["notification", "rapid_review", "lcspr_completion", "publication_notice"]
        lines += _table(["stage", *statuses],
                        [[s, *[by_stage.get(s, {}).get(k, 0) for k in statuses]] for s in order if s in by_stage])

        is_bulletin = ~b.audience.contains(":")  # 'quality:…' / 'returns:…' are feedback from partnership_returns
        built = conn.execute(select(b.bulletin_id, b.audience, b.version, b.period_start, b.period_end, b.path)
                             .where(is_bulletin).order_by(b.bulletin_id)).all()
        feedback = dict(conn.execute(
            select(func.substr(b.audience, 1, 7), func.count()).where(~is_bulletin).group_by(func.substr(b.audience, 1, 7))
        ).all())
        rx = wh.return_expectations.c
        returns = dict(conn.execute(select(rx.status, func.count()).where(rx.as_of_date == as_of).group_by(rx.status)).all())
        sends = dict(conn.execute(select(c.status, func.count()).group_by(c.status)).all())
    lines.append("")
    lines.append(f"Returns due as of {as_of:%d %B %Y} (partnership_returns): "
                 + (", ".join(f"{k} {v}" for k, v in sorted(returns.items())) if returns else "none judged"))
    lines.append(f"Feedback (partnership_returns): {feedback.get('quality', 0)} data quality report(s) to partnerships' "
                 f"data contacts, {feedback.get('returns', 0)} late/missing return notice(s) to the business unit")
    lines.append("")
    lines.append(f"Bulletins built (regional_learning_summary): {len(built)}")
    for row in built:
        lines.append(f"  #{row.bulletin_id} {row.audience:<10} v{row.version} {row.period_start}..{row.period_end}  {row.path}")
    lines.append("")
    lines.append("Circulation (all emails, ledger circulation_log): " + ", ".join(f"{k} {v}" for k, v in sorted(sends.items())) if sends
                 else "Circulation (all emails, ledger circulation_log): nothing sent")
    return "\n".join(lines)
