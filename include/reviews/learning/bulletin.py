"""Render a period's learning bulletin for one audience: HTML for Outlook, a plain-text part, a
print version (bulletin plus 7-minute briefings, for the PDF) and the tables for the XLSX.

Why this shape: bulletins leave the business unit, so every count goes through suppression.py.
Each measure is suppressed once on the full partnerships-by-category grid and every audience
shows a slice of that same grid, so reading the regional bulletin beside a partnership's page
cannot uncover a hidden cell. Rates are shown only when both of their counts are shown. The
output is a pure function of the summary and the config (no clock, no random ids, PNGs without
a timestamp), so the content hash only changes when the figures do, and a backfill rebuilds the
same bytes.

Layout rules (public sector accessibility regulations; Outlook's Word engine): one column at
most 680 px wide, inline CSS only, no scripts, no external resources (charts are inline PNGs,
sent as related MIME parts by mail.py), headings in order, data tables with a caption and
scoped header cells, total rows bold with a heavy rule (not colour), every chart with alt text
and its data table right after it, links underlined.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Callable

import pandas as pd
from jinja2 import Environment

from reviews.learning.briefing import Briefing, briefings_for
from reviews.learning.charts import Chart, bar_chart
from reviews.core.config import Config, ConfigError
from reviews.core.rendering import templates
from reviews.core.reporting_periods import MONTHS, long_date, period_label  # noqa: F401 (period_label re-exported)
from reviews.learning.summary import theme_label as label_theme
from reviews.privacy.suppression import TOTAL, suppress_table
from reviews.timeliness.compute import at_risk_words

REGION = "region"
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
    "open": "Open",
    "in_progress": "In progress",
    "completed": "Completed",
    "overdue": "Overdue",
    "not_yet_due": "Not yet due (open or in progress)",
}
# Actions are published in three states a reader acts on: open and in progress are one figure (at
# real volumes each alone is mostly c); the action registers keep the four.
PUBLISHED_ACTION_STATES = {"overdue": ("overdue",), "not_yet_due": ("open", "in_progress"), "completed": ("completed",)}
SHORT_STAGE = {
    "notification": "Notification",
    "rapid_review": "Rapid review",
    "lcspr_completion": "LCSPR completion",
    "publication_notice": "Publication notice",
}
NO_CASES = "none due"


@dataclass(frozen=True)
class TableView:
    """One published table: header cells (first is the row-header title) and labelled rows."""

    caption: str
    header: list[str]
    rows: list[tuple[str, list[str], bool]]  # row label, cells, is a total row
    sheet: str = ""  # short name for the XLSX sheet

    def alignments(self) -> list[str]:
        """'right' for columns of figures (counts, shares, the suppression symbol), else 'left'."""
        out = []
        for j in range(len(self.header) - 1):
            col = [cells[j] for _, cells, _ in self.rows if j < len(cells)]
            figures = all(re.fullmatch(r"\d+%?|[a-z]|none due", str(v)) for v in col)
            out.append("right" if figures else "left")
        return out

    def as_text(self, width: int | None = None) -> str:
        """The table as aligned plain text, for the text/plain part. With `width`, a table whose
        lines would be longer is written as a list instead (a row a paragraph: label, then each
        header with its value), wrapped to `width`."""
        import textwrap

        grid = [self.header] + [[label, *cells] for label, cells, _ in self.rows]
        widths = [max(len(r[i]) for r in grid) for i in range(len(self.header))]

        def line(r: list[str]) -> str:
            return " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

        rule = "-+-".join("-" * w for w in widths)
        caption = textwrap.fill(self.caption, width) if width else self.caption
        if width is None or len(rule) <= width:
            return "\n".join([caption, line(self.header), rule, *(line(r) for r in grid[1:])])
        items = []
        for label, cells, _ in self.rows:
            pairs = "; ".join(f"{h}: {v}" for h, v in zip(self.header[1:], cells))
            items.append(textwrap.fill(f"- {label}: {pairs}", width, subsequent_indent="  "))
        return "\n".join([caption, *items])


@dataclass
class Section:
    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)  # (kind, value), in reading order

    def p(self, text: str) -> "Section":
        self.blocks.append(("p", text))
        return self

    def table(self, t: TableView) -> "Section":
        self.blocks.append(("table", t))
        return self

    def chart(self, c: Chart) -> "Section":
        self.blocks.append(("chart", c))
        return self

    def h3(self, text: str) -> "Section":
        self.blocks.append(("h3", text))
        return self

    def items(self, entries: list[str]) -> "Section":
        self.blocks.append(("list", entries))
        return self

    def note(self, text: str) -> "Section":
        """A short note read with the block before it (what a chart leaves out, a key)."""
        self.blocks.append(("note", text))
        return self

    def figures(self, rows: list[tuple[str, list[tuple[str, str]]]]) -> "Section":
        """Figures as a list (label: who value, who value): phone-friendly, and not a table."""
        self.blocks.append(("figures", rows))
        return self

    @property
    def tables(self) -> list[TableView]:
        return [v for k, v in self.blocks if k == "table"]

    @property
    def charts(self) -> list[Chart]:
        return [v for k, v in self.blocks if k == "chart"]


@dataclass(frozen=True)
class RenderedBriefing:
    slug: str
    partnership_code: str
    review_id: str
    title: str
    html: str  # a standalone page
    text: str


@dataclass(frozen=True)
class RenderedBulletin:
    audience: str
    subject: str
    html: str
    text: str
    content_hash: str  # sha256 of html + text + print_html
    print_html: str = ""  # the bulletin followed by its 7-minute briefings, one per page (PDF)
    tables: tuple[TableView, ...] = ()
    briefings: tuple[RenderedBriefing, ...] = ()
    title: str = ""
    xlsx: bytes = b""  # the workbook, when rendered in a pool worker (else built by the caller)
    headlines: tuple[dict, ...] = ()  # {label, value}: kept with the version, to say what an update changed


def label(code: str) -> str:
    return LABELS.get(code) or code.replace("_", " ").capitalize()


def _rate(num: str, den: str, symbol: str) -> str:
    """A percentage published only when both counts are; 'none due' when the denominator is 0."""
    if num == symbol or den == symbol:
        return symbol
    n, d = int(num), int(den)
    if d == 0:
        return NO_CASES
    return f"{round(100 * n / d)}%"


def _pct_value(text: str) -> float | None:
    return float(text[:-1]) if text.endswith("%") else None


def round_to(value: str, step: int | None, symbol: str) -> str:
    """A published count rounded half up to the nearest `step` (suppressed and zero stay as they are)."""
    if not step or value == symbol or not value.isdigit():
        return value
    return str(int(math.floor(int(value) / step + 0.5)) * step)


class _Grids:
    """Every measure suppressed once, partnerships x categories, with totals; views slice these."""

    def __init__(self, summary: dict, cfg: Config):
        self.cfg = cfg
        self.symbol = cfg.suppression_symbol
        self.parts = summary["partnerships"]
        self.codes = [p["code"] for p in self.parts]
        self.names = {p["code"]: p["name"] for p in self.parts}
        # Suppressed grids by measure: every audience reads slices of the same grids, so a
        # period's bulletins build each one once (read-only once made).
        self._made: dict[tuple, pd.DataFrame] = {}

    def suppress(self, df: pd.DataFrame, total_col: bool = True) -> pd.DataFrame:
        c = self.cfg
        return suppress_table(df, c.suppression_low, c.suppression_high, c.suppression_symbol, total_col=total_col)

    def by_partnership(self, measure: tuple, get: Callable[[dict], dict], cats: list[str],
                       total_col: bool = True, unpublished: tuple[str, ...] = (),
                       hide: Callable[[pd.DataFrame], set[tuple[str, str]]] | None = None) -> pd.DataFrame:
        """The suppressed grid of one measure (named by `measure`, e.g. ('timeliness', stage)).

        `unpublished`: columns no output shows (they stay in the totals, hidden, so the published
        cells need no secondary suppression on their account); `hide(counts)`: further cells
        (partnership code or TOTAL, column) to hide, e.g. ones that would give away a linked grid's
        hidden cell."""
        key = (measure, tuple(cats), total_col, tuple(unpublished))
        if key not in self._made:
            df = pd.DataFrame([[int(get(p)[c]) for c in cats] for p in self.parts], index=self.codes, columns=cats)
            rows = [*self.codes, TOTAL]
            cols = [*cats, *([TOTAL] if total_col else [])]
            at = lambda cells: frozenset((rows.index(r), cols.index(k)) for r, k in cells)  # noqa: E731
            c = self.cfg
            self._made[key] = suppress_table(df, c.suppression_low, c.suppression_high, c.suppression_symbol,
                                             total_col=total_col, hidden=at(hide(df) if hide else set()),
                                             unpublished=at({(r, k) for r in rows for k in unpublished}))
        return self._made[key]

    def agencies(self, summary: dict, actions_sup: pd.DataFrame) -> pd.DataFrame:
        """Overdue actions, owner agencies (rows) x partnerships (columns), linked to the actions
        grid: its overdue column is this grid's totals row."""
        key = (("overdue_by_agency",),)
        if key not in self._made:
            agencies = summary["categories"]["owner_agency"]
            counts = {p["code"]: p["overdue_by_agency"] for p in self.parts}
            df = pd.DataFrame([[int(counts[c].get(a, 0)) for c in self.codes] for a in agencies],
                              index=agencies, columns=self.codes)
            last = len(agencies)  # the totals row of the full grid
            shown, hidden = set(), set()
            for j, code in enumerate([*self.codes, TOTAL]):
                (hidden if str(actions_sup.loc[code, "overdue"]) == self.symbol else shown).add((last, j))
            c = self.cfg
            self._made[key] = suppress_table(df, c.suppression_low, c.suppression_high, c.suppression_symbol,
                                             shown=frozenset(shown), hidden=frozenset(hidden))
        return self._made[key]

    def themes(self, summary: dict, basis: str) -> pd.DataFrame:
        """Themes (rows) x partnerships (columns) for basis 'to_date' or 'period'."""
        key = (("themes", basis),)
        if key not in self._made:
            self._made[key] = self._themes(summary, basis)
        return self._made[key]

    def _themes(self, summary: dict, basis: str) -> pd.DataFrame:
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


