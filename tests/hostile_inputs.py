"""The hostile inbox of tests/integration/test_hostile_inputs.py: every case of issue 14 and the
bad inputs already handled, each in its own file (or its own row), with the personal details
planted in them, and the tools to search every output for those details.

Knowsley gets one file per case (a return per day of October 2025, so each file's outcome is
its own), Sefton one unreadable return only (a return that arrived but failed is not "missing").
Every child reference, identifier-shaped value, phone number, email, address and given name
planted here is in `MARKERS`; none may appear anywhere but the inbox and the raw copies.
"""
from __future__ import annotations

import csv
import email
import io
import os
import re
import threading
import zipfile
import zlib
from dataclasses import dataclass, field
from email import policy
from pathlib import Path

HEADER = ["notification_id", "child_ref", "incident_date", "aware_date", "notified_date", "incident_type",
          "age_years", "sex", "ethnicity", "disability", "looked_after", "cp_plan", "cin_plan", "known_to_csc"]
PR_HEADER = ["review_id", "notification_id", "review_type", "decision_date", "author", "methodology", "completed_date",
             "final_report_sent_date", "published_date", "status"]
LEARNING_HEADER = ["finding_id", "review_id", "theme", "finding", "recommendation", "owner_agency", "action_due_date",
                   "action_status", "action_completed_date"]

# ------------------------------------------------------------------------------- the markers
LONG_ID = "KNO-0151.496.0055-" + "X" * 100  # 118 characters: over notification_id's 100
LONG_FOOTER = ("Prepared by the performance team hx.footer.long@example.org tel 0151.496.0077 NHS 485 777 3457 "
               + "please call us " * 4)  # over 100 characters, in the first cell of a footer row
SHORT_FOOTER = "Contact Jane on 0151.496.0033 or hx.footer@example.org"
LONG_TEXT = "White British " + "and more words " * 14 + "see hx.longtext@example.org"  # over ethnicity's 200
# Child references shaped as the partnerships' are (the synthetic returns' `KNO-C-000123`: six
# digits). One shaped like an ordinary record id (`C-1`) cannot be told from one (docs/security.md,
# Known limits), so it is not planted in an id column here.
SHIFTED_REF = "KNO-C-441734"  # the raw child reference of a row missing its first cell
COPIED_REF = "KNO-C-552190"  # a raw child reference typed into notification_id
PHONE_ID = "0151.496.0022"  # a phone number typed into notification_id
NUL_REF = "HXREF-NULROW-8812"
FULL_WIDTH_PHONE = "\uff10\uff11\uff15\uff11 \uff14\uff19\uff16 \uff10\uff10\uff14\uff14"  # ０１５１ ４９６ ００４４
CONTROL_CHARS = {"right-to-left override U+202E": "\u202e", "right-to-left mark U+200F": "\u200f",
                 "right-to-left embedding U+202B": "\u202b", "pop directional formatting U+202C": "\u202c",
                 "bell U+0007": "\x07"}

# name -> the forms searched for (case-insensitive); each planted in one case only
MARKERS: dict[str, list[str]] = {
    "child refs of good rows": ["HXREF-CLEAN-"],
    "child ref shifted into the id (row missing its first cell)": [SHIFTED_REF],
    "child ref typed into notification_id": [COPIED_REF],
    "child ref of the NUL row": [NUL_REF],
    "NHS number, dotted, in a finding": ["401.023.2137", "4010232137", "401 023 2137"],
    "NHS number, spaced 4-3-3, in a finding": ["9876 543 210", "9876543210"],
    "NHS number in a long footer row": ["485 777 3457", "4857773457"],
    "phone, dotted, in a finding": ["0151.496.0018", "01514960018", "0151 496 0018"],
    "phone typed into notification_id": [PHONE_ID, "01514960022", "0151 496 0022"],
    "phone in a footer note row": ["0151.496.0033", "01514960033"],
    "phone in full-width digits, in a finding": [FULL_WIDTH_PHONE, "0151 496 0044", "01514960044"],
    "phone in an over-long id": ["0151.496.0055", "01514960055", LONG_ID],
    "phone in an over-long footer row": ["0151.496.0077", "01514960077"],
    "email in a finding": ["hx.parent@example.org"],
    "email in a footer note row": ["hx.footer@example.org"],
    "email in an over-long text value": ["hx.longtext@example.org"],
    "email in an over-long footer row": ["hx.footer.long@example.org"],
    "spelled-out email in a finding": ["jane dot doe at gmail dot com", "doe at gmail"],
    "street address in a finding": ["12 Acacia Avenue", "Acacia Avenue"],
    "given name Kayden in a finding": ["Kayden"],
    "given name Maisie in a finding": ["Maisie"],
}

