"""The safeguarding partners' yearly report: a financial year (1 April to 31 March) and the four
before it, per partnership and for the region.

Working Together asks the safeguarding partners to publish a report each year, scrutinised by
the councils' overview and scrutiny committees; it needs financial-year figures and trends
longer than a bulletin's four periods. Built by the `yearly_report` DAG in May for the year just
ended; stored and circulated like the bulletins (audiences `yearly:region` and `yearly:{code}` in
`bulletins`, sends in `circulation_log`); see docs/yearly_report.md.

Figures (each per partnership and financial year, over the five years ending with the report's):
- notifications by type (dated by `notified_date`, else `aware_date`: as the bulletins count them);
- rapid reviews sent to the Panel by outcome (`completed_date`), the conversion to LCSPR (the
  share of them with outcome `lcspr`) and the Panel's decisions on the same rapid reviews
  (`panel_decision`: agree, disagree, national review; blank is "awaiting or not recorded");
- practice reviews decided by type (`decision_date`): national reviews are the `national` ones;
- statutory timeliness by stage: the cases due in the year, met, late, or still open past their
  due date at its end, judged with reviews.timeliness.compute as of the year's last day (the
  bulletins' trend, learning.summary._timeliness_trend, over years instead of quarters);
- findings by learning theme, dated by their review's completion (learning.summary._theme_counts);
- the state of actions from recommendations as at each year's end (learning.summary._actions):
  completed, overdue, in progress, open;
- for the report's year, DfE-style characteristics of the children notified: age band (under 1,
  1-4, 5-9, 10-15, 16-17), sex, ethnic group, child protection plan, looked after.

Disclosure control: every count goes through reviews.privacy.suppression, one grid per measure
and year (partnerships by categories, with totals), and every audience reads slices of the same
grids. Grids that publish the same totals are suppressed together (`_suppress_linked`): the
Panel's decisions and the outcomes of the same rapid reviews, and each characteristic and the
notifications by type of the report's year, share their per-partnership totals, so a total hidden
in one is hidden in all and none of them can be solved from the others' totals. No total over the
five years is published (it would tie the years' grids together).

No Airflow here; pandas, openpyxl and matplotlib are imported by the functions that need them.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, case, func, insert, literal, select

from reviews.core import warehouse as wh
from reviews.core.audit import audit_now
from reviews.core.config import Config
from reviews.core.reporting_periods import Period, long_date
from reviews.core.template import NOTIFICATIONS, PRACTICE_REVIEWS, RAPID_REVIEWS

log = logging.getLogger(__name__)

SCHEMA = "yearly_report/1"
YEARS = 5
KIND = "yearly"  # audiences `yearly:region` and `yearly:{code}` in `bulletins`
REGION = "region"
NOT_RECORDED = "not_recorded"
STAGES = ("notification", "rapid_review", "lcspr_completion", "publication_notice")
TIMELINESS_STATUSES = ("met", "late", "open_overdue")
ACTION_STATES = ("completed", "overdue", "in_progress", "open")
PANEL_DECISIONS = ("agree", "disagree", "national_review")
AGE_BANDS = (("under_1", 0, 0), ("1_4", 1, 4), ("5_9", 5, 9), ("10_15", 10, 15), ("16_17", 16, 17))
ETHNIC_GROUPS = ("white", "mixed", "asian", "black", "other")
YES_NO = ("Y", "N", "unknown")
CHARACTERISTICS = ("age_band", "sex", "ethnic_group", "cp_plan", "looked_after")

LABELS = {
    "under_1": "Under 1", "1_4": "1 to 4", "5_9": "5 to 9", "10_15": "10 to 15", "16_17": "16 to 17",
    "female": "Female", "male": "Male",
    "Y": "Yes", "N": "No", "unknown": "Not known", NOT_RECORDED: "Not recorded",
    "agree": "Agreed", "disagree": "Disagreed", "national_review": "National review",
    "age_band": "age band", "sex": "sex", "ethnic_group": "ethnic group",
    "cp_plan": "child protection plan", "looked_after": "looked after",
}
PANEL_LABELS = {NOT_RECORDED: "Awaiting or not recorded"}
ETHNIC_LABELS = {"white": "White", "mixed": "Mixed or multiple", "asian": "Asian or Asian British",
                 "black": "Black or Black British", "other": "Other ethnic group"}


# --------------------------------------------------------------------------------------------
# Financial years


def financial_year(end_year: int) -> Period:
    """The financial year ending 31 March of `end_year` (2025: 1 April 2024 to 31 March 2025)."""
    return Period(date(end_year - 1, 4, 1), date(end_year, 3, 31), "year")


def year_label(p: Period) -> str:
    """'2024-25'."""
    return f"{p.start.year}-{p.end.year % 100:02d}"


def financial_year_ended_by(day: date) -> Period:
    """The latest financial year that has ended by `day` (its last day counts as ended):
    1 May 2025 -> 2024-25; 31 March 2025 -> 2024-25; 30 March 2025 -> 2023-24."""
    return financial_year(day.year if day >= date(day.year, 3, 31) else day.year - 1)


def five_years(report_year: Period) -> list[Period]:
    """The YEARS financial years ending with `report_year`, oldest first."""
    return [financial_year(report_year.end.year - k) for k in range(YEARS - 1, -1, -1)]


# --------------------------------------------------------------------------------------------
# Compiling the figures (unsuppressed)


def age_band(age) -> str:
    if age is None:
        return NOT_RECORDED
    for code, low, high in AGE_BANDS:
        if low <= int(age) <= high:
            return code
    return NOT_RECORDED


_ETHNIC_WORDS = (  # first match wins: 'mixed' before the groups it may name
    ("mixed", ("mixed", "multiple", "dual heritage")),
    ("white", ("white", "irish", "gypsy", "roma", "traveller")),
    ("asian", ("asian", "indian", "pakistani", "bangladeshi", "chinese")),
    ("black", ("black", "african", "caribbean")),
    ("other", ("other", "arab", "any other")),
)


def ethnic_group(text: str | None) -> str:
    """The DfE top-level ethnic group of a partnership's free-text ethnicity ('White British' ->
    'white'); blank, 'not known', 'refused' and anything unrecognised are not recorded."""
    words = " ".join(str(text or "").lower().replace("-", " ").split())
    if not words or any(w in words for w in ("not known", "not recorded", "refused", "unknown", "not stated")):
        return NOT_RECORDED
    for group, keys in _ETHNIC_WORDS:
        if any(k in words for k in keys):
            return group
    return NOT_RECORDED


def _categories(codes: tuple[str, ...], seen: set) -> list[str]:
    """Template codes in template order, then anything else found, then 'not recorded' if blank."""
    extra = sorted(str(c) for c in seen if c is not None and c not in codes)
    return list(codes) + extra + ([NOT_RECORDED] if None in seen else [])


def _year_bucket(col, years: list[Period]):
    return case(*((and_(col >= p.start, col <= p.end), literal(k)) for k, p in enumerate(years)), else_=literal(-1))


def _by_year(conn, table, date_col, key_col, years: list[Period], codes: list[str]) -> dict[tuple, int]:
    """(code, year index, key) -> count of rows dated in one of the years, in one query."""
    bucket = _year_bucket(date_col, years)
    stmt = (select(table.c.partnership_code, bucket, key_col, func.count())
            .where(table.c.partnership_code.in_(codes), date_col >= years[0].start, date_col <= years[-1].end)
            .group_by(table.c.partnership_code, bucket, key_col))
    return {(p, int(k), v): int(n) for p, k, v, n in conn.execute(stmt) if int(k) >= 0}


def _characteristics(conn, year: Period, codes: list[str]) -> dict[str, dict[tuple[str, str], int]]:
    """characteristic -> (code, category) -> notifications of the year."""
    nt = wh.notifications
    when = func.coalesce(nt.c.notified_date, nt.c.aware_date)
    stmt = select(nt.c.partnership_code, nt.c.age_years, nt.c.sex, nt.c.ethnicity, nt.c.cp_plan,
                  nt.c.looked_after).where(nt.c.partnership_code.in_(codes), when >= year.start, when <= year.end)
    out: dict[str, dict[tuple[str, str], int]] = {c: {} for c in CHARACTERISTICS}
    for code, age, sex, ethnicity, cp, la in conn.execute(stmt):
        for name, value in (("age_band", age_band(age)), ("sex", sex or NOT_RECORDED),
                            ("ethnic_group", ethnic_group(ethnicity)), ("cp_plan", cp or NOT_RECORDED),
                            ("looked_after", la or NOT_RECORDED)):
            out[name][(code, value)] = out[name].get((code, value), 0) + 1
    return out


def _measure(counts: dict[tuple, int], codes: list[str], n_years: int, cats: list[str]) -> list[dict]:
    """Per year: {code: {category: n}} (blank keys counted as not recorded)."""
    out = [{c: dict.fromkeys(cats, 0) for c in codes} for _ in range(n_years)]
    for (code, k, key), n in counts.items():
        out[k][code][NOT_RECORDED if key is None else str(key)] += n
    return out


def compile_yearly(engine: Engine, cfg: Config, report_year: Period) -> dict:
    """The report's figures, unsuppressed and JSON-ready: per measure, a list over the five
    years (oldest first) of {partnership code: {category: count}}; see the module notes."""
    from reviews.learning.summary import _actions, _theme_counts, _timeliness_trend, theme_label

    years = five_years(report_year)
    codes = list(cfg.partnerships)
    nt, rr, pr = wh.notifications, wh.rapid_reviews, wh.practice_reviews
    with engine.connect() as conn:
        notif = _by_year(conn, nt, func.coalesce(nt.c.notified_date, nt.c.aware_date), nt.c.incident_type, years, codes)
        rapid = _by_year(conn, rr, rr.c.completed_date, rr.c.outcome, years, codes)
        panel = _by_year(conn, rr, rr.c.completed_date, rr.c.panel_decision, years, codes)
        decided = _by_year(conn, pr, pr.c.decision_date, pr.c.review_type, years, codes)
        trend = _timeliness_trend(conn, cfg, years, codes)
        _to_date, _in_year, themes_by_year = _theme_counts(conn, report_year.start, report_year.end, years, codes)
        actions = [_actions(conn, p.end, codes) for p in years]
        chars = _characteristics(conn, report_year, codes)

    cats = {
        "notifications": _categories(NOTIFICATIONS.column("incident_type").codes, {k for *_, k in notif}),
        "rapid_reviews": _categories(RAPID_REVIEWS.column("outcome").codes, {k for *_, k in rapid}),
        "panel_decisions": [*PANEL_DECISIONS, NOT_RECORDED],
        "practice_reviews": _categories(PRACTICE_REVIEWS.column("review_type").codes, {k for *_, k in decided}),
        "timeliness": list(TIMELINESS_STATUSES),
        "actions": list(ACTION_STATES),
        "age_band": [b[0] for b in AGE_BANDS] + [NOT_RECORDED],
        "sex": [*NOTIFICATIONS.column("sex").codes, NOT_RECORDED],
        "ethnic_group": [*ETHNIC_GROUPS, NOT_RECORDED],
        "cp_plan": [*YES_NO, NOT_RECORDED],
        "looked_after": [*YES_NO, NOT_RECORDED],
    }
    theme_totals: dict[str, int] = {}
    for (_c, t), counts in themes_by_year.items():
        theme_totals[t] = theme_totals.get(t, 0) + sum(counts)
    themes = sorted(theme_totals, key=lambda t: (-theme_totals[t], t))  # most findings over the five years first
    n = len(years)
    measures: dict[str, Any] = {
        "notifications": _measure(notif, codes, n, cats["notifications"]),
        "rapid_reviews": _measure(rapid, codes, n, cats["rapid_reviews"]),
        "panel_decisions": _measure(panel, codes, n, cats["panel_decisions"]),
        "practice_reviews": _measure(decided, codes, n, cats["practice_reviews"]),
        "timeliness": {stage: [{c: {st: trend.get((c, stage, k, st), 0) for st in TIMELINESS_STATUSES} for c in codes}
                               for k in range(n)] for stage in STAGES},
        "themes": [{c: {t: themes_by_year.get((c, t), [0] * n)[k] for t in themes} for c in codes} for k in range(n)],
        "actions": [{c: {s: actions[k][c][s] for s in ACTION_STATES} for c in codes} for k in range(n)],
        "characteristics": {name: {c: {cat: chars[name].get((c, cat), 0) for cat in cats[name]} for c in codes}
                            for name in CHARACTERISTICS},
    }
    return {
        "schema": SCHEMA,
        "region_name": cfg.region_name,
        "year": {"start": report_year.start.isoformat(), "end": report_year.end.isoformat(),
                 "label": year_label(report_year)},
        "years": [{"start": p.start.isoformat(), "end": p.end.isoformat(), "label": year_label(p)} for p in years],
        "partnerships": [{"code": c, "name": p.name} for c, p in cfg.partnerships.items()],
        "categories": cats,
        "themes": [{"theme": t, "label": theme_label(t)} for t in themes],
        "measures": measures,
        "notes": {
            "notifications": "counted by notified_date, or aware_date when blank",
            "rapid_reviews": "completed_date (sent to the Panel) in the year",
            "panel_decisions": "panel_decision of the rapid reviews completed in the year",
            "practice_reviews": "decision_date in the year",
            "timeliness": "compute_timeliness as of each year's end: cases due in the year by status",
            "themes": "findings dated by their review's completed_date",
            "actions": "recommendations of reviews completed by each year's end, by their action's state then",
            "characteristics": "notifications of the report's year",
        },
    }


# --------------------------------------------------------------------------------------------
# Suppression: every grid once, linked grids together


def _suppress_linked(frames: list, cfg: Config) -> list:
    """Suppress grids (DataFrames of inner counts, the same partnerships as rows) that publish the
    same row totals: a total hidden in any is hidden in all (`suppression_mask`'s `hidden`, which
    also runs its secondary suppression and audit around it), until no grid hides a new one."""
    from reviews.privacy.suppression import suppression_mask, with_totals

    low, high = cfg.suppression_low, cfg.suppression_high
    grids = [with_totals(df.fillna(0).astype("int64").to_numpy()) for df in frames]
    hidden_rows: set[int] = set()
    while True:  # ends: the hidden totals only grow, and there are finitely many
        masks = [suppression_mask(g, low, high, hidden=frozenset((i, g.shape[1] - 1) for i in hidden_rows))
                 for g in grids]
        now = {i for m in masks for i in range(m.shape[0]) if m[i, -1]}
        if now == hidden_rows:
            break
        hidden_rows = now
    return [_published(df, g, m, cfg.suppression_symbol) for df, g, m in zip(frames, grids, masks)]


def _published(df, grid, mask, symbol: str):
    import pandas as pd

    from reviews.privacy.suppression import TOTAL

    cells = [[symbol if mask[i, j] else str(int(grid[i, j])) for j in range(grid.shape[1])]
             for i in range(grid.shape[0])]
    return pd.DataFrame(cells, index=[*df.index, TOTAL], columns=[*df.columns, TOTAL], dtype=object)


@dataclass
class Grids:
    """Every published grid of a report, by name (e.g. ('notifications', 4)), suppressed once;
    `links` names the groups of grids that share their totals (suppressed together)."""

    published: dict[tuple, Any] = field(default_factory=dict)
    links: list[list[tuple]] = field(default_factory=list)


def suppressed_grids(report: dict, cfg: Config) -> Grids:
    import pandas as pd

    codes = [p["code"] for p in report["partnerships"]]
    cats = report["categories"]
    m = report["measures"]
    last = len(report["years"]) - 1
    out = Grids()

    def frame(counts: dict, columns: list[str]):
        return pd.DataFrame([[int(counts[c][x]) for x in columns] for c in codes], index=codes, columns=columns)

    def add(group: list[tuple[tuple, Any]]) -> None:
        for key, sup in zip([k for k, _ in group], _suppress_linked([f for _, f in group], cfg)):
            out.published[key] = sup
        if len(group) > 1:
            out.links.append([k for k, _ in group])

    for k in range(len(report["years"])):
        notif = [(("notifications", k), frame(m["notifications"][k], cats["notifications"]))]
        if k == last:
            notif += [(("characteristics", name), frame(m["characteristics"][name], cats[name]))
                      for name in CHARACTERISTICS]
        add(notif)
        add([(("rapid_reviews", k), frame(m["rapid_reviews"][k], cats["rapid_reviews"])),
             (("panel_decisions", k), frame(m["panel_decisions"][k], cats["panel_decisions"]))])
        add([(("practice_reviews", k), frame(m["practice_reviews"][k], cats["practice_reviews"]))])
        add([(("actions", k), frame(m["actions"][k], cats["actions"]))])
        for stage in STAGES:
            add([(("timeliness", stage, k), frame(m["timeliness"][stage][k], cats["timeliness"]))])
        themes = [t["theme"] for t in report["themes"]]
        if themes:  # themes by partnership: rows are themes (no partnership totals shared)
            df = pd.DataFrame([[int(m["themes"][k][c][t]) for c in codes] for t in themes], index=themes, columns=codes)
            add([(("themes", k), df)])
    return out


# --------------------------------------------------------------------------------------------
# Rendering


@dataclass(frozen=True)
class RenderedReport:
    audience: str
    subject: str
    title: str
    html: str
    text: str
    print_html: str
    content_hash: str
    tables: tuple = ()


class _Report:
    """The sections of one audience's report, read from the shared suppressed grids."""

    def __init__(self, report: dict, cfg: Config, audience: str, grids: Grids):
        from reviews.privacy.suppression import TOTAL

        self.r, self.cfg, self.g, self.audience = report, cfg, grids.published, audience
        self.sym = cfg.suppression_symbol
        self.region = report["region_name"] or cfg.region_name
        self.names = {p["code"]: p["name"] for p in report["partnerships"]}
        self.codes = list(self.names)
        self.is_region = audience == REGION
        self.name = self.region if self.is_region else self.names[audience]
        self.row = TOTAL if self.is_region else audience
        self.years = [y["label"] for y in report["years"]]
        self.last = len(self.years) - 1
        self.year = report["year"]["label"]
        self.end = date.fromisoformat(report["year"]["end"])
        self.headlines: list[dict] = []
        self.sections: list = []

    def cell(self, key: tuple, col: str, row: str | None = None) -> str:
        sup = self.g[key]
        return str(sup.loc[row or self.row, col]) if col in sup.columns else "0"

    def headline(self, text: str, key: tuple, col: str) -> None:
        from reviews.privacy.suppression import TOTAL

        mine = self.cell(key, col)
        value = mine if self.is_region else f"{mine} ({self.region}: {self.cell(key, col, TOTAL)})"
        self.headlines.append({"label": text, "value": value})

    def by_year(self, measure: str, cats: list[str], caption: str, first: str, sheet: str, names=None):
        """Rows: the five years; columns: the categories and the total, for this audience (and,
        on a partnership's report, the region's total beside it)."""
        from reviews.learning.bulletin import TableView, label
        from reviews.privacy.suppression import TOTAL

        names = names or {}
        header = [first, *(names.get(c) or LABELS.get(c) or label(c) for c in cats), "Total"]
        if not self.is_region:
            header.append(f"{self.region} total")
        rows = []
        for k, y in enumerate(self.years):
            cells = [self.cell((measure, k), c) for c in cats] + [self.cell((measure, k), TOTAL)]
            if not self.is_region:
                cells.append(self.cell((measure, k), TOTAL, TOTAL))
            rows.append((y, cells, False))
        return TableView(caption, header, rows, sheet)

    def by_partnership(self, key: tuple, cats: list[str], caption: str, sheet: str, names=None):
        """The region's full grid (partnerships by categories with totals), or, on a partnership's
        report, its column beside the region's."""
        from reviews.learning.bulletin import TableView, label
        from reviews.privacy.suppression import TOTAL

        names = names or {}
        sup = self.g[key]
        lab = {c: names.get(c) or LABELS.get(c) or label(c) for c in cats}
        if self.is_region:
            rows = [(self.names[c], [str(sup.loc[c, x]) for x in [*cats, TOTAL]], False) for c in self.codes]
            rows.append((f"{self.region} (all partnerships)", [str(sup.loc[TOTAL, x]) for x in [*cats, TOTAL]], True))
            return TableView(caption, ["Partnership", *(lab[c] for c in cats), "Total"], rows, sheet)
        rows = [(lab[c], [str(sup.loc[self.audience, c]), str(sup.loc[TOTAL, c])], False) for c in cats]
        rows.append(("Total", [str(sup.loc[self.audience, TOTAL]), str(sup.loc[TOTAL, TOTAL])], True))
        return TableView(caption, ["Category", self.name, self.region], rows, sheet)

    def build(self) -> None:
        from reviews.learning.bulletin import Section, TableView, _rate
        from reviews.privacy.suppression import TOTAL

        cats, last, year = self.r["categories"], self.last, self.year
        span = f"{self.years[0]} to {self.years[-1]}"
        self.headline(f"Serious incident notifications in {year}", ("notifications", last), TOTAL)
        self.headline(f"Rapid reviews sent to the Panel in {year}", ("rapid_reviews", last), TOTAL)
        conv = _rate(self.cell(("rapid_reviews", last), "lcspr"), self.cell(("rapid_reviews", last), TOTAL), self.sym)
        self.headlines.append({"label": f"Rapid reviews that recommended an LCSPR in {year} (conversion)",
                               "value": conv})
        self.headline(f"National reviews decided in {year}", ("practice_reviews", last), "national")
        self.headline(f"Actions overdue as at {long_date(self.end)}", ("actions", last), "overdue")

        sec = Section("Serious incident notifications")
        sec.p("Notifications to the Child Safeguarding Practice Review Panel, counted by the date notified "
              "(or the date the local authority became aware, when that is blank), by financial year.")
        sec.table(self.by_year("notifications", cats["notifications"],
                               f"Serious incident notifications by type, {self.name}, {span}", "Year",
                               "Notifications"))
        if self.is_region:
            rows = [(self.names[c], [self.cell(("notifications", k), TOTAL, c) for k in range(len(self.years))], False)
                    for c in self.codes]
            rows.append((f"{self.region} (all partnerships)",
                         [self.cell(("notifications", k), TOTAL, TOTAL) for k in range(len(self.years))], True))
            sec.table(TableView(f"Serious incident notifications by partnership, {span}", ["Partnership", *self.years],
                                rows, "Notifications by area"))
        self.sections.append(sec)

        sec = Section("Rapid reviews and the Panel's decisions")
        sec.p("Rapid reviews sent to the Panel in each year, by their recommendation; the conversion rate is the "
              "share that recommended a local child safeguarding practice review (LCSPR), shown only when both "
              "of its counts can be published. The Panel's decision on the same rapid reviews follows.")
        sec.table(self.by_year("rapid_reviews", cats["rapid_reviews"],
                               f"Rapid reviews by outcome, {self.name}, {span}", "Year", "Rapid reviews"))
        rows = []
        for k, y in enumerate(self.years):
            total, lcspr = self.cell(("rapid_reviews", k), TOTAL), self.cell(("rapid_reviews", k), "lcspr")
            rows.append((y, [total, lcspr, _rate(lcspr, total, self.sym)], False))
        sec.table(TableView(f"Rapid review to LCSPR conversion, {self.name}, {span}",
                            ["Year", "Rapid reviews", "Recommended an LCSPR", "Conversion rate"], rows, "Conversion"))
        sec.table(self.by_year("panel_decisions", cats["panel_decisions"],
                               f"The Panel's decisions on the rapid reviews, {self.name}, {span}", "Year",
                               "Panel decisions", PANEL_LABELS))
        self.sections.append(sec)

        sec = Section("Practice reviews and national reviews")
        sec.p("Practice reviews by the date of the decision to review. National reviews are commissioned by "
              "the Panel, not carried out by the partnership.")
        sec.table(self.by_year("practice_reviews", cats["practice_reviews"],
                               f"Practice reviews decided by type, {self.name}, {span}", "Year", "Reviews decided"))
        self.sections.append(sec)
        self.timeliness(span)
        self.themes(span)

        sec = Section("Recommendations and actions")
        sec.p("Actions from the recommendations of reviews completed by each year's end, in the state they were in "
              "at that year's end (31 March): overdue means not completed and past its due date.")
        sec.table(self.by_year("actions", cats["actions"], f"Actions by state at each year's end, {self.name}, {span}",
                               "Year (as at 31 March)", "Actions"))
        self.sections.append(sec)

        sec = Section(f"Children notified in {year}")
        sec.p("The children of the serious incident notifications of the year, as the Department for Education's "
              "serious incident tables describe them.")
        for name in CHARACTERISTICS:
            sec.table(self.by_partnership(("characteristics", name), cats[name],
                                          f"Notifications in {year} by {LABELS[name]}", f"By {LABELS[name]}",
                                          ETHNIC_LABELS if name == "ethnic_group" else None))
        self.sections.append(sec)
        self.about()

    def timeliness(self, span: str) -> None:
        from reviews.learning.bulletin import SHORT_STAGE, Section, TableView, _pct_value, _rate, label
        from reviews.learning.charts import line_chart
        from reviews.privacy.suppression import TOTAL

        sec = Section("Statutory timeliness")
        sec.p("For each stage and year: the cases due in the year, met on time, late, or still open past their due "
              "date at the year's end (judged as at 31 March). On time is met as a share of those due.")
        tables, series = [], []
        for stage in STAGES:
            rows, shares = [], []
            for k, y in enumerate(self.years):
                key = ("timeliness", stage, k)
                due, met = self.cell(key, TOTAL), self.cell(key, "met")
                on_time = _rate(met, due, self.sym)
                cells = [due, met, self.cell(key, "late"), self.cell(key, "open_overdue"), on_time]
                if not self.is_region:
                    cells.append(_rate(self.cell(key, "met", TOTAL), self.cell(key, TOTAL, TOTAL), self.sym))
                rows.append((y, cells, False))
                shares.append(_pct_value(on_time))
            header = ["Year", "Due", "Met", "Late", "Still open past due", "On time"]
            if not self.is_region:
                header.append(f"{self.region} on time")
            tables.append(TableView(f"{label(stage)}: {self.name}, {span}", header, rows, f"Trend {SHORT_STAGE[stage]}"))
            series.append((SHORT_STAGE[stage], shares))
        drawn = [(n, v) for n, v in series if sum(x is not None for x in v) >= 2]
        left_out = [n for n, v in series if sum(x is not None for x in v) < 2]
        if drawn:
            parts = ["{}: {}".format(n, ", ".join(f"{y} {x:.0f}%" if x is not None else f"{y} not shown"
                                                  for y, x in zip(self.years, v))) for n, v in series]
            alt = (f"Line chart of the share of cases met on time, by stage, {self.name}, {span}. " + "; ".join(parts)
                   + f". 'Not shown' means no case was due, or a count behind the share is shown as {self.sym}.")
            caption = f"Cases met on time, by stage, {self.name}"
            chart = line_chart(self.years, drawn, "Met on time (share of cases due)", caption=caption, alt=alt)
            sec.chart(chart)
            if left_out:
                sec.p(f"Not drawn, having fewer than two shares that can be published: {', '.join(left_out)}.")
        else:
            sec.p("Too few shares of cases met on time can be published to draw a trend; the tables give every figure.")
        for t in tables:
            sec.table(t)
        self.sections.append(sec)

    def themes(self, span: str) -> None:
        from reviews.learning.bulletin import Section, TableView
        from reviews.privacy.suppression import TOTAL

        sec = Section("Learning themes")
        themes = self.r["themes"]
        if not themes:
            sec.p(f"No findings from reviews completed from {self.years[0]} to {self.years[-1]}.")
            self.sections.append(sec)
            return
        col = TOTAL if self.is_region else self.audience
        sec.p("Findings from reviews completed in each year, by learning theme (the Child Safeguarding Practice "
              "Review Panel's themes).")
        rows = [(t["label"], [str(self.g[("themes", k)].loc[t["theme"], col]) for k in range(len(self.years))], False)
                for t in themes]
        rows.append(("All themes", [str(self.g[("themes", k)].loc[TOTAL, col]) for k in range(len(self.years))], True))
        sec.table(TableView(f"Findings by learning theme, {self.name}, {span}", ["Theme", *self.years], rows, "Themes"))
        self.sections.append(sec)

    def about(self) -> None:
        from reviews.learning.bulletin import Section

        c = self.cfg
        sec = Section("About these figures")
        sec.p(f"Financial years run from 1 April to 31 March. Counts from {c.suppression_low} to {c.suppression_high} "
              f"are shown as '{self.sym}' to protect the children and families concerned. Some other counts are also "
              f"shown as '{self.sym}' so that a hidden count cannot be worked out from a total, in this report or "
              "another table of it. Zero is shown. A share (per cent) is shown only when both of its counts are.")
        sec.p("These counts describe safeguarding activity; they are not performance measures.")
        self.sections.append(sec)