def _and_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _category_table(g: _Grids, sup: pd.DataFrame, caption: str, first: str, audience: str, region: str,
                    sheet: str, round_total: int | None = None) -> TableView:
    """A grid as a table: partnerships by category on the regional page, categories on a
    partnership's (its own and the region's); a "Total" column when the grid has one."""
    cats = [c for c in sup.columns if c != TOTAL]
    has_total = TOTAL in sup.columns
    total_row = [round_to(str(v), round_total, g.symbol) for v in sup.loc[TOTAL]]
    if audience == REGION:
        rows = [(g.names[c], [str(v) for v in sup.loc[c]], False) for c in g.codes]
        rows.append((f"{region} (all partnerships)", total_row, True))
        return TableView(caption, ["Partnership", *(label(c) for c in cats), *(["Total"] if has_total else [])],
                         rows, sheet)
    region_col = dict(zip(list(sup.columns), total_row))
    rows = [(label(c), [str(sup.loc[audience, c]), region_col[c]], False) for c in cats]
    if has_total:
        rows.append(("Total", [str(sup.loc[audience, TOTAL]), region_col[TOTAL]], True))
    return TableView(caption, [first, g.names[audience], region], rows, sheet)


# --------------------------------------------------------------------------------------------
# Sections


class _Builder:
    def __init__(self, summary: dict, cfg: Config, audience: str, grids: _Grids | None = None):
        self.s, self.cfg, self.audience = summary, cfg, audience
        self.g = grids or _Grids(summary, cfg)
        self.sym = cfg.suppression_symbol
        self.region = summary["region_name"] or cfg.region_name
        self.start = date.fromisoformat(summary["period"]["start"])
        self.end = date.fromisoformat(summary["period"]["end"])
        self.as_of = date.fromisoformat(summary["as_of"])
        self.period = period_label(self.start, self.end)
        self.kind = summary["period"].get("kind", "month")
        self.trend = summary.get("trend_periods") or []
        self.cats = summary["categories"]
        self.is_region = audience == REGION
        self.name = self.region if self.is_region else self.g.names[audience]
        self.headlines: list[dict] = []
        self.sections: list[Section] = []
        self.rounding = cfg.round_regional_totals_to

    # the value an audience reads from a suppressed grid: its own row, or the region's total row
    def own(self, sup: pd.DataFrame, col: str) -> str:
        return str(sup.loc[TOTAL if self.is_region else self.audience, col])

    def headline(self, text: str, sup_value: str, region_value: str | None = None) -> None:
        value = sup_value if self.is_region or region_value is None else f"{sup_value} ({self.region}: {region_value})"
        self.headlines.append({"label": text, "value": value})

    def build(self) -> None:
        # The full tables, for the XLSX only (docs/bulletins.md, "What a bulletin holds").
        self.activity()
        self.timeliness()
        self.themes()
        self.actions()
        self.appendix, self.sections, self.headlines = self.sections, [], []
        # What the reader sees: what was learned first, then the counts in short, then the notes.
        self.findings_by_theme()
        self.what_changes()
        self.briefing_list()
        self.recurring_list()
        self.overdue_by_agency()
        self.in_numbers()
        self.about()
        self.key_to_symbol()

    @property
    def workbook_tables(self) -> list[TableView]:
        """Every table: the ones shown, then the full ones (the XLSX holds both)."""
        return [t for s in (*self.sections, *self.appendix) for t in s.tables]

    # -- activity ------------------------------------------------------------------------------
    def activity(self) -> None:
        g, cats, period = self.g, self.cats, self.period
        sup_n = g.by_partnership(("notifications",), lambda p: p["notifications"], cats["incident_type"])
        sec = Section("Serious incident notifications")
        sec.table(_category_table(g, sup_n, f"Serious incident notifications to the Panel in {period}, by type of incident",
                                  "Incident type", self.audience, self.region, "Notifications", self.rounding))
        if self.rounding:
            sec.p(f"{self.region} totals of notifications are rounded to the nearest {self.rounding}, "
                  "so they may not equal the sum of the partnerships.")
        self.sections.append(sec)
        region_total = round_to(str(sup_n.loc[TOTAL, TOTAL]), self.rounding, self.sym)
        self.headline(f"Serious incident notifications in {period}",
                      region_total if self.is_region else self.own(sup_n, TOTAL), region_total)

        sup_r = g.by_partnership(("rapid_reviews_completed",), lambda p: p["rapid_reviews_completed"], cats["rapid_review_outcome"])
        sec = Section("Rapid reviews")
        sec.table(_category_table(g, sup_r, f"Rapid reviews sent to the Panel in {period}, by outcome", "Outcome",
                                  self.audience, self.region, "Rapid reviews"))
        sec.p("The conversion rate is the share of completed rapid reviews that recommended a local child "
              "safeguarding practice review (LCSPR). It is shown only when both of its counts can be published.")
        sec.table(self.conversion_table(sup_r))
        self.sections.append(sec)
        self.headline(f"Rapid reviews completed in {period}", self.own(sup_r, TOTAL), str(sup_r.loc[TOTAL, TOTAL]))
        if "lcspr" in sup_r.columns:
            rate = _rate(self.own(sup_r, "lcspr"), self.own(sup_r, TOTAL), self.sym)
            region_rate = _rate(str(sup_r.loc[TOTAL, "lcspr"]), str(sup_r.loc[TOTAL, TOTAL]), self.sym)
            self.headline("Rapid reviews that recommended an LCSPR (conversion rate)", rate, region_rate)
        if "national_review_recommended" in sup_r.columns:
            self.headline(f"Rapid reviews that recommended a national review in {period}",
                          self.own(sup_r, "national_review_recommended"),
                          str(sup_r.loc[TOTAL, "national_review_recommended"]))

        sup_d = g.by_partnership(("practice_reviews_decided",), lambda p: p["practice_reviews_decided"], cats["review_type"])
        sec = Section("Practice reviews decided")
        sec.table(_category_table(g, sup_d, f"Practice reviews decided in {period}, by type of review", "Review type",
                                  self.audience, self.region, "Reviews decided"))
        self.sections.append(sec)
        self.headline(f"Practice reviews decided in {period}", self.own(sup_d, TOTAL), str(sup_d.loc[TOTAL, TOTAL]))

    def conversion_table(self, sup_r: pd.DataFrame) -> TableView:
        cols = list(sup_r.columns)
        has = {c: c in cols for c in ("lcspr", "national_review_recommended")}

        def row(key: str) -> list[str]:
            total = str(sup_r.loc[key, TOTAL])
            lcspr = str(sup_r.loc[key, "lcspr"]) if has["lcspr"] else "0"
            national = str(sup_r.loc[key, "national_review_recommended"]) if has["national_review_recommended"] else "0"
            return [total, lcspr, _rate(lcspr, total, self.sym), national]

        header = ["Rapid reviews completed", "Recommended an LCSPR", "Conversion rate", "Recommended a national review"]
        caption = f"Rapid review to LCSPR conversion and national review referrals, {self.period}"
        if self.is_region:
            rows = [(self.g.names[c], row(c), False) for c in self.g.codes]
            rows.append((f"{self.region} (all partnerships)", row(TOTAL), True))
            return TableView(caption, ["Partnership", *header], rows, "Conversion")
        return TableView(caption, ["Area", *header],
                         [(self.name, row(self.audience), False), (self.region, row(TOTAL), True)], "Conversion")

    # -- timeliness ----------------------------------------------------------------------------
    def timeliness(self) -> None:
        g, cats = self.g, self.cats
        at = long_date(self.as_of)
        sec = Section(f"Statutory timeliness as at {at}")
        sec.p("Each case is judged against its statutory timescale as at this date. "
              f"'Open, due within N working days' means not yet done and close to its due date "
              f"({at_risk_words(self.cfg)}).")
        snapshot = []
        for stage in cats["timeliness_stage"]:
            status_names = {**LABELS, "open_at_risk": f"Open, due within {self.cfg.at_risk_days(stage)} working days"}
            relabel = {label(s): status_names.get(s, label(s)) for s in cats["timeliness_status"]}
            sup = g.by_partnership(("timeliness", stage), lambda p, s=stage: p["timeliness"][s], cats["timeliness_status"])
            view = _category_table(g, sup, f"{label(stage)}: cases by status as at {at}", "Status",
                                   self.audience, self.region, f"Status {SHORT_STAGE[stage]}")
            view = TableView(view.caption, [relabel.get(h, h) for h in view.header],
                             [(relabel.get(lbl, lbl), cells, tot) for lbl, cells, tot in view.rows], view.sheet)
            if all(v == "0" for v in view.rows[-1][1]):
                snapshot.append(("p", f"{label(stage)}: no cases as at {at}."))
            else:
                snapshot.append(("table", view))
        if self.trend and "timeliness_trend" in self.s["region"]:
            self.trend_blocks(sec)
        sec.h3(f"All cases by status as at {at}")
        sec.blocks.extend(snapshot)
        self.sections.append(sec)

    def trend_blocks(self, sec: Section) -> None:
        g, sym = self.g, self.sym
        periods = self.trend
        n = len(periods)
        word = "quarters" if self.kind == "quarter" else "months"
        statuses = self.cats.get("trend_status", ["met", "late", "open_overdue"])
        sec.h3(f"Timeliness over the last {n} {word}")
        sec.p(f"For each {word[:-1]}: the cases due in it, how many were met on time, late, or still open past "
              f"their due date at its end, and the cases open and at risk at its end (due within "
              f"{at_risk_words(self.cfg)}). On time is met as a share of those due.")
        tables = []
        for stage in self.cats["timeliness_stage"]:
            grids = [g.by_partnership(("trend", stage, k), lambda p, s=stage, k=k: p["timeliness_trend"][s][k],
                                      statuses) for k in range(n)]
            risk = g.by_partnership(
                ("at_risk", stage),
                lambda p, s=stage: {str(k): p["timeliness_trend"][s][k]["open_at_risk"] for k in range(n)},
                [str(k) for k in range(n)], total_col=False)
            rows = []
            for k, per in enumerate(periods):
                sup = grids[k]
                due = self.own(sup, TOTAL)
                met = self.own(sup, "met")
                on_time = _rate(met, due, sym)
                region_on_time = _rate(str(sup.loc[TOTAL, "met"]), str(sup.loc[TOTAL, TOTAL]), sym)
                cells = [due, met, self.own(sup, "late"), self.own(sup, "open_overdue"), on_time]
                if not self.is_region:
                    cells.append(region_on_time)
                cells.append(self.own(risk, str(k)))
                rows.append((per["label"], cells, False))
            header = ["Period", "Due", "Met", "Late", "Still open past due", "On time"]
            if not self.is_region:
                header.append(f"{self.region} on time")
            header.append("Open, at risk at period end")
            tables.append(TableView(f"{label(stage)}: {self.name}, last {n} {word}", header, rows,
                                    f"Trend {SHORT_STAGE[stage]}"))
        for t in tables:
            sec.table(t)

    # -- themes --------------------------------------------------------------------------------
    def themes(self) -> None:
        g, summary, sym, end, period = self.g, self.s, self.sym, self.end, self.period
        sec = Section("Learning themes")
        if not summary["region"]["themes"]:
            sec.p(f"No findings from reviews completed up to {long_date(end)}.")
            self.sections.append(sec)
            return
        to_date, in_period = g.themes(summary, "to_date"), g.themes(summary, "period")
        themes = [t for t in to_date.index if t != TOTAL]
        key_col = TOTAL if self.is_region else self.audience
        themes.sort(key=lambda t: (_shown_order(to_date.loc[t, key_col], sym),
                                   _shown_order(to_date.loc[t, TOTAL], sym), label_theme(t)))
        sec.p("Findings are counted by learning theme (the Child Safeguarding Practice Review Panel's themes) and "
              f"dated by the completion of their review. 'To date' means reviews completed up to {long_date(end)}.")
        def row(t: str, sup_a: pd.DataFrame, sup_b: pd.DataFrame | None = None) -> list[str]:
            if self.is_region:
                return [str(v) for v in sup_a.loc[t]]
            cells = [sup_a.loc[t, self.audience], sup_a.loc[t, TOTAL]]
            if sup_b is not None:
                cells += [sup_b.loc[t, self.audience], sup_b.loc[t, TOTAL]]
            return [str(c) for c in cells]

        if self.is_region:
            header = ["Theme", *(g.names[c] for c in g.codes), self.region]
            for sup, when, sheet in ((to_date, f"reviews completed up to {long_date(end)}", "Themes to date"),
                                     (in_period, f"reviews completed in {period}", "Themes in period")):
                if sup is in_period and sup.loc[TOTAL, TOTAL] == "0":
                    sec.p(f"No reviews with findings were completed in {period}.")
                    continue
                shown = themes if sup is to_date else [t for t in themes if any(v != "0" for v in row(t, sup))]
                rows = [(label_theme(t), row(t, sup), False) for t in shown]
                rows.append(("All themes", row(TOTAL, sup), True))
                note = "" if sup is to_date else " (themes with any finding)"
                sec.table(TableView(f"Findings by learning theme and partnership, {when}{note}", header, rows, sheet))
        else:
            name = self.name
            header = ["Theme", f"{name}, to date", f"{self.region}, to date", f"{name}, {period}", f"{self.region}, {period}"]
            rows = [(label_theme(t), row(t, to_date, in_period), False) for t in themes]
            rows.append(("All themes", row(TOTAL, to_date, in_period), True))
            sec.table(TableView(f"Findings by learning theme, {name} and {self.region}", header, rows, "Themes"))
        self.recurring(sec)
        self.sections.append(sec)

    def recurring_intro(self, sec: Section) -> tuple[list[dict], int, str]:
        """The recurring themes and the words that open them (the same in the email and the XLSX):
        (themes, how many periods, 'quarters' or 'months')."""
        rec = self.s.get("recurring_themes") or []
        n = len(self.trend) or 1
        word = "quarters" if self.kind == "quarter" else "months"
        if not rec:
            sec.p(f"No theme recurred across partnerships or across the last {n} {word}.")
        else:
            ss = self.cfg.summary
            sec.p(f"Themes found in reviews of at least {ss.recurring_min_partnerships} partnerships, or in at "
                  f"least {ss.recurring_min_periods} of the last {n} {word}, in reviews completed over those {word}.")
        return rec, n, word

    def recurring_where_when(self, r: dict) -> tuple[str, str]:
        labels = [p["short_label"] for p in self.trend] or [self.period]
        return (", ".join(self.g.names[c] for c in r["partnerships"]) or "none",
                ", ".join(labels[k] for k in r["periods"]) or "none")

    def recurring(self, sec: Section) -> None:
        sec.h3("Themes that keep coming back")
        rec, n, word = self.recurring_intro(sec)
        if not rec:
            return
        rows = []
        for r in rec:
            where, when = self.recurring_where_when(r)
            cells = [f"{len(r['partnerships'])}: {where}", f"{len(r['periods'])} of {n}: {when}"]
            if not self.is_region:
                cells.append("Yes" if self.audience in r["partnerships"] else "No")
            rows.append((r["label"], cells, False))
        header = ["Theme", "Partnerships with findings on it", f"{word.capitalize()} with findings on it"]
        if not self.is_region:
            header.append(f"Found in {self.name}")
        sec.table(TableView(f"Recurring learning themes, {self.region}, last {n} {word}", header, rows, "Recurring themes"))

    # -- findings and actions ------------------------------------------------------------------
    def action_grid(self) -> pd.DataFrame:
        """Actions by the three published states (one grid: the XLSX table, the figures under
        "What needs to change" and the agency figures all read it). No total of all actions is
        published: with one, a small "not yet due" count would hide the overdue count beside it."""
        return self.g.by_partnership(
            ("actions",), lambda p: {k: sum(p["actions"].get(s, 0) for s in v) for k, v in PUBLISHED_ACTION_STATES.items()},
            list(PUBLISHED_ACTION_STATES), total_col=False)

    def actions(self) -> None:
        g = self.g
        if "actions" not in self.s["region"]:
            return
        sup = self.action_grid()
        at = long_date(self.end)
        sec = Section("Recommendations and actions")
        sec.p(f"Every recommendation from reviews completed up to {at} has an action owned by an agency. "
              f"This is the state of those actions as at {at}: overdue means not completed and past its due date.")
        sec.table(_category_table(g, sup, f"Actions from review recommendations by state as at {at}", "State",
                                  self.audience, self.region, "Actions"))
        self.agency_table(sec, sup)
        self.sections.append(sec)
        self.headline(f"Actions overdue as at {at}", self.own(sup, "overdue"), str(sup.loc[TOTAL, "overdue"]))

    def agency_table(self, sec: Section, actions_sup: pd.DataFrame) -> None:
        """For the XLSX: overdue actions by owner agency (rows) and partnership, suppressed like every count; the
        partnerships' overdue totals are those of the actions table, so its shown and hidden cells
        are carried over (a total shown there is not hidden here, one hidden there is hidden here)."""
        g, at = self.g, long_date(self.end)
        agencies = self.cats.get("owner_agency")
        if agencies is None or "overdue_by_agency" not in self.s["region"]:
            return
        sec.h3("Overdue actions by agency")
        if not agencies:
            sec.p(f"No action from a review completed up to {at} was overdue at that date.")
            return
        sup = g.agencies(self.s, actions_sup)
        sec.p(f"Actions not completed by their due date, as at {at}, by the agency that owns them.")
        key_col = TOTAL if self.is_region else self.audience
        rows_for = [a for a in agencies if self.is_region or sup.loc[a, self.audience] != "0"]
        rows_for.sort(key=lambda a: (_shown_order(sup.loc[a, key_col], self.sym),
                                     _shown_order(sup.loc[a, TOTAL], self.sym), a.casefold()))
        if self.is_region:
            header = ["Owner agency", *(g.names[c] for c in g.codes), self.region]
            rows = [(a, [str(v) for v in sup.loc[a]], False) for a in rows_for]
            rows.append(("All agencies", [str(v) for v in sup.loc[TOTAL]], True))
        else:
            header = ["Owner agency", self.name, self.region]
            rows = [(a, [str(sup.loc[a, self.audience]), str(sup.loc[a, TOTAL])], False) for a in rows_for]
            rows.append(("All agencies", [str(sup.loc[TOTAL, self.audience]), str(sup.loc[TOTAL, TOTAL])], True))
            if not rows_for:
                sec.p(f"None of {self.name}'s actions was overdue at that date.")
        sec.table(TableView(f"Overdue actions by owner agency as at {at}", header, rows, "Overdue by agency"))

    # -- what was learned (the bulletin opens with these) --------------------------------------
    def findings_by_theme(self) -> None:
        """The findings of reviews completed in the period, grouped by theme (the region's most
        frequent first); with none anywhere, those of the 12 months before it (`earlier_findings`)."""
        sec = Section("What we learned: findings by theme")
        wanted = set(self.g.codes if self.is_region else [self.audience])
        items = [f for f in self.s["key_findings"] if f["partnership_code"] in wanted]
        earlier = [f for f in self.s.get("earlier_findings") or [] if f["partnership_code"] in wanted]
        year = self.s.get("rolling") or {}
        since = long_date(date.fromisoformat(year["start"])) if year else ""
        if items:
            n = self.cfg.summary.key_findings_per_partnership
            sec.p(f"What reviews completed in {self.period} found, in their own words (up to {n}"
                  f"{' per partnership' if self.is_region else ''}, over as many themes as possible).")
        elif earlier:
            items = earlier
            sec.p(f"No review was completed in {self.period}. What reviews completed since {since} found:")
        else:
            sec.p(f"No review was completed in {self.period}" + (f" or since {since}." if since else "."))
        by_theme: dict[str, list[dict]] = {}
        for f in items:
            by_theme.setdefault(f["theme_label"] or "Theme not recorded", []).append(f)
        order = sorted(by_theme, key=lambda t: (-len(by_theme[t]), t))
        for theme in order:
            entries = [(f["finding"], self.g.names[f["partnership_code"]]) for f in by_theme[theme]]
            sec.blocks.append(("findings", (theme, entries, self.is_region)))
        self.learning_chart(sec)
        self.sections.append(sec)

    def learning_chart(self, sec: Section) -> None:
        """Findings by theme to date across the region: a bar per theme whose count is published,
        and, on screen, the themes not drawn and why."""
        summary, sym, end = self.s, self.sym, self.end
        if not summary["region"]["themes"]:
            return
        to_date = self.g.themes(summary, "to_date")
        themes = [t for t in to_date.index if t != TOTAL]
        themes.sort(key=lambda t: (_shown_order(to_date.loc[t, TOTAL], sym), label_theme(t)))
        bars = [(label_theme(t), int(v)) for t in themes if (v := to_date.loc[t, TOTAL]) != sym and int(v) > 0]
        hidden = [label_theme(t) for t in themes if to_date.loc[t, TOTAL] == sym]
        why = (f"not drawn because their count is shown as {sym} ({self.cfg.suppression_low} to "
               f"{self.cfg.suppression_high} findings, or hidden so that such a count cannot be worked out)")
        caption = f"Findings by theme, {self.region}, reviews completed up to {long_date(end)}"
        if bars:
            alt = (f"Bar chart of findings by learning theme across {self.region}, reviews completed up to "
                   f"{long_date(end)}: " + "; ".join(f"{name} {v}" for name, v in bars)
                   + (f". Themes {why}: {', '.join(hidden)}" if hidden else "")
                   + ". Every theme's figures are in the spreadsheet (XLSX).")
            sec.chart(bar_chart(bars, "Findings", caption=caption, alt=alt))
        else:
            sec.p(f"{caption}: no theme has a count that can be published, so no chart is drawn.")
        if hidden:
            sec.blocks.append(("chart_note", f"Themes {why}: {', '.join(hidden)}."))

    def what_changes(self) -> None:
        """The recommendations of the findings above, then the state of every action as at the end."""
        sec = Section("What needs to change")
        wanted = set(self.g.codes if self.is_region else [self.audience])
        items = [f for f in self.s["key_findings"] if f["partnership_code"] in wanted] or \
                [f for f in self.s.get("earlier_findings") or [] if f["partnership_code"] in wanted]
        recs = [(f["recommendation"], self.g.names[f["partnership_code"]]) for f in items
                if (f.get("recommendation") or "").strip()]
        if recs:
            sec.p("What the reviews above recommended:")
            sec.blocks.append(("recommendations", (recs, self.is_region)))
        if "actions" in self.s["region"]:
            self.action_figures(sec)
        self.sections.append(sec)

    def action_figures(self, sec: Section) -> None:
        sym = self.sym
        at = long_date(self.end)
        sec.h3(f"Actions on recommendations as at {at}")
        sec.p(f"Every recommendation from reviews completed up to {at} has an action owned by an agency. "
              "Overdue means not completed and past its due date.")
        sup = self.action_grid()
        order = list(PUBLISHED_ACTION_STATES)
        names = {s: label(s) for s in order}
        bars = [(names.get(s), int(v)) for s in order if (v := self.own(sup, s)) != sym]
        hidden = [names.get(s) for s in order if self.own(sup, s) == sym]
        why = (f"not drawn because shown as {sym} ({self.cfg.suppression_low} to {self.cfg.suppression_high}, "
               "or hidden so that such a count cannot be worked out)")
        if any(v for _, v in bars):
            alt = (f"Bar chart of actions from review recommendations by state as at {at}, {self.name}: "
                   + "; ".join(f"{name} {v}" for name, v in bars)
                   + (f". {', '.join(hidden)}: {why}" if hidden else "")
                   + ". The figures follow the chart.")
            sec.chart(bar_chart(bars, "Actions", caption=f"Actions by state as at {at}, {self.name}", alt=alt))
            if hidden:
                sec.blocks.append(("chart_note", f"{', '.join(hidden)}: {why}."))
        sec.figures([(names[s], self.pair(sup, s)) for s in order])
        self.headline(f"Actions overdue as at {at}", self.own(sup, "overdue"), str(sup.loc[TOTAL, "overdue"]))

    def pair(self, sup: pd.DataFrame, col: str, region_value: str | None = None) -> list[tuple[str, str]]:
        """[(who, value)]: the region's figure first, then (on a partnership's page) its own."""
        region = str(sup.loc[TOTAL, col]) if region_value is None else region_value
        if self.is_region:
            return [(self.region, region)]
        return [(self.region, region), (self.name, str(sup.loc[self.audience, col]))]

    def briefing_list(self) -> None:
        self.briefings = briefings_for(self.s, self.cfg, self.audience)
        sec = Section("7-minute briefings")
        if not self.briefings:
            sec.p(f"No 7-minute briefing this time: no review was published in {self.period}"
                  + (" with findings to share." if self.s.get("briefings") else "."))
        else:
            sec.p(f"A 7-minute briefing for each review published in {self.period} is in the PDF attached to this "
                  "email: background, why it matters, what the review found, what needs to change, questions for "
                  "practitioners and links. Please share them with your teams.")
            sec.items([f"{b.title}. Themes: {', '.join(b.themes) or 'none recorded'}." for b in self.briefings])
        self.sections.append(sec)
        self.headlines.append({"label": f"Reviews published in {self.period} (7-minute briefings)",
                               "value": str(len(self.briefings))})

    def recurring_list(self) -> None:
        sec = Section("Themes that keep coming back")
        self.sections.append(sec)
        rec, n, word = self.recurring_intro(sec)
        entries = []
        for r in rec:
            where, when = self.recurring_where_when(r)
            mine = "" if self.is_region else (
                f" Found in {self.name}." if self.audience in r["partnerships"] else f" Not found in {self.name}.")
            entries.append(f"{r['label']}: found by {where}; in {len(r['periods'])} of the last {n} {word} "
                           f"({when}).{mine}")
        if entries:
            sec.items(entries)

    def overdue_by_agency(self) -> None:
        """Who needs to act: overdue actions by owner agency as at the period end, the region's
        figure first (and on a partnership's page its own). The grid is the XLSX's agency table,
        linked to the actions grid, so the figures here hide what it hides."""
        agencies = self.cats.get("owner_agency")
        if agencies is None or "overdue_by_agency" not in self.s["region"] or "actions" not in self.s["region"]:
            return
        g, sym, at = self.g, self.sym, long_date(self.end)
        sec = Section("Overdue actions by agency")
        if not agencies:
            sec.p(f"No action from a review completed up to {at} was overdue at that date.")
            self.sections.append(sec)
            return
        sup = g.agencies(self.s, self.action_grid())
        key_col = TOTAL if self.is_region else self.audience
        rows_for = [a for a in agencies if sup.loc[a, key_col] != "0"]
        rows_for.sort(key=lambda a: (_shown_order(sup.loc[a, key_col], sym),
                                     _shown_order(sup.loc[a, TOTAL], sym), a.casefold()))
        if not rows_for:
            sec.p(f"None of {self.name}'s actions was overdue at {at}.")
        else:
            sec.p(f"Actions not completed by their due date, as at {at}, by the agency that owns them "
                  f"({'the region' if self.is_region else 'the region, then ' + self.name}). Each partnership's "
                  "figures are in the spreadsheet (XLSX).")
            figures = [(a, [(self.region, str(sup.loc[a, TOTAL]))]
                        + ([] if self.is_region else [(self.name, str(sup.loc[a, self.audience]))]))
                       for a in rows_for]
            # An agency all of whose figures are c is named in a sentence (c is never zero), not a
            # line of c's: who has overdue actions is the learning, the count is in the key's range.
            counted = [(a, pairs) for a, pairs in figures if any(v != sym for _, v in pairs)]
            only_c = [a for a, pairs in figures if all(v == sym for _, v in pairs)]
            if counted:
                sec.figures(counted)
            if only_c:
                sec.p(f"{'Also with' if counted else 'With'} overdue actions: {_and_list(only_c)} (each shown as "
                      f"{sym} in the spreadsheet: from {self.cfg.suppression_low} to {self.cfg.suppression_high}, "
                      "or hidden so that such a count cannot be worked out).")
        self.sections.append(sec)

    # -- the counts, in short ------------------------------------------------------------------
    def in_numbers(self) -> None:
        """Over the 12 months to the period end, the region's figure first (and on a partnership's
        page its own after it); every full table, and the period on its own, are in the XLSX."""
        year = self.s.get("rolling")
        if not year or "rolling" not in self.s["region"]:
            return
        g, cats, sym = self.g, self.cats, self.sym
        start, end = date.fromisoformat(year["start"]), date.fromisoformat(year["end"])
        months = f"12 months to {long_date(end)}"
        sec = Section("In numbers")
        sec.p(f"Over the {months} ({long_date(start)} to {long_date(end)}). Each partnership's figures, "
              f"the figures for {self.period} alone and the full tables are in the spreadsheet (XLSX) of this bulletin.")
        # Each grid holds only what is published (the other outcomes as one unpublished column), so
        # a rare outcome does not hide the LCSPR count beside it. National review referrals (0 to 2 a
        # year across the region: always c over 12 months) are in the XLSX and the yearly report.
        roll = lambda p: p["rolling"]  # noqa: E731
        sup_n = g.by_partnership(("rolling", "notifications"),
                                 lambda p: {"all": roll(p)["notifications"]["total"]}, ["all"])
        def lcspr_and_rest(p: dict) -> dict[str, int]:
            r = roll(p)["rapid_reviews_completed"]
            return {"lcspr": r.get("lcspr", 0), "other": r["total"] - r.get("lcspr", 0)}

        sup_r = g.by_partnership(("rolling", "rapid_reviews"), lcspr_and_rest, ["lcspr", "other"],
                                 unpublished=("other",))
        sup_d = g.by_partnership(("rolling", "decided"),
                                 lambda p: {"all": roll(p)["practice_reviews_decided"]["total"]}, ["all"])
        sup_m = g.by_partnership(("rolling", "milestones"),
                                 lambda p: {"completed": roll(p)["reviews_completed"]}, ["completed"])
        region_n = round_to(str(sup_n.loc[TOTAL, TOTAL]), self.rounding, sym)
        col = lambda sup, c: str(sup.loc[TOTAL, c])  # noqa: E731 (the region's figure)
        own = self.own
        rows = [
            ("Serious incident notifications to the Panel", sup_n, TOTAL, region_n),
            ("Rapid reviews sent to the Panel", sup_r, TOTAL, None),
            ("Rapid reviews that recommended an LCSPR", sup_r, "lcspr", None),
            ("Practice reviews decided on", sup_d, TOTAL, None),
            ("Practice reviews completed", sup_m, "completed", None),
        ]
        table_rows = []
        for text, sup, c, region_value in rows:
            reg = region_value if region_value is not None else col(sup, c)
            cells = [reg] if self.is_region else [reg, own(sup, c)]
            table_rows.append((text, cells, False))
            self.headline(f"{text}, {months}", cells[-1], reg)
        conv = [_rate(col(sup_r, "lcspr"), col(sup_r, TOTAL), sym)]
        if not self.is_region:
            conv.append(_rate(own(sup_r, "lcspr"), own(sup_r, TOTAL), sym))
        # A share is shown only when both its counts are: one whose every figure would be c is
        # left out and said in words (a second c for the same fact tells the reader nothing).
        no_rates = []
        if all(v == sym for v in conv):
            no_rates.append("the conversion rate (rapid reviews to LCSPR), as the LCSPR count is shown as c")
        else:
            table_rows.insert(3, ("Conversion rate (rapid reviews to LCSPR)", conv, False))
        self.headline(f"Conversion rate (rapid reviews to LCSPR), {months}", conv[-1], conv[0])
        header = ["", self.region] if self.is_region else ["", self.region, self.name]
        header[0] = "Measure"
        sec.table(TableView(f"Practice review activity, {months}", header, table_rows, "In numbers"))
        if self.rounding:
            sec.note(f"{self.region} totals of notifications are rounded to the nearest {self.rounding}.")

        # Timeliness: every statutory deadline that fell due in the 12 months, all stages together
        # (a stage alone is single figures at real volumes: mostly c); by stage and period in the XLSX.
        statuses = cats.get("trend_status", ["met", "late", "open_overdue"])
        stages = cats["timeliness_stage"]
        sup = g.by_partnership(("rolling", "timeliness"),
                               lambda p: {st: sum(p["rolling"]["timeliness"][s][st] for s in stages) for st in statuses},
                               statuses, unpublished=tuple(st for st in statuses if st != "met"),
                               hide=self.trend_components)
        t_rows = [("Statutory deadlines due", self.pair(sup, TOTAL)),
                  ("Met on time", self.pair(sup, "met")),
                  ("Share met on time", [(who, _rate(met, due, sym)) for (who, met), (_, due)
                                         in zip(self.pair(sup, "met"), self.pair(sup, TOTAL))])]
        sec.h3(f"Statutory timeliness, deadlines due in the {months}")
        for text, pairs in t_rows:
            self.headline(f"{text}, {months}", pairs[-1][1], pairs[0][1])
        if all(v == sym for _, v in t_rows[-1][1]):
            no_rates.append("the share met on time, as a count it needs is shown as c")
            t_rows = t_rows[:-1]
        sec.figures(t_rows)
        sec.note("All four stages together: notification to the Panel, rapid review, LCSPR completion and the "
                 "final report before publication. Each stage, period by period, is in the spreadsheet.")
        if no_rates:
            sec.note(f"Not shown: {'; '.join(no_rates)}.")
        self.sections.append(sec)

    def trend_components(self, counts: pd.DataFrame) -> set[tuple[str, str]]:
        """The 12-month timeliness cells to hide because the XLSX's trend tables, when their
        periods fill the same 12 months, add up to them with exactly one part hidden: that part
        would be the 12-month figure less the shown ones."""
        year, trend = self.s.get("rolling"), self.trend
        if not year or not trend or "timeliness_trend" not in self.s["region"]:
            return set()
        if (trend[0]["start"], trend[-1]["end"]) != (year["start"], year["end"]):
            return set()
        statuses = self.cats.get("trend_status", ["met", "late", "open_overdue"])
        grids = [self.g.by_partnership(("trend", s, k), lambda p, s=s, k=k: p["timeliness_trend"][s][k], statuses)
                 for s in self.cats["timeliness_stage"] for k in range(len(trend))]
        return {(r, c) for r in [*self.g.codes, TOTAL] for c in ("met", TOTAL)
                if sum(str(grid.loc[r, c]) == self.sym for grid in grids) == 1}

    def key_to_symbol(self) -> None:
        """The key to the suppression symbol, right after the first block that shows it."""
        sym = self.sym
        for sec in self.sections:
            for i, (kind, v) in enumerate(sec.blocks):
                shown = (kind == "table" and any(c == sym for _, cells, _ in v.rows for c in cells)) or \
                        (kind == "figures" and any(val == sym for _, pairs in v for _, val in pairs))
                if shown:
                    c = self.cfg
                    sec.blocks.insert(i + 1, ("key", f"{sym} = a count from {c.suppression_low} to "
                                                     f"{c.suppression_high}, or one hidden so that such a count "
                                                     "cannot be worked out. It protects the children and families "
                                                     "concerned (see About these figures)."))
                    return


    def about(self) -> None:
        c = self.cfg
        sec = Section("About these figures")
        sec.p(f"Counts from {c.suppression_low} to {c.suppression_high} are shown as '{c.suppression_symbol}' "
              "to protect the children and families concerned. Some other counts are also shown as "
              f"'{c.suppression_symbol}' so that a hidden count cannot be worked out from a total. Zero is shown. "
              "A share (per cent) is shown only when both of its counts are.")
        if self.rounding:
            sec.p(f"{self.region} totals of notifications are rounded to the nearest {self.rounding}.")
        sec.p("Free text from reviews is checked for personal details before it is included; anything found is "
              "shown as [redacted].")
        sec.p("These counts describe safeguarding activity; they are not performance measures.")
        self.sections.append(sec)