# finding_id -> (the harmless token that must reach the bulletins, the hostile text after it)
FINDINGS = {
    "KNO-HX-F-NHSDOT": ("HXFIND-NHSDOT", "Health visitor noted NHS 401.023.2137 on the file."),
    "KNO-HX-F-NHSSPACE": ("HXFIND-NHSSPACE", "The GP letter gave 9876 543 210 as the number."),
    "KNO-HX-F-PHONEDOT": ("HXFIND-PHONEDOT", "Mum was reached on 0151.496.0018 after the visit."),
    "KNO-HX-F-FULLWIDTH": ("HXFIND-FULLWIDTH", f"The school rang {FULL_WIDTH_PHONE} twice."),
    "KNO-HX-F-ADDRESS": ("HXFIND-ADDRESS", "The family moved to 12 Acacia Avenue in the spring."),
    "KNO-HX-F-SPELLED": ("HXFIND-SPELLED", "Referrals were sent to jane dot doe at gmail dot com by the school."),
    "KNO-HX-F-NAMES": ("HXFIND-NAMES", "Kayden and his sister Maisie were not seen alone."),
    "KNO-HX-F-CONTROL": ("HXFIND-CONTROL", "Agencies \u202ewere not\u202c told \u200fin time\x07 and \u202bthe plan\u202c lapsed."),
    "KNO-HX-F-EMAIL": ("HXFIND-EMAIL", "Contact was by hx.parent@example.org only."),
    "KNO-HX-F-HTML": ("HXFIND-HTML", "Records said <script>alert('HX-XSS')</script> nothing."),
}
XSS = "<script>alert('HX-XSS')</script>"

# ----------------------------------------------------------------------------------- helpers


def _review_of(finding_id: str) -> str:
    """The published review a hostile finding belongs to: one each (KNO-HX-F-HTML -> KNO-HX-PR-HTML)."""
    return finding_id.replace("KNO-HX-F-", "KNO-HX-PR-")


def note(nid: str, ref: str, **over) -> list[str]:
    """A valid notification row (notified on time), with overrides."""
    values = {"notification_id": nid, "child_ref": ref, "incident_date": "01/08/2025", "aware_date": "04/08/2025",
              "notified_date": "06/08/2025", "incident_type": "death", "age_years": "7", "sex": "female",
              "ethnicity": "", "disability": "N", "looked_after": "N", "cp_plan": "N", "cin_plan": "N",
              "known_to_csc": "Y", **over}
    return [values[c] for c in HEADER]


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _workbook(path: Path, sheets: dict[str, list[list]]) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
    wb.save(path)


@dataclass
class Case:
    """One hostile input: where it is, what the issue says about it, and what must happen."""

    id: str
    item: str  # issue 14 item ("1".."9") or "regression"
    input: str  # for docs/security.md
    outcome: str  # what must happen (docs/security.md)
    file: str | None = None  # the knowsley file holding it (or the path under the inbox)
    partnership: str = "knowsley"


@dataclass
class Inbox:
    root: Path
    cases: list[Case] = field(default_factory=list)
    good_ids: list[str] = field(default_factory=list)  # notification ids that must load
    fifo: Path | None = None


