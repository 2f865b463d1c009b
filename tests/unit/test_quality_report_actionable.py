"""Quality reports a partnership can act on: its own column headers with the template name beside
them, every row of earlier returns still waiting for a correction, and the accepted values of each
code or theme rule that failed (once per report). Real ingest, real SQLite, the shipped config."""
from __future__ import annotations

import re
from datetime import date, datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import sqlalchemy as sa

from reviews.core import warehouse as wh
from reviews.privacy.pseudonymise import check_key
from reviews.returns.ingest import ingest_partnership
from reviews.returns.quality_reports import Wording, build_quality_reports

KEY = check_key("unit-test-key-for-actionable-report-0")
NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)
AS_OF = date(2024, 10, 20)
ST_HELENS_NOTIFICATIONS = ("SIN number,Child number,Incident,Aware,Notified,Nature,Age (years),Sex,Ethnicity,"
                           "Disability,Looked after,CP plan,CIN plan,Known to CSC\r\n")
ST_HELENS_LEARNING = "Finding number,Review number,Theme,Finding,Recommendation,Owner,Due,Status,Done\r\n"


def _notification(sin: str, child: str, nature: str = "Death", aware: str = "02-05-2024",
                  notified: str = "03-05-2024", sex: str = "F", disability: str = "No") -> str:
    return f"{sin},{child},01-05-2024,{aware},{notified},{nature},7,{sex},White,{disability},No,No,No,Yes\r\n"


def _ingest(engine, cfg, tmp_path: Path, code: str):
    return ingest_partnership(engine, cfg, code, tmp_path / "inbox", tmp_path / "raw", KEY, AS_OF,
                              clock=lambda: NOW, docs_dir=tmp_path / "docs")


def _report(engine, cfg, tmp_path: Path, code: str) -> list[tuple[str, str]]:
    built = build_quality_reports(engine, cfg, code, tmp_path / "reports", AS_OF, clock=lambda: NOW)
    return [(Path(b["path"]).read_text(encoding="utf-8"), Path(b["path"]).with_suffix(".txt").read_text(encoding="utf-8"))
            for b in built]


def _engine(sqlite_url):
    engine = wh.make_engine(sqlite_url)
    wh.ensure_schema(engine)
    return engine


def _first_return(inbox: Path) -> None:
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / "notifications_2024-07-10.csv").write_text(
        ST_HELENS_NOTIFICATIONS
        + _notification("SH-1", "CHILD-SECRET-1")                          # good
        + _notification("SH-2", "CHILD-SECRET-2", nature="Weather")        # unknown code
        + _notification("SH-3", "CHILD-SECRET-3", nature="Flood", sex="Q")  # two unknown codes
        + _notification("SH-4", "CHILD-SECRET-4", aware="")                 # required
        + _notification("SH-5", "CHILD-SECRET-5", aware="09-05-2024")      # aware after notified: a flag, loaded
        + _notification("SH 123456", "CHILD-SECRET-6", disability="Perhaps"),  # id withheld, unknown yes/no
        encoding="utf-8")
    (inbox / "learning_2024-07-10.csv").write_text(
        ST_HELENS_LEARNING
        + "F-1,R-404,Weather,Finding text,Do better,Police,01-09-2024,Pending,\r\n"
        + "F-2,R-404,Hail,Finding text,Do better,Police,01-09-2024,open,\r\n",
        encoding="utf-8")