# --------------------------------------------------------------------------------------------
# Rendering


def render_briefing(b: Briefing, env: Environment | None = None, *, region: str = "") -> RenderedBriefing:
    env = env or templates()
    ctx = {"b": b, "region": region}
    html = env.get_template("briefing.html.j2").render(ctx)
    text = env.get_template("briefing.txt.j2").render(ctx)
    return RenderedBriefing(b.slug, b.partnership_code, b.review_id, b.title, html, text)


POOL_MIN_AUDIENCES = 8  # starting a worker costs ~2 s of CPU (its imports), about two bulletins


class RenderError(RuntimeError):
    """Rendering one audience's bulletin failed in a worker process; the message names the audience."""


def workbook_notes(summary: dict, cfg: Config) -> list[str]:
    """The notes sheet of every audience's XLSX."""
    return [
        f"Period: {summary['period']['start']} to {summary['period']['end']}; as at {summary['as_of']}.",
        f"Counts from {cfg.suppression_low} to {cfg.suppression_high} are shown as '{cfg.suppression_symbol}', with "
        "secondary suppression so that no hidden count can be worked out from the totals. Zero is shown.",
        "These counts describe safeguarding activity; they are not performance measures.",
    ]


def workbook_bytes(summary: dict, cfg: Config, r: RenderedBulletin) -> bytes:
    """The XLSX of a rendered bulletin (stamped with the period's end, so the bytes are stable)."""
    from reviews.learning.exports import build_workbook

    return build_workbook(r.tables, title=r.subject, notes=workbook_notes(summary, cfg),
                          stamp=date.fromisoformat(summary["period"]["end"]))