def _knowsley(inbox: Inbox, name: str) -> Path:
    return inbox.root / "knowsley" / name


def _good(inbox: Inbox, n: str) -> list[str]:
    nid = f"KNO-HX-N{n}"
    inbox.good_ids.append(nid)
    return note(nid, f"HXREF-CLEAN-{n}")


def write_inbox(root: Path, outside: Path) -> Inbox:
    """Write the hostile inbox under `root` (`outside`: a folder for the symlink's target)."""
    inbox = Inbox(root)
    kno = root / "knowsley"
    kno.mkdir(parents=True)
    add = inbox.cases.append

    # d01: the clean base: cases, the published reviews the findings belong to, a finding.
    overdue = note("KNO-HX-N2", "HXREF-CLEAN-2", incident_date="01/09/2025", aware_date="02/09/2025", notified_date="")
    inbox.good_ids += ["KNO-HX-N2"]
    _knowsley(inbox, "notifications_2025-10-01.csv").write_text(
        csv_text(HEADER, [_good(inbox, "1"), overdue]), encoding="utf-8")
    reviews = [[rid, "", "local_multi_agency", "01/03/2025", "Independent reviewer A (regional list)", "SILP",
                "05/09/2025", "08/09/2025", "25/09/2025", "published"]
               for rid in ("KNO-HX-PR1", "KNO-R-100", "KNO/R/100", *map(_review_of, FINDINGS))]
    _knowsley(inbox, "practice_reviews_2025-10-01.csv").write_text(csv_text(PR_HEADER, reviews), encoding="utf-8")
    learning = [["KNO-HX-F0", "KNO-HX-PR1", "DA", "HXFIND-CLEAN the plan was reviewed.", "HXRECOMMEND review plans.",
                 "Police", "31/12/2025", "Open", ""],
                ["KNO-HX-F100", "KNO-R-100", "neglect", "HXFIND-R100 first review.", "", "Health", "", "", ""],
                ["KNO-HX-F101", "KNO/R/100", "neglect", "HXFIND-R101 second review.", "", "Health", "", "", ""]]
    _knowsley(inbox, "learning_2025-10-01.csv").write_text(csv_text(LEARNING_HEADER, learning), encoding="utf-8")
    add(Case("briefing-name-collision", "9", "two published reviews `KNO-R-100` and `KNO/R/100` (7-minute "
             "briefing file names that collide)", "a briefing file each (or the id refused by its shape)",
             "practice_reviews_2025-10-01.csv"))

    # d02: free text in findings of published reviews, one finding per case and per review (a
    # 7-minute briefing prints at most 4 findings on its one page; each of these must reach one).
    rows = [[fid, _review_of(fid), "DA", f"{token} {text}", "HXRECOMMEND see the child alone.", "Police", "31/12/2025",
             "Open", ""] for fid, (token, text) in FINDINGS.items()]
    _knowsley(inbox, "learning_2025-10-02.csv").write_text(csv_text(LEARNING_HEADER, rows), encoding="utf-8")
    for fid, what in (("KNO-HX-F-NHSDOT", "dotted NHS number `401.023.2137` in a finding"),
                      ("KNO-HX-F-NHSSPACE", "NHS number spaced 4-3-3 `9876 543 210` in a finding"),
                      ("KNO-HX-F-PHONEDOT", "dotted phone number `0151.496.0018` in a finding"),
                      ("KNO-HX-F-FULLWIDTH", "phone number in full-width digits in a finding"),
                      ("KNO-HX-F-ADDRESS", "street address `12 Acacia Avenue` in a finding"),
                      ("KNO-HX-F-SPELLED", "spelled-out email `jane dot doe at gmail dot com` in a finding"),
                      ("KNO-HX-F-NAMES", "children's given names (`Kayden`, `Maisie`) in a finding")):
        add(Case(fid, "5", what, "loaded with the detail replaced by `[redacted]` at ingest; never in a "
                 "bulletin, report or email", "learning_2025-10-02.csv"))
    add(Case("KNO-HX-F-CONTROL", "9", "right-to-left override/mark/embedding and a bell character in a finding",
             "stripped: none reaches a bulletin or email", "learning_2025-10-02.csv"))
    add(Case("KNO-HX-F-EMAIL", "regression", "email address in a finding", "redacted at ingest",
             "learning_2025-10-02.csv"))
    add(Case("KNO-HX-F-HTML", "regression", "HTML and script in a finding", "escaped in every HTML output",
             "learning_2025-10-02.csv"))

    # Item 1: values over the warehouse's column limits, and a NUL byte after the first 64 KiB.
    _knowsley(inbox, "notifications_2025-10-03.csv").write_text(
        csv_text(HEADER, [_good(inbox, "3"), note(LONG_ID, "HXREF-CLEAN-3L")]), encoding="utf-8")
    add(Case("id-over-100", "1", "an id over 100 characters (holding a phone number)",
             "row quarantined naming `notification_id` and the limit, the id withheld; the rest loads, the same on "
             "SQLite and PostgreSQL", "notifications_2025-10-03.csv"))
    _knowsley(inbox, "notifications_2025-10-04.csv").write_text(
        csv_text(HEADER, [_good(inbox, "4")]) + f'"{LONG_FOOTER}"\r\n', encoding="utf-8")
    add(Case("footer-over-100", "1", "a footer row whose first cell is over 100 characters (phone, email, NHS "
             "number)", "row quarantined, text withheld; the rest loads", "notifications_2025-10-04.csv"))
    _knowsley(inbox, "notifications_2025-10-05.csv").write_text(
        csv_text(HEADER, [_good(inbox, "5"), note("KNO-HX-LT1", "HXREF-CLEAN-5L", ethnicity=LONG_TEXT)]),
        encoding="utf-8")
    add(Case("text-over-200", "1", "a text value over 200 characters (`ethnicity`)",
             "row loaded with `ethnicity` blank and flagged (`length:ethnicity`, severity flag; the text withheld "
             "from the flag); the rest loads", "notifications_2025-10-05.csv"))
    padding = [note(f"KNO-HX-P{i:04d}", f"HXREF-CLEAN-P{i:04d}", ethnicity="White British") for i in range(700)]
    inbox.good_ids += [f"KNO-HX-P{i:04d}" for i in range(700)]
    body = csv_text(HEADER, padding).encode("utf-8")
    assert len(body) > 65536
    nul_row = csv_text(HEADER, [note("KNO-HX-NUL1", NUL_REF, ethnicity="White\x00British")]).split("\r\n", 1)[1]
    _knowsley(inbox, "notifications_2025-10-06.csv").write_bytes(body + nul_row.encode("utf-8"))
    add(Case("nul-after-64k", "1", "a NUL byte in a value after the first 64 KiB of a CSV",
             "row quarantined; the 700 rows before it load", "notifications_2025-10-06.csv"))

    # Item 2: impossible ISO dates (a required one, another required one, an optional one).
    _knowsley(inbox, "notifications_2025-10-07.csv").write_text(csv_text(HEADER, [
        _good(inbox, "7"),
        note("KNO-HX-D1", "HXREF-CLEAN-D1", incident_date="2024-02-30", aware_date="2024-03-04", notified_date="2024-03-05"),
        note("KNO-HX-D2", "HXREF-CLEAN-D2", incident_date="2024-01-02", aware_date="2024-13-01", notified_date="2024-12-31"),
        note("KNO-HX-D3", "HXREF-CLEAN-D3", incident_date="2024-06-01", aware_date="2024-06-03", notified_date="2024-06-31"),
    ]), encoding="utf-8")
    for col, value in (("incident_date", "2024-02-30"), ("aware_date", "2024-13-01"), ("notified_date", "2024-06-31")):
        add(Case(f"impossible-date-{col}", "2", f"impossible ISO date `{value}` in `{col}`",
                 "row quarantined naming the column (never stored blank)" if col != "notified_date" else
                 "row loaded with `notified_date` blank and flagged (`date:notified_date`, severity flag), its "
                 "text kept in `row_flags`; the notification stage is `unknown` until corrected",
                 "notifications_2025-10-07.csv"))

    # Item 3: one unreadable file (the test makes opening it fail with PermissionError).
    _knowsley(inbox, "notifications_2025-10-08.csv").write_text(
        csv_text(HEADER, [note("KNO-HX-UNREAD", "HXREF-CLEAN-U")]), encoding="utf-8")
    add(Case("unreadable-file", "3", "one file that cannot be opened (PermissionError when read)",
             "that file failed with the reason; every other file loads; the task is not retried",
             "notifications_2025-10-08.csv"))

    # Item 4: personal data through identifiers.
    shifted = note("x", SHIFTED_REF, incident_date="01/09/2025", aware_date="02/09/2025", notified_date="")[1:]
    _knowsley(inbox, "notifications_2025-10-09.csv").write_text(
        csv_text(HEADER, [_good(inbox, "9"), shifted]), encoding="utf-8")
    add(Case("row-missing-first-cell", "4", "a row missing its first cell (the child reference lands in the id)",
             "row quarantined as `row 3 of notifications_2025-10-09.csv`, the id withheld everywhere",
             "notifications_2025-10-09.csv"))
    _knowsley(inbox, "notifications_2025-10-10.csv").write_text(
        csv_text(HEADER, [_good(inbox, "10")]) + f'"{SHORT_FOOTER}"\r\n', encoding="utf-8")
    add(Case("footer-note-row", "4", "a footer note row (phone and email in its first cell)",
             "row quarantined, the text withheld from reports and emails", "notifications_2025-10-10.csv"))
    _knowsley(inbox, "notifications_2025-10-11.csv").write_text(csv_text(HEADER, [
        _good(inbox, "11"),
        note(PHONE_ID, "HXREF-CLEAN-11P", incident_date="01/09/2025", aware_date="02/09/2025", notified_date=""),
    ]), encoding="utf-8")
    add(Case("phone-as-id", "4", "a phone number `0151.496.0022` in `notification_id` (an overdue case)",
             "row quarantined, the id withheld; not in the timeliness alert", "notifications_2025-10-11.csv"))
    _knowsley(inbox, "notifications_2025-10-12.csv").write_text(csv_text(HEADER, [
        _good(inbox, "12"),
        note(COPIED_REF, COPIED_REF, incident_date="01/09/2025", aware_date="02/09/2025", notified_date=""),
    ]), encoding="utf-8")
    add(Case("child-ref-as-id", "4", "the raw child reference typed into `notification_id` too (an overdue case)",
             "row quarantined, the id withheld; not in the timeliness alert", "notifications_2025-10-12.csv"))

    # Item 6: a very wide CSV line (6 MB of commas).
    with _knowsley(inbox, "notifications_2025-10-13.csv").open("w", encoding="utf-8", newline="") as fh:
        fh.write(csv_text(HEADER, [note("KNO-HX-N13", "HXREF-CLEAN-13")]))
        fh.write("KNO-HX-WIDE," + "," * 6_000_000 + "\r\n")
    add(Case("wide-csv-line", "6", "a CSV line of 6 MB of commas (6 million columns)",
             "refused by the CSV column/line caps with a reason (file failed, or the row quarantined); peak memory "
             "well under 1 GiB", "notifications_2025-10-13.csv"))

    # Item 7: two sheets whose names normalise alike.
    _workbook(_knowsley(inbox, "return_2025-10-14.xlsx"), {
        "notifications": [HEADER, note("KNO-HX-SH1", "HXREF-CLEAN-SH1")],
        "Notifications_": [HEADER, note("KNO-HX-SH2", "HXREF-CLEAN-SH2")],
    })
    add(Case("sheet-name-collision", "7", "a workbook with sheets `notifications` and `Notifications_`",
             "the file fails with an error naming the sheets; neither is silently dropped", "return_2025-10-14.xlsx"))

    # Item 9: mixed encoding, symlink, FIFO, unknown folders.
    mixed = (csv_text(HEADER, [note("KNO-HX-ENC1", "HXREF-CLEAN-E1", ethnicity="Caf\u00e9 UTF-8")]).encode("utf-8")
             + csv_text(HEADER, [note("KNO-HX-ENC2", "HXREF-CLEAN-E2", ethnicity="Caf\u00e9 1252")])
             .split("\r\n", 1)[1].encode("cp1252"))
    _knowsley(inbox, "notifications_2025-10-15.csv").write_bytes(mixed)
    add(Case("mixed-encoding", "9", "a CSV mostly UTF-8 with one Windows-1252 line",
             "read, with a note on the file that its encoding is mixed", "notifications_2025-10-15.csv"))
    target = outside / "notifications_elsewhere.csv"
    target.write_text(csv_text(HEADER, [note("KNO-HX-LINK", "HXREF-CLEAN-LINK")]), encoding="utf-8")
    os.symlink(target, kno / "notifications_2025-10-16.csv")
    add(Case("symlink", "9", "a symbolic link in the drop folder", "skipped, with a log line naming it",
             "notifications_2025-10-16.csv"))
    inbox.fifo = kno / "notifications_2025-10-17.csv"
    os.mkfifo(inbox.fifo)
    add(Case("fifo", "9", "a FIFO (named pipe) in the drop folder", "skipped unopened, with a log line naming it",
             "notifications_2025-10-17.csv"))
    (kno / "hx_old_returns").mkdir()
    (kno / "hx_old_returns" / "notifications_2025-10-18.csv").write_text(
        csv_text(HEADER, [note("KNO-HX-SUB", "HXREF-CLEAN-SUB")]), encoding="utf-8")
    (root / "hx_unknown_folder").mkdir()
    (root / "hx_unknown_folder" / "notifications_2025-10-18.csv").write_text("x", encoding="utf-8")
    add(Case("unknown-folders", "9", "a sub-folder in a drop folder, and an inbox folder that is no partnership",
             "skipped, with a log line naming each", "hx_old_returns"))

    # Already handled: regression guards.
    zip_bomb(_knowsley(inbox, "notifications_2025-10-19.xlsx"))
    add(Case("xlsx-zip-bomb", "regression", "an XLSX zip bomb (a part compressed about 1000 times)",
             "the file fails unopened (`looks like a zip bomb`)", "notifications_2025-10-19.xlsx"))
    _workbook(_knowsley(inbox, "notifications_2025-10-20.xlsx"), {"notifications": [
        HEADER, note("KNO-HX-FM1", "HXREF-CLEAN-FM1", ethnicity="=1+1"),
        note("KNO-HX-FM2", "HXREF-CLEAN-FM2", aware_date="=TODAY()")]})
    inbox.good_ids.append("KNO-HX-FM1")
    add(Case("formula-cells", "regression", "formula cells (`=1+1` in a text column, `=TODAY()` in a date)",
             "stored as text, never evaluated; the date one quarantined", "notifications_2025-10-20.xlsx"))
    sql = "'; DROP TABLE notifications; --"
    _knowsley(inbox, "notifications_2025-10-21.csv").write_text(
        csv_text(HEADER, [note("KNO-HX-SQ1", "HXREF-CLEAN-SQ1", ethnicity=sql)]), encoding="utf-8")
    inbox.good_ids.append("KNO-HX-SQ1")
    add(Case("sql-meta-characters", "regression", f"SQL meta-characters `{sql}` in a field", "loaded as data",
             "notifications_2025-10-21.csv"))
    (kno / "returns\\..\\..\\notifications_2025-10-22.csv").write_text(
        csv_text(HEADER, [note("KNO-HX-TRAV", "HXREF-CLEAN-TRAV")]), encoding="utf-8")
    add(Case("path-traversal-name", "regression", "a file named `returns\\..\\..\\notifications_2025-10-22.csv`",
             "failed (`does not follow the template`), recorded under a safe name, never used as a path",
             "returns_.._.._notifications_2025-10-22.csv"))
    _knowsley(inbox, "notifications_2025-10-23.csv").write_text(
        csv_text(HEADER, [note("KNO-HX-MAL1", "HXREF-CLEAN-MAL1")]) + 'KNO-HX-MAL2,"HXREF-CLEAN-MAL2,01/08/2025\r\n'
        + ",".join(note("KNO-HX-MAL3", "HXREF-CLEAN-MAL3")) + "\r\n", encoding="utf-8")
    add(Case("malformed-csv", "regression", "a malformed CSV (an unbalanced quote)",
             "failed: `the CSV is malformed at line N`", "notifications_2025-10-23.csv"))
    with _knowsley(inbox, "notifications_2025-10-24.csv").open("wb") as fh:
        fh.truncate(5 * 1024**3)  # sparse: no disk used
    add(Case("huge-file", "regression", "a 5 GB file (sparse) over `limits.max_file_bytes`",
             "failed by its size alone, neither read nor copied", "notifications_2025-10-24.csv"))

    # Item 8: Sefton's only return arrived, but cannot be read.
    (root / "sefton").mkdir()
    (root / "sefton" / "notifications_2025-10-05.csv").write_bytes(os.urandom(2048) + b"\x00" + os.urandom(2048))
    add(Case("arrived-but-failed", "8", "a partnership whose only return for the quarter is unreadable (binary)",
             "the file fails (`binary data`); the return is not called missing and no `Return missing` notice goes",
             "notifications_2025-10-05.csv", partnership="sefton"))
    return inbox


