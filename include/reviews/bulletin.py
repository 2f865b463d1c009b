"""Render a period's learning bulletin for one audience: HTML for Outlook plus a plain-text part.

Why this shape: bulletins leave the business unit, so every count goes through suppression.py.
Each measure is suppressed once on the full partnerships-by-category grid and every audience
shows a slice of that same grid, so reading the regional bulletin beside a partnership's page
cannot uncover a hidden cell. The output is a pure function of the summary and the config (no
clock, no random ids, a PNG without a timestamp), so the content hash only changes when the
figures do, and a backfill rebuilds the same bytes.
"""
from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Callable

import matplotlib
import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from reviews.config import Config, ConfigError
from reviews.summary import theme_label as label_theme
from reviews.suppression import TOTAL, suppress_table

REGION = "region"
TEMPLATES = Path(__file__).resolve().parent / "templates"
MONTHS = (
    "", "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)
LABELS: dict[str, str] = {
    "death": "Death",
    "serious_harm": "Serious harm",
    "other": "Other",
    "not_recorded": "Not recorded",
    "lcspr": "LCSPR",
    "no_further_review": "No further review",
    "other_review": "Other review",
    "national_review_recommended": "National review recommended",
    "national": "National review",
    "local_multi_agency": "Local multi-agency review",
    "single_agency": "Single-agency review",
    "notification": "Notification to the Panel",
    "rapid_review": "Rapid review sent to the Panel",
    "lcspr_completion": "LCSPR completed",
    "publication_notice": "Final report sent before publication",
    "met": "Met",
    "late": "Late",
    "open_on_track": "Open, on track",
    "open_overdue": "Open, overdue",
    "unknown": "Unknown",
}
BAR_COLOUR = "#1d4f7a"  # dark blue on white: contrast well above 4.5:1; values are also printed


@dataclass(frozen=True)
class RenderedBulletin:
    audience: str
    subject: str
    html: str
    text: str
    content_hash: str  # sha256 of html + text


@dataclass(frozen=True)
class TableView:
    """One published table: header cells (first is the row-header title) and labelled rows."""

    caption: str
    header: list[str]
    rows: list[tuple[str, list[str], bool]]  # row label, cells, is a total row

    def as_text(self) -> str:
        """The table as aligned plain text, for the text/plain part."""
        grid = [self.header] + [[label, *cells] for label, cells, _ in self.rows]
        widths = [max(len(r[i]) for r in grid) for i in range(len(self.header))]

        def line(r: list[str]) -> str:
            return " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

        rule = "-+-".join("-" * w for w in widths)
        return "\n".join([self.caption, line(self.header), rule, *(line(r) for r in grid[1:])])


@dataclass(frozen=True)
class Chart:
    src: str  # data:image/png;base64,...
    alt: str
    width: int
    height: int


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[TableView] = field(default_factory=list)
    chart: Chart | None = None
    findings: list[tuple[str, list[dict]]] = field(default_factory=list)  # (partnership name, items)


def label(code: str) -> str:
    return LABELS.get(code) or code.replace("_", " ").capitalize()


def long_date(d: date) -> str:
    """'30 June 2024', without the locale."""
    return f"{d.day} {MONTHS[d.month]} {d.year}"


def _month_end(d: date) -> date:
    nxt = date(d.year + d.month // 12, d.month % 12 + 1, 1)
    return nxt - timedelta(days=1)


def period_label(period_start: date, period_end: date) -> str:
    """A reader's name for the period: 'June 2024', 'Q1 2024-25 (April to June 2024)', '2024-25 ...'."""
    if period_end < period_start:
        raise ValueError(f"period ends ({period_end}) before it starts ({period_start})")
    if period_start.day != 1 or period_end != _month_end(period_end):
        return f"{long_date(period_start)} to {long_date(period_end)}"
    s, e = period_start, period_end
    months = (e.year - s.year) * 12 + e.month - s.month + 1
    if months == 1:
        return f"{MONTHS[s.month]} {s.year}"
    if months == 3 and s.month in (4, 7, 10, 1):
        fy = s.year if s.month >= 4 else s.year - 1
        q = {4: 1, 7: 2, 10: 3, 1: 4}[s.month]
        return f"Q{q} {fy}-{(fy + 1) % 100:02d} ({MONTHS[s.month]} to {MONTHS[e.month]} {e.year})"
    if months == 12 and s.month == 4:
        return f"{s.year}-{(s.year + 1) % 100:02d} (April {s.year} to March {e.year})"
    if months == 12 and s.month == 1:
        return str(s.year)
    if s.year == e.year:
        return f"{MONTHS[s.month]} to {MONTHS[e.month]} {e.year}"
    return f"{MONTHS[s.month]} {s.year} to {MONTHS[e.month]} {e.year}"


class _Grids:
    """Every measure suppressed once, partnerships x categories, with totals; views slice these."""

    def __init__(self, summary: dict, cfg: Config):
        self.cfg = cfg
        self.parts = summary["partnerships"]
        self.codes = [p["code"] for p in self.parts]
        self.names = {p["code"]: p["name"] for p in self.parts}

    def suppress(self, df: pd.DataFrame) -> pd.DataFrame:
        c = self.cfg
        return suppress_table(df, c.suppression_low, c.suppression_high, c.suppression_symbol)

    def by_partnership(self, get: Callable[[dict], dict], cats: list[str]) -> pd.DataFrame:
        df = pd.DataFrame([[int(get(p)[c]) for c in cats] for p in self.parts], index=self.codes, columns=cats)
        return self.suppress(df)

    def themes(self, summary: dict, basis: str) -> pd.DataFrame:
        """Themes (rows) x partnerships (columns) for basis 'to_date' or 'period'."""
        themes = [t["theme"] for t in summary["region"]["themes"]]
        counts = {p["code"]: {t["theme"]: t[basis] for t in p["themes"]} for p in self.parts}
        df = pd.DataFrame(
            [[int(counts[c].get(t, 0)) for c in self.codes] for t in themes], index=themes, columns=self.codes
        )
        return self.suppress(df)


def _shown_order(value: str, symbol: str) -> tuple[int, int]:
    """Sort key from a published value only, so row order reveals nothing about hidden cells."""
    if value == symbol:
        return (1, 0)
    n = int(value)
    return (0, -n) if n > 0 else (2, 0)


def _category_table(g: _Grids, sup: pd.DataFrame, caption: str, first: str, audience: str, region: str) -> TableView:
    cats = [c for c in sup.columns if c != TOTAL]
    if audience == REGION:
        rows = [(g.names[c], [str(v) for v in sup.loc[c]], False) for c in g.codes]
        rows.append((f"{region} (all partnerships)", [str(v) for v in sup.loc[TOTAL]], True))
        return TableView(caption, ["Partnership", *(label(c) for c in cats), "Total"], rows)
    rows = [(label(c), [str(sup.loc[audience, c]), str(sup.loc[TOTAL, c])], False) for c in cats]
    rows.append(("Total", [str(sup.loc[audience, TOTAL]), str(sup.loc[TOTAL, TOTAL])], True))
    return TableView(caption, [first, g.names[audience], region], rows)


def _chart(bars: list[tuple[str, int]], title: str) -> bytes:
    """A horizontal bar chart as PNG bytes; stable for the same input (no timestamp, no software tag)."""
    rc = {"svg.hashsalt": "reviews-bulletin", "font.family": "DejaVu Sans", "font.size": 10}
    with matplotlib.rc_context(rc):
        fig = Figure(figsize=(7.5, 1.4 + 0.38 * len(bars)), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        labels = [b[0] for b in reversed(bars)]
        values = [b[1] for b in reversed(bars)]
        ys = list(range(len(bars)))
        ax.barh(ys, values, color=BAR_COLOUR)
        ax.set_yticks(ys, labels)
        for y, v in zip(ys, values):
            ax.text(v, y, f" {v}", va="center", color="#1b1b1b")
        ax.set_xlim(0, max(values) * 1.18)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("Findings")
        ax.set_title(title, loc="left", fontsize=10)
        ax.spines[["top", "right"]].set_visible(False)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def _theme_section(g: _Grids, summary: dict, audience: str, region: str, period: str, end: date) -> Section:
    symbol = g.cfg.suppression_symbol
    sec = Section("Learning themes")
    if not summary["region"]["themes"]:
        sec.paragraphs.append(f"No findings from reviews completed up to {long_date(end)}.")
        return sec
    to_date, in_period = g.themes(summary, "to_date"), g.themes(summary, "period")
    themes = [t for t in to_date.index if t != TOTAL]
    key_col = TOTAL if audience == REGION else audience
    themes.sort(
        key=lambda t: (
            _shown_order(to_date.loc[t, key_col], symbol),
            _shown_order(to_date.loc[t, TOTAL], symbol),
            label_theme(t),
        )
    )
    sec.paragraphs.append(
        "Findings are counted by learning theme and dated by the completion of their review. "
        f"'To date' means reviews completed up to {long_date(end)}."
    )
    bars = [(label_theme(t), int(v)) for t in themes if (v := to_date.loc[t, TOTAL]) != symbol and int(v) > 0]
    if bars:
        title = f"Findings by learning theme, {region}, reviews completed up to {long_date(end)}"
        png = _chart(bars, title)
        alt = (
            f"Bar chart of findings by learning theme across {region}, reviews completed up to {long_date(end)}: "
            + "; ".join(f"{name} {v}" for name, v in bars)
            + f". Themes whose count is shown as {symbol} ({g.cfg.suppression_low} to {g.cfg.suppression_high}, "
            "or hidden to protect another count) are not drawn; "
            "the table below gives every theme."
        )
        uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        sec.chart = Chart(uri, alt, 600, round(600 * (1.4 + 0.38 * len(bars)) / 7.5))
    else:
        sec.paragraphs.append("No theme has a regional count that can be published, so no chart is shown.")

    def row(t: str, sup_a: pd.DataFrame, sup_b: pd.DataFrame | None = None) -> list[str]:
        if audience == REGION:
            return [str(v) for v in sup_a.loc[t]]
        cells = [sup_a.loc[t, audience], sup_a.loc[t, TOTAL]]
        if sup_b is not None:
            cells += [sup_b.loc[t, audience], sup_b.loc[t, TOTAL]]
        return [str(c) for c in cells]

    if audience == REGION:
        header = ["Theme", *(g.names[c] for c in g.codes), region]
        for sup, when in ((to_date, f"reviews completed up to {long_date(end)}"), (in_period, f"reviews completed in {period}")):
            if sup is in_period and sup.loc[TOTAL, TOTAL] == "0":
                sec.paragraphs.append(f"No reviews with findings were completed in {period}.")
                continue
            rows = [(label_theme(t), row(t, sup), False) for t in themes]
            rows.append(("All themes", row(TOTAL, sup), True))
            sec.tables.append(TableView(f"Findings by learning theme and partnership, {when}", header, rows))
    else:
        name = g.names[audience]
        header = ["Theme", f"{name}, to date", f"{region}, to date", f"{name}, {period}", f"{region}, {period}"]
        rows = [(label_theme(t), row(t, to_date, in_period), False) for t in themes]
        rows.append(("All themes", row(TOTAL, to_date, in_period), True))
        sec.tables.append(TableView(f"Findings by learning theme, {name} and {region}", header, rows))
    return sec


def _sections(summary: dict, cfg: Config, audience: str) -> tuple[list[dict], list[Section]]:
    g = _Grids(summary, cfg)
    cats = summary["categories"]
    region = summary["region_name"] or cfg.region_name
    start, end = date.fromisoformat(summary["period"]["start"]), date.fromisoformat(summary["period"]["end"])
    as_of = date.fromisoformat(summary["as_of"])
    period = period_label(start, end)
    measures = [
        ("notifications", "incident_type", "Serious incident notifications", "Incident type",
         f"Serious incident notifications to the Panel in {period}, by type of incident"),
        ("rapid_reviews_completed", "rapid_review_outcome", "Rapid reviews completed", "Outcome",
         f"Rapid reviews sent to the Panel in {period}, by outcome"),
        ("practice_reviews_decided", "review_type", "Practice reviews decided", "Review type",
         f"Practice reviews decided in {period}, by type of review"),
    ]
    headlines, sections = [], []
    for key, cat_key, title, first, caption in measures:
        sup = g.by_partnership(lambda p, k=key: p[k], cats[cat_key])
        sections.append(Section(title, tables=[_category_table(g, sup, caption, first, audience, region)]))
        if audience == REGION:
            value = str(sup.loc[TOTAL, TOTAL])
        else:
            value = f"{sup.loc[audience, TOTAL]} ({region}: {sup.loc[TOTAL, TOTAL]})"
        headlines.append({"label": f"{title} in {period}", "value": value})

    tsec = Section(f"Statutory timeliness as at {long_date(as_of)}")
    tsec.paragraphs.append(
        "Each case is judged against its statutory timescale as at this date. "
        f"'Open, due within {cfg.at_risk_working_days} working days' means not yet done and close to its due date."
    )
    status_names = {**LABELS, "open_at_risk": f"Open, due within {cfg.at_risk_working_days} working days"}
    for stage in cats["timeliness_stage"]:
        sup = g.by_partnership(lambda p, s=stage: p["timeliness"][s], cats["timeliness_status"])
        view = _category_table(g, sup, f"{label(stage)}: cases by status as at {long_date(as_of)}", "Status", audience, region)
        relabel = {label(s): status_names.get(s, label(s)) for s in cats["timeliness_status"]}
        view = TableView(
            view.caption,
            [relabel.get(h, h) for h in view.header],
            [(relabel.get(lbl, lbl), cells, tot) for lbl, cells, tot in view.rows],
        )
        totals = view.rows[-1][1]
        if all(v == "0" for v in totals):
            tsec.paragraphs.append(f"{label(stage)}: no cases as at {long_date(as_of)}.")
        else:
            tsec.tables.append(view)
    sections.append(tsec)
    sections.append(_theme_section(g, summary, audience, region, period, end))

    fsec = Section("Key findings")
    wanted = g.codes if audience == REGION else [audience]
    for code in wanted:
        items = [f for f in summary["key_findings"] if f["partnership_code"] == code]
        if items:
            fsec.findings.append((g.names[code], items))
    if not fsec.findings:
        fsec.paragraphs.append(f"No reviews with findings were completed in {period}.")
    sections.append(fsec)

    c = cfg
    sections.append(
        Section(
            "About these figures",
            paragraphs=[
                f"Counts from {c.suppression_low} to {c.suppression_high} are shown as '{c.suppression_symbol}' "
                "to protect the children and families concerned. Some other counts are also shown as "
                f"'{c.suppression_symbol}' so that a hidden count cannot be worked out from a total. Zero is shown.",
                "These counts describe safeguarding activity; they are not performance measures.",
            ],
        )
    )
    return headlines, sections


def _env() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), disabled_extensions=("txt.j2",), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_bulletin(summary: dict, cfg: Config, audience: str = REGION) -> RenderedBulletin:
    """The bulletin for 'region' (all partnerships side by side) or one partnership code."""
    codes = [p["code"] for p in summary["partnerships"]]
    if audience != REGION and audience not in codes:
        raise ConfigError(f"unknown bulletin audience {audience!r}: use 'region' or one of {codes}")
    region = summary["region_name"] or cfg.region_name
    start, end = date.fromisoformat(summary["period"]["start"]), date.fromisoformat(summary["period"]["end"])
    period = period_label(start, end)
    who = region if audience == REGION else next(p["name"] for p in summary["partnerships"] if p["code"] == audience)
    title = f"{who} practice review learning bulletin"
    subject = f"{title}: {period}"
    headlines, sections = _sections(summary, cfg, audience)
    context: dict[str, Any] = {
        "title": title,
        "subject": subject,
        "period": period,
        "region": region,
        "headlines": headlines,
        "sections": sections,
    }
    env = _env()
    html = env.get_template("bulletin.html.j2").render(context)
    text = env.get_template("bulletin.txt.j2").render(context)
    digest = hashlib.sha256((html + text).encode("utf-8")).hexdigest()
    return RenderedBulletin(audience=audience, subject=subject, html=html, text=text, content_hash=digest)