def render_bulletins(summary: dict, cfg: Config, audiences: list[str]) -> dict[str, RenderedBulletin]:
    """render_bulletin for each audience, suppressing each measure's grid once for all of them.

    With `cfg.summary.workers` above 1 and at least POOL_MIN_AUDIENCES audiences, they are rendered
    in a pool of spawned processes, each also building its XLSX (`RenderedBulletin.xlsx`): the
    bulletins are pure functions of their inputs, so they are the same whichever process draws them.
    """
    workers = min(cfg.summary.workers, len(audiences))
    if workers > 1 and len(audiences) >= POOL_MIN_AUDIENCES:
        codes = [p["code"] for p in summary["partnerships"]]
        for a in audiences:  # the same error as in process, before any worker starts
            if a != REGION and a not in codes:
                raise ConfigError(f"unknown bulletin audience {a!r}: use 'region' or one of {codes}")
        return _render_in_pool(summary, cfg, audiences, workers)
    grids = _Grids(summary, cfg)
    return {a: render_bulletin(summary, cfg, a, _grids=grids) for a in audiences}


_WORKER: dict[str, Any] = {}  # in a pool worker: what every audience is rendered from


def _worker_init(ready, path: str) -> None:
    """Wait for the inputs (read once per worker, not once per audience): the summary, config
    and the suppressed grids, which the parent makes while the workers import."""
    import pickle

    ready.wait()
    try:
        summary, cfg, made = pickle.loads(Path(path).read_bytes())
    except FileNotFoundError:
        raise RenderError("the parent process gave no inputs to render from") from None
    grids = _Grids(summary, cfg)
    grids._made.update(made)
    _WORKER.update(summary=summary, cfg=cfg, grids=grids)