def render_report(report: dict, cfg: Config, audience: str = REGION, grids: Grids | None = None) -> RenderedReport:
    """One audience's report ('region' or a partnership code): HTML, text, print HTML, tables."""
    from reviews.core.rendering import templates

    codes = [p["code"] for p in report["partnerships"]]
    if audience != REGION and audience not in codes:
        raise ValueError(f"unknown yearly report audience {audience!r}: use 'region' or one of {codes}")
    b = _Report(report, cfg, audience, grids or suppressed_grids(report, cfg))
    b.build()
    title = f"{b.name} safeguarding partnership yearly report"
    subject = f"{title}: {b.year}"
    intro = (f"Five years of serious incidents, reviews and learning across {b.region}'s safeguarding partnerships, "
             f"to {long_date(b.end)}, for the partners' yearly report and its scrutiny."
             if b.is_region else
             f"{b.name}'s figures beside {b.region}'s over five years to {long_date(b.end)}, for the partners' "
             "yearly report and its scrutiny.")
    context = {"title": title, "subject": subject, "period": f"Financial year {b.year} (1 April {b.end.year - 1} to "
               f"31 March {b.end.year})", "region": b.region, "intro": intro, "headlines": b.headlines,
               "show_headlines": True, "sections": b.sections, "briefings": [], "notices": [], "update": None, "print_mode": False}
    env = templates()
    html = env.get_template("bulletin.html.j2").render(context)
    text = env.get_template("bulletin.txt.j2").render(context)
    print_html = env.get_template("bulletin.html.j2").render({**context, "print_mode": True})
    digest = hashlib.sha256((html + text + print_html).encode("utf-8")).hexdigest()
    tables = tuple(t for s in b.sections for t in s.tables)
    return RenderedReport(audience, subject, title, html, text, print_html, digest, tables)