def test_st_helens_report_speaks_their_headers_lists_waiting_rows_and_accepted_values(tmp_path, sqlite_url, cfg):
    engine = _engine(sqlite_url)
    inbox = tmp_path / "inbox" / "st_helens"
    _first_return(inbox)
    _ingest(engine, cfg, tmp_path, "st_helens")
    [(html, text)] = _report(engine, cfg, tmp_path, "st_helens")

    for doc in (html, text):
        # Rule lines: their header, the template name beside it; per dataset (Status is two columns).
        assert "Nature (incident_type) &#39;Weather&#39; is not one of" in doc or \
            "Nature (incident_type) 'Weather' is not one of" in doc
        assert "Aware (aware_date) is blank (it is required)" in doc
        assert "Aware (aware_date) 09-05-2024 is after Notified (notified_date) 03-05-2024" in doc
        # ... a flag (severity `flag`): the row was loaded, and is listed to correct, with what happens meanwhile.
        flagged = doc[doc.index("Loaded, but please correct"):]
        assert "SH-5" in flagged and "Aware (aware_date), Notified (notified_date)" in flagged
        assert "its notification is judged" in flagged and "unknown" in flagged
        assert "SH-3" not in flagged and "SH-2" not in flagged  # rejected rows are not listed as loaded
        assert "Theme (theme) " in doc and "is not a known learning theme" in doc
        assert "Status (action_status) " in doc and "Status (status)" not in doc
        # Counts by check use the same names.
        assert "Nature (incident_type) is not one of the allowed codes" in doc
        assert "Aware (aware_date) is after Notified (notified_date)" in doc  # counted with the flags
        # No bare template name starts a rule line any more.
        assert not re.search(r"(?m)^\s*incident_type ", doc) and ">incident_type " not in doc
        # The accepted values, once per failed rule, however many rows broke it.
        for caption in ("Accepted values for Nature (incident_type) in notifications",
                        "Accepted values for Sex (sex) in notifications",
                        "Accepted values for Disability (disability) in notifications",
                        "Accepted learning themes for Theme (theme) in learning",
                        "Accepted values for Status (action_status) in learning"):
            assert doc.count(caption) == 1, caption
        assert "Looked after (looked_after)" not in doc  # no row broke it: no list
        for words in ("Child death", "serious_harm", "Serious injury", "Girl", "Not known", "NK",
                      "information_sharing", "info sharing", "domestic_abuse", "Done", "Not started"):
            assert words in doc, words
        # The withheld id stays withheld; no child reference anywhere.
        assert "row 7 of notifications_2024-07-10.csv" in doc and "123456" not in doc
        for secret in ("CHILD-SECRET-2", "CHILD-SECRET-3", "CHILD-SECRET-6"):
            assert secret not in doc
    assert text.count("Accepted values for Nature (incident_type)") == 1

    # A later return corrects two rows: its report lists each row still waiting, as the first did.
    (inbox / "notifications_2024-10-10.csv").write_text(
        ST_HELENS_NOTIFICATIONS + _notification("SH-2", "CHILD-SECRET-2") + _notification("SH-4", "CHILD-SECRET-4"),
        encoding="utf-8")
    _ingest(engine, cfg, tmp_path, "st_helens")
    [(html2, text2)] = _report(engine, cfg, tmp_path, "st_helens")
    with engine.connect() as conn:
        waiting = conn.execute(sa.text(
            "select dataset, file_name, row_number, record_id from quarantine where resolved_by_file_id is null "
            "order by dataset, row_number")).all()
    assert len(waiting) == 4  # SH-3, the withheld row, F-1, F-2 (SH-5 was loaded, flagged)
    for doc in (html2, text2):
        assert "4 rows from earlier returns" in doc or "4 row(s) from earlier returns" in doc
        listed = doc[doc.index("Rows of earlier returns still waiting"):]
        assert "SH-2" not in listed and "SH-4" not in listed  # corrected: not waiting
        assert "SH-2" in doc  # ... but said to be corrected
        for _dataset, file_name, row_number, record_id in waiting:
            shown = f"row {row_number} of {file_name}" if record_id.startswith("withheld") else record_id
            assert shown in listed, shown
        assert "Nature (incident_type) &#39;Flood&#39;" in doc or "Nature (incident_type) 'Flood'" in doc
        assert "SH-5" not in doc and "Loaded, but please correct" not in doc  # its flag was the first report's
        assert "123456" not in doc and "CHILD-SECRET" not in doc
        # The waiting rows' failed codes and themes get their accepted values too.
        assert doc.count("Accepted learning themes for Theme (theme) in learning") == 1
    rows = re.findall(r"(?m)^- (notifications|learning), ([^,]+), row (\d+), (.+)$", text2)
    assert sorted((d, f, int(r)) for d, f, r, _ in rows) == sorted((d, f, r) for d, f, r, _ in waiting)
    engine.dispose()


