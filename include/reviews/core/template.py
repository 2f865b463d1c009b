"""The regional return template: the datasets partnerships send and what each column holds.

This is the data contract of docs/design.md in code form. Readers, validation, the warehouse
schema and the synthetic generator all read it, so a column is described in one place.
Partnership-specific headers and code synonyms live in the YAML config, not here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

YES_NO_UNKNOWN = ("Y", "N", "unknown")
# Identifiers (notification_id, review_id, finding_id, ...: every column of kind "id" but the child
# reference, which is hashed) are 1 to ID_MAX_LENGTH characters of ID_CHARACTERS, never longer than
# their warehouse column (returns/quality.py checks both, and refuses ids that look personal).
ID_MAX_LENGTH = 50
ID_CHARACTERS = "letters, digits, - _ / . and spaces"


@dataclass(frozen=True)
class Column:
    """One template column. `kind` is id | text | date | code | age | freetext."""

    name: str
    kind: str
    required: bool = False
    codes: tuple[str, ...] = ()
    sensitive: bool = False  # pseudonymised or screened before it leaves ingest


@dataclass(frozen=True)
class DateOrder:
    """`earlier` must be on or before `later` (rows with either blank are not judged here)."""

    earlier: str
    later: str


@dataclass(frozen=True)
class Reference:
    """`column` must name a record of `dataset` from the same partnership (blank allowed)."""

    column: str
    dataset: str


@dataclass(frozen=True)
class Dataset:
    name: str
    id_column: str
    columns: tuple[Column, ...]
    date_order: tuple[DateOrder, ...] = ()
    references: tuple[Reference, ...] = field(default=())

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def of_kind(self, kind: str) -> list[str]:
        return [c.name for c in self.columns if c.kind == kind]


NOTIFICATIONS = Dataset(
    name="notifications",
    id_column="notification_id",
    columns=(
        Column("notification_id", "id", required=True),
        Column("child_ref", "id", required=True, sensitive=True),
        Column("incident_date", "date", required=True),
        Column("aware_date", "date", required=True),
        Column("notified_date", "date"),
        Column("incident_type", "code", required=True, codes=("death", "serious_harm", "other")),
        Column("age_years", "age"),
        Column("sex", "code", codes=("female", "male", "unknown")),
        Column("ethnicity", "text"),
        Column("disability", "code", codes=YES_NO_UNKNOWN),
        Column("looked_after", "code", codes=YES_NO_UNKNOWN),
        Column("cp_plan", "code", codes=YES_NO_UNKNOWN),
        Column("cin_plan", "code", codes=YES_NO_UNKNOWN),
        Column("known_to_csc", "code", codes=YES_NO_UNKNOWN),
    ),
    date_order=(DateOrder("incident_date", "aware_date"), DateOrder("aware_date", "notified_date")),
)

RAPID_REVIEWS = Dataset(
    name="rapid_reviews",
    id_column="rapid_review_id",
    columns=(
        Column("rapid_review_id", "id", required=True),
        Column("notification_id", "id", required=True),
        Column("completed_date", "date"),
        Column(
            "outcome",
            "code",
            codes=("lcspr", "no_further_review", "other_review", "national_review_recommended"),
        ),
        Column("panel_response_date", "date"),
        Column("panel_decision", "code", codes=("agree", "disagree", "national_review")),
    ),
    date_order=(DateOrder("completed_date", "panel_response_date"),),
    references=(Reference("notification_id", "notifications"),),
)

PRACTICE_REVIEWS = Dataset(
    name="practice_reviews",
    id_column="review_id",
    columns=(
        Column("review_id", "id", required=True),
        Column("notification_id", "id"),
        Column(
            "review_type",
            "code",
            required=True,
            codes=("lcspr", "national", "local_multi_agency", "single_agency"),
        ),
        Column("decision_date", "date", required=True),
        Column("author", "text"),
        Column("methodology", "text"),
        Column("completed_date", "date"),
        Column("final_report_sent_date", "date"),
        Column("published_date", "date"),
        # Optional (issue 16; returns without them still load): why the review is delayed, and
        # when it is not published, why and when its improvements were published instead.
        Column("delay_reason", "code", codes=("criminal_proceedings", "parallel_process",
                                              "family_engagement", "capacity", "other")),
        Column("not_published_reason", "code", codes=("child_welfare", "legal_advice", "other")),
        Column("improvements_published_date", "date"),
        Column(
            "status",
            "code",
            required=True,
            codes=("commissioned", "in_progress", "completed", "published", "not_published"),
        ),
    ),
    date_order=(
        DateOrder("decision_date", "completed_date"),
        DateOrder("completed_date", "final_report_sent_date"),
        DateOrder("final_report_sent_date", "published_date"),
    ),
    references=(Reference("notification_id", "notifications"),),
)

LEARNING = Dataset(
    name="learning",
    id_column="finding_id",
    columns=(
        Column("finding_id", "id", required=True),
        Column("review_id", "id", required=True),
        Column("theme", "code", required=True),  # allowed codes come from config (themes)
        Column("finding", "freetext", sensitive=True),
        Column("recommendation", "freetext", sensitive=True),
        Column("owner_agency", "text"),
        Column("action_due_date", "date"),
        Column("action_status", "code", codes=("open", "in_progress", "completed")),
        Column("action_completed_date", "date"),
    ),
    references=(Reference("review_id", "practice_reviews"),),
)

DATASETS: dict[str, Dataset] = {
    d.name: d for d in (NOTIFICATIONS, RAPID_REVIEWS, PRACTICE_REVIEWS, LEARNING)
}
# Load order: a dataset's references point only to datasets earlier in this list.
DATASET_ORDER: tuple[str, ...] = tuple(DATASETS)