# --------------------------------------------------------------------------------------------
# Building and storing


def audience_of(area: str) -> str:
    """The `bulletins.audience` of an area's yearly report: 'yearly:region', 'yearly:{code}'."""
    return f"{KIND}:{area}"


@dataclass
class YearlyBuild:
    year: str
    folder: str
    built: list[dict] = field(default_factory=list)  # bulletin_id, audience, version, new
    pdfs_printed: int = 0

    def to_xcom(self) -> dict:
        return {"year": self.year, "folder": self.folder, "reports": self.built, "pdfs_printed": self.pdfs_printed}


def build_yearly(engine: Engine, cfg: Config, report_year: Period, out_dir: Path,
                 chromium: str | None = None) -> YearlyBuild:
    """Compile, render and store every audience's report for the year (HTML, text, PDF, XLSX) in
    `{out_dir}/{label}/`, with a `bulletins` row per audience and version: a rebuild with the same
    content reuses the stored version (re-creating a missing file), changed content is version n+1.
    `internal/summary.json` (unsuppressed) is for the business unit only."""
    from reviews.learning.exports import build_workbook
    from reviews.learning.publication import _file_names, _latest_versions, _slug, _write, attachment_paths

    report = compile_yearly(engine, cfg, report_year)
    label = year_label(report_year)
    folder = Path(out_dir) / label
    out = YearlyBuild(label, str(folder))
    _write(folder / "internal" / "summary.json", json.dumps(report, indent=1, sort_keys=True) + "\n")
    grids = suppressed_grids(report, cfg)
    areas = [REGION, *cfg.partnerships]
    audiences = {a: audience_of(a) for a in areas}
    latest = _latest_versions(engine, report_year.start, report_year.end, list(audiences.values()))
    names = _file_names({a: cfg.region_name if a == REGION else cfg.partnerships[a].name for a in areas})
    notes = [f"Financial year {label} and the four before it; as at {long_date(report_year.end)}.",
             f"Counts from {cfg.suppression_low} to {cfg.suppression_high} are shown as '{cfg.suppression_symbol}', "
             "with secondary suppression so that no hidden count can be worked out from the totals. Zero is shown.",
             "These counts describe safeguarding activity; they are not performance measures."]
    plans, jobs = [], []
    for area in areas:
        r = render_report(report, cfg, area, grids)
        last = latest[audiences[area]]
        same = last is not None and last.content_hash == r.content_hash
        version = last.version if same else (last.version + 1 if last is not None else 1)
        html_path = Path(last.path) if same else folder / f"{_slug(names[area])}-yearly-report-{label}-v{version}.html"
        pdf, xlsx = attachment_paths(html_path)
        _write(html_path, r.html)
        _write(html_path.with_suffix(".txt"), r.text)
        _write(xlsx, build_workbook(r.tables, title=r.subject, notes=notes, stamp=report_year.end))
        if cfg.summary.pdf and (not same or not pdf.is_file()):
            jobs.append((r.print_html, pdf, r.subject))
        plans.append((area, r, last, same, version, html_path))
    if jobs:
        from reviews.learning.browser import print_pdfs, stable_pdf

        for path in print_pdfs(jobs, chromium):
            path.write_bytes(stable_pdf(path.read_bytes(), report_year.end.strftime("%Y%m%d") + "000000"))
        out.pdfs_printed = len(jobs)
    with engine.begin() as conn:
        for area, r, last, same, version, html_path in plans:
            if same:
                out.built.append({"bulletin_id": last.bulletin_id, "audience": audiences[area], "version": version,
                                  "new": False})
                continue
            bid = conn.execute(insert(wh.bulletins).returning(wh.bulletins.c.bulletin_id), {
                "period_start": report_year.start, "period_end": report_year.end, "audience": audiences[area],
                "version": version, "content_hash": r.content_hash, "path": str(html_path), "subject": r.subject,
                "built_at": audit_now(), "data_status": None}).scalar_one()
            out.built.append({"bulletin_id": bid, "audience": audiences[area], "version": version, "new": True})
    return out