def _worker_render(audience: str) -> RenderedBulletin:
    """One audience's bulletin and its XLSX, in a pool worker (an error here reaches the caller)."""
    w = _WORKER
    return _with_workbook(w["summary"], w["cfg"], render_bulletin(w["summary"], w["cfg"], audience,
                                                                  _grids=w["grids"]))


def _with_workbook(summary: dict, cfg: Config, r: RenderedBulletin) -> RenderedBulletin:
    return dataclasses.replace(r, xlsx=workbook_bytes(summary, cfg, r))


def _rendered(audience: str, render: Callable[[], RenderedBulletin]) -> RenderedBulletin:
    """render(), its failure named by audience (a worker's traceback stays in the worker)."""
    try:
        return render()
    except Exception as exc:
        raise RenderError(f"rendering the learning bulletin for audience {audience!r} failed: "
                          f"{type(exc).__name__}: {exc}") from exc


def _render_in_pool(summary: dict, cfg: Config, audiences: list[str], workers: int) -> dict[str, RenderedBulletin]:
    """Render the audiences in `workers` spawned processes (safe inside a forked Airflow task).

    The first audience is rendered here while the workers start: that makes every suppressed
    grid (a few seconds nationally), which the workers then receive instead of each making them.
    """
    import multiprocessing
    import pickle
    import tempfile
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    first, rest = audiences[0], audiences[1:]
    out: dict[str, RenderedBulletin] = {}
    with tempfile.TemporaryDirectory(prefix="bulletins-") as tmp:
        path = Path(tmp) / "inputs.pickle"
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init,
                                 initargs=(ready, str(path))) as pool:
            futures = {a: pool.submit(_worker_render, a) for a in rest}
            try:
                try:
                    grids = _Grids(summary, cfg)
                    mine = _rendered(first, lambda: render_bulletin(summary, cfg, first, _grids=grids))
                    path.write_bytes(pickle.dumps((summary, cfg, grids._made), pickle.HIGHEST_PROTOCOL))
                finally:
                    ready.set()  # the workers wait for this; with no inputs written they stop
                out[first] = _rendered(first, lambda: _with_workbook(summary, cfg, mine))
                for a, fut in futures.items():
                    out[a] = _rendered(a, fut.result)
            finally:
                for fut in futures.values():
                    fut.cancel()
    return {a: out[a] for a in audiences}