def test_knowsley_uses_the_template_names(tmp_path, sqlite_url, cfg):
    engine = _engine(sqlite_url)
    inbox = tmp_path / "inbox" / "knowsley"
    inbox.mkdir(parents=True)
    (inbox / "notifications_2024-07-10.csv").write_text(
        "notification_id,child_ref,incident_date,aware_date,notified_date,incident_type\r\n"
        "K-1,CHILD-1,01/05/2024,02/05/2024,03/05/2024,Weather\r\n", encoding="utf-8")
    _ingest(engine, cfg, tmp_path, "knowsley")
    [(html, text)] = _report(engine, cfg, tmp_path, "knowsley")
    for doc in (html, text):
        assert "incident_type" in doc and "(incident_type)" not in doc
        assert doc.count("Accepted values for incident_type in notifications") == 1
    engine.dispose()


def test_every_message_shape_is_renamed(cfg):
    """The places quality.py names a second column (order, cross_order, author_needed, storable),
    and quoted values left alone even when they spell a column's name."""
    say = Wording(cfg, cfg.partnership("st_helens")).reason
    assert say("notifications", "order:incident_date<=aware_date", "incident_date 05-05-2024 is after aware_date 02-05-2024") \
        == "Incident (incident_date) 05-05-2024 is after Aware (aware_date) 02-05-2024"
    assert say("rapid_reviews", "cross_order:notifications.aware_date<=completed_date",
               "completed_date 01-05-2024 is before aware_date 02/05/2024 of notification SH-1") \
        == "Submitted (completed_date) 01-05-2024 is before Aware (aware_date) 02/05/2024 of notification SH-1"
    assert say("practice_reviews", "author_needed",
               "author is blank: an LCSPR with status 'status' needs its author (blank is allowed only while it is "
               "commissioned)").startswith("Author (author) is blank: an LCSPR with Status (status) 'status' needs")
    assert say("learning", "storable", "finding contains a character that cannot be stored (NUL); "
                                       "recommendation contains a character that cannot be stored (NUL)") \
        == ("Finding (finding) contains a character that cannot be stored (NUL); "
            "Recommendation (recommendation) contains a character that cannot be stored (NUL)")
    assert say("notifications", "code:sex", "sex 'aware_date' is not one of: female, male, unknown") \
        == "Sex (sex) 'aware_date' is not one of: female, male, unknown"
    assert say("notifications", "ragged_row", "the row has 2 more value(s) than the header has columns") \
        == "the row has 2 more value(s) than the header has columns"
    knowsley = Wording(cfg, cfg.partnership("knowsley"))
    assert knowsley.reason("notifications", "required:aware_date", "aware_date is blank (it is required)") \
        == "aware_date is blank (it is required)"
    assert knowsley.title("notifications", "order:aware_date<=notified_date") == "aware_date is after notified_date"


class _Tables(HTMLParser):
    """Each table's caption and whether every th has a scope."""

    def __init__(self):
        super().__init__()
        self.tables, self.th_without_scope, self._in_caption = [], 0, False

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append("")
        elif tag == "caption":
            self._in_caption = True
        elif tag == "th" and not dict(attrs).get("scope"):
            self.th_without_scope += 1

    def handle_endtag(self, tag):
        if tag == "caption":
            self._in_caption = False

    def handle_data(self, data):
        if self._in_caption:
            self.tables[-1] += data


def test_new_tables_are_accessible(tmp_path, sqlite_url, cfg):
    engine = _engine(sqlite_url)
    inbox = tmp_path / "inbox" / "st_helens"
    _first_return(inbox)
    _ingest(engine, cfg, tmp_path, "st_helens")
    _report(engine, cfg, tmp_path, "st_helens")
    (inbox / "notifications_2024-10-10.csv").write_text(ST_HELENS_NOTIFICATIONS + _notification("SH-2", "C-2"),
                                                        encoding="utf-8")
    _ingest(engine, cfg, tmp_path, "st_helens")
    [(html, _text)] = _report(engine, cfg, tmp_path, "st_helens")
    parser = _Tables()
    parser.feed(html)
    assert parser.th_without_scope == 0
    assert all(caption.strip() for caption in parser.tables)
    assert any(c.startswith("Rows of earlier returns still waiting") for c in parser.tables)
    assert sum(c.startswith("Accepted ") for c in parser.tables) == 5
    assert '<h2 ' in html and html.index("<h1 ") < html.index("<h2 ")
    engine.dispose()