def zip_bomb(path: Path) -> None:
    """A valid workbook plus an 8 MiB part of zeros (compressed about a thousand times)."""
    _workbook(path, {"notifications": [HEADER, note("KNO-HX-BOMB", "HXREF-CLEAN-BOMB")]})
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("xl/media/image1.bin", "w") as fh:
            for _ in range(8):
                fh.write(b"\0" * (1 << 20))


class FifoGuard:
    """Unblocks any reader of the FIFO (opening it for writing and closing it gives the reader
    end-of-file), so a run that wrongly opens it cannot hang; `opened` says whether one did."""

    def __init__(self, path: Path | None):
        self.path, self.opened, self._stop = path, False, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: nobody has it open for reading
                continue
            self.opened = True
            os.close(fd)

    def __enter__(self):
        if self.path is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)


# ------------------------------------------------------------------------------ reading outputs

_OBJ = re.compile(rb"(\d+) 0 obj\s*(.*?)endobj", re.S)
_STREAM = re.compile(rb"stream\r?\n(.*?)\r?\nendstream", re.S)


def _pdf_stream(body: bytes) -> bytes:
    s = _STREAM.search(body)
    if not s:
        return b""
    raw = s.group(1)
    if b"/FlateDecode" in body.split(b"stream", 1)[0]:
        try:
            return zlib.decompressobj().decompress(raw)
        except zlib.error:
            return b""
    return raw


