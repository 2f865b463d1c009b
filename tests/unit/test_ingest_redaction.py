"""Screening at ingest (reviews.privacy.ingest_redaction): issue 14's forms, names only in the
fields that can hold a child's, invisible characters removed before storing, and the note on
the file counting by kind without a value."""
from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest

from reviews.privacy.ingest_redaction import redact_free_text, redaction_note

SECRETS = ["943.476.5919", "0151.496.0000", "12 Acacia Avenue", "jane dot doe at gmail dot com", "Kayden",
           "Maisie", "\u202e", "\u200f", "\x07", "\uff10\uff11\uff15\uff11"]


def _learning(as_string: bool) -> pd.DataFrame:
    findings = [
        "Health visitor noted NHS 943.476.5919 on the file.",
        "Mum was reached on 0151.496.0000 after the visit.",
        "The family moved to 12 Acacia Avenue in the spring.",
        "Referrals were sent to jane dot doe at gmail dot com by the school.",
        "Kayden and his sister Maisie were not seen alone.",
        "Agencies \u202ewere not\u202c told \u200fin time\x07 and the plan lapsed.",
        "The school rang \uff10\uff11\uff15\uff11 \uff14\uff19\uff16 \uff10\uff10\uff14\uff14 twice.",
        "Information was not shared across agencies in March 2024.",
        None,
    ]
    frame = pd.DataFrame({
        "finding_id": [f"F-{i}" for i in range(len(findings) * 2)],
        "finding": findings * 2,  # each text twice: screened once, replaced in both rows
        "recommendation": ["Partners should agree a single route for sharing concerns."] * len(findings) * 2,
        "owner_agency": ["Claire Smith's team, Health"] * len(findings) * 2,
    }, dtype=object)
    if as_string:
        frame = frame.astype({"finding": "string", "owner_agency": "string"})
    return frame


@pytest.mark.parametrize("as_string", [False, True], ids=["object", "string dtype"])
def test_every_issue_14_form_is_redacted_before_loading(as_string):
    frame = _learning(as_string)
    out, found = redact_free_text(frame, "learning")
    text = " ".join(str(v) for v in out["finding"].tolist())
    for secret in SECRETS:
        assert secret not in text, repr(secret)
    assert found == Counter({"nhs_number": 2, "phone": 4, "address": 2, "email": 2, "name": 4,
                             "bidi": 6, "control": 2})
    assert out["finding"].iloc[7] == "Information was not shared across agencies in March 2024."
    assert out["recommendation"].tolist() == frame["recommendation"].tolist()
    # names are looked for in findings, not in an agency's name
    assert out["owner_agency"].tolist() == frame["owner_agency"].tolist()
    assert frame["finding"].iloc[0] == "Health visitor noted NHS 943.476.5919 on the file."  # input untouched


def test_an_authors_name_is_kept_but_screened_for_everything_else():
    frame = pd.DataFrame({"review_id": ["R1", "R2"], "author": ["Jane Smith", "Jane Smith 0151 496 0000"],
                          "methodology": ["Learning Together with Kayden's family", "SILP"]}, dtype=object)
    out, found = redact_free_text(frame, "practice_reviews")
    assert out["author"].tolist() == ["Jane Smith", "Jane Smith [redacted]"]
    assert out["methodology"].tolist() == ["Learning Together with [redacted]'s family", "SILP"]
    assert found == Counter({"phone": 1, "name": 1})


def test_the_note_counts_by_kind_and_never_quotes():
    _, found = redact_free_text(_learning(False), "learning")
    note = redaction_note(found)
    assert note == ("free text: 14 personal details redacted before loading (2 email addresses, 2 NHS numbers, "
                    "4 phone numbers, 2 street addresses, 4 names); 8 invisible characters removed "
                    "(2 control characters, 6 bidirectional controls); please keep them out of returns")
    for secret in SECRETS:
        assert secret not in note
    assert redaction_note(Counter({"zero_width": 1})) == (
        "free text: 1 invisible character removed (1 zero-width character)")