def render_bulletin(summary: dict, cfg: Config, audience: str = REGION,
                    *, _grids: _Grids | None = None) -> RenderedBulletin:
    """The bulletin for 'region' (all partnerships side by side) or one partnership code."""
    codes = [p["code"] for p in summary["partnerships"]]
    if audience != REGION and audience not in codes:
        raise ConfigError(f"unknown bulletin audience {audience!r}: use 'region' or one of {codes}")
    b = _Builder(summary, cfg, audience, _grids)
    b.build()
    title = f"{b.name} practice review learning bulletin"
    update = summary.get("update")  # publication._updated: data arrived since an earlier version
    subject = f"{title}: {b.period}" + (" (updated)" if update else "")
    env = templates()
    briefings = tuple(render_briefing(x, env, region=b.region) for x in b.briefings)
    intro = (
        f"Learning from serious incidents and practice reviews across {b.region}'s five safeguarding partnerships"
        if b.is_region else
        f"{b.name}'s figures beside {b.region}'s, and learning from {b.name}'s reviews"
    )
    context: dict[str, Any] = {
        "title": title,
        "subject": subject,
        "period": b.period,
        "region": b.region,
        "intro": intro + f", {b.period}.",
        "headlines": b.headlines,
        "sections": b.sections,
        "briefings": b.briefings,
        "notices": summary.get("data_notices") or [],
        "update": update,
        "print_mode": False,
    }
    html = env.get_template("bulletin.html.j2").render(context)
    text = env.get_template("bulletin.txt.j2").render(context)
    print_html = env.get_template("bulletin.html.j2").render({**context, "print_mode": True})
    digest = hashlib.sha256((html + text + print_html).encode("utf-8")).hexdigest()
    tables = tuple(b.workbook_tables)
    return RenderedBulletin(audience=audience, subject=subject, html=html, text=text, content_hash=digest,
                            print_html=print_html, tables=tables, briefings=briefings, title=title,
                            headlines=tuple(b.headlines))