def _to_unicode(text: str) -> dict[int, str]:
    out: dict[int, str] = {}
    for block in re.findall(r"beginbfchar(.*?)endbfchar", text, re.S):
        for src, dst in re.findall(r"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            out[int(src, 16)] = bytes.fromhex(dst).decode("utf-16-be", "replace")
    for block in re.findall(r"beginbfrange(.*?)endbfrange", text, re.S):
        for lo, hi, dst in re.findall(r"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            base = bytes.fromhex(dst).decode("utf-16-be", "replace")
            for i, code in enumerate(range(int(lo, 16), int(hi, 16) + 1)):
                out[code] = base[:-1] + chr(ord(base[-1]) + i) if base else ""
    return out


def pdf_text(data: bytes) -> str:
    """The text of a PDF printed by Chromium (Skia): each font's ToUnicode map applied to the
    2-byte glyph strings of the page content streams. Spacing is approximate (words may be split
    by positioning): compare with whitespace removed as well. No poppler needed."""
    objs = {int(m.group(1)): m.group(2) for m in _OBJ.finditer(data)}
    fonts = {}
    for num, body in objs.items():
        m = re.search(rb"/ToUnicode (\d+) 0 R", body)
        if m:
            fonts[num] = _to_unicode(_pdf_stream(objs.get(int(m.group(1)), b"")).decode("latin-1"))
    pieces = []
    for body in objs.values():
        contents = re.findall(rb"/Contents (\d+) 0 R", body)
        if not contents:
            continue
        names = {}
        font_dict = re.search(rb"/Font\s*<<(.*?)>>", body, re.S)
        if font_dict:
            names = {n: int(o) for n, o in re.findall(rb"/(\w+) (\d+) 0 R", font_dict.group(1))}
        for c in contents:
            current: dict[int, str] = {}
            for tok in re.finditer(rb"/(\w+) [\d.]+ Tf|<([0-9A-Fa-f]*)>|(ET|T\*|Td|TD)\b", _pdf_stream(objs.get(int(c), b""))):
                if tok.group(1):
                    current = fonts.get(names.get(tok.group(1), -1), {})
                elif tok.group(2) is not None:
                    h = tok.group(2)
                    pieces.append("".join(current.get(int(h[i:i + 4], 16), "") for i in range(0, len(h) - 3, 4)))
                else:
                    pieces.append(" ")
    return "".join(pieces)


def texts_of(name: str, data: bytes, *, encodings: bool = True) -> list[str]:
    """Everything a file says, decoded: its bytes in three encodings (only UTF-8 with
    `encodings=False`, for looking for characters, which other decodings make up), and what it
    packs (MIME parts decoded, zip members, PDF text)."""
    out = [data.decode("utf-8", "replace")]
    if encodings:
        out += [data.decode("latin-1"), data.decode("utf-16-le", "replace")]
    lower = name.lower()
    if lower.endswith(".pdf") or data[:5] == b"%PDF-":
        text = pdf_text(data)
        out += [text, re.sub(r"\s+", "", text)]
    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                for member in zf.namelist():
                    out.extend(texts_of(member, zf.read(member), encodings=encodings))
        except zipfile.BadZipFile:
            pass
    if lower.endswith(".eml"):
        message = email.message_from_bytes(data, policy=policy.default)
        for part in message.walk():
            if part.is_multipart():
                continue
            payload = part.get_payload(decode=True) or b""
            out.extend(texts_of(part.get_filename() or part.get_content_type().replace("/", "."), payload,
                                encodings=encodings))
        out.append(str(message["Subject"]))
    return out


def message(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=policy.default)


def html_parts(name: str, data: bytes) -> list[str]:
    if name.endswith(".html"):
        return [data.decode("utf-8", "replace")]
    if name.endswith(".eml"):
        message = email.message_from_bytes(data, policy=policy.default)
        return [part.get_content() for part in message.walk() if part.get_content_type() == "text/html"]
    return []


def regular_files(root: Path, *, skip: tuple[Path, ...] = ()) -> list[Path]:
    """Regular files under `root` (never opening a FIFO, never following a link), less `skip`."""
    out = []
    for p in sorted(root.rglob("*")):
        if any(s == p or s in p.parents for s in skip):
            continue
        if p.is_symlink() or not p.is_file():
            continue
        out.append(p)
    return out


def search(where: str, texts: list[str], found: dict[str, set[str]]) -> None:
    """Record in `found` every marker (by name) any of `texts` holds, case-insensitively."""
    lowered = [t.lower() for t in texts if t]
    for name, forms in MARKERS.items():
        for form in forms:
            f, squeezed = form.lower(), re.sub(r"\s+", "", form.lower())
            if any(f in t or squeezed in t for t in lowered):
                found.setdefault(name, set()).add(where)
                break
