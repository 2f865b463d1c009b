"""Screen free text from reviews for personal details before it can leave the business unit.

Findings and recommendations are written by people, and people sometimes paste in what should
never travel: an NHS number, an address, an email, a phone number, a child's name or date of
birth. Every free-text field is screened twice: at ingest, before it is validated, stored or
logged (reviews.privacy.ingest_redaction, on every text cell of a return), and again wherever a
bulletin, a 7-minute briefing or an export quotes it (reviews.learning.summary), which catches
text loaded before a rule existed. Each hit is replaced by "[redacted]" and reported (kind,
where, a masked excerpt), so the business unit can go back to the partnership and have the
return corrected.

First, invisible characters are removed (in both places, so they are never stored or shown) and
counted by kind, never quoted: control characters (C0 and C1, except tab and the line breaks LF
and CR), zero-width characters (U+200B-U+200D, U+2060, U+FEFF, U+180E) and bidirectional controls
(U+200E, U+200F, U+061C, U+202A-U+202E, U+2066-U+2069), which can hide or reorder what a reader
sees.

Then the text is screened in its Unicode NFKC form, so full-width or other compatibility forms
read as what they look like ("９４３４７６５９１９" is 9434765919, "＠" is "@"). The text kept is the
original, less invisible characters and hits: NFKC is only how it is read. Digit groups may be
separated by spaces, dots, hyphens, slashes or dashes.

What counts as a hit, and why:
- nhs_number: ten digits, optionally grouped 3-3-4 ("943 476 5919", "943.476.5919"; also 4-3-3,
  3-4-3 or 5-5), whose last digit is the NHS modulus-11 check digit of the first nine. The check
  digit is what tells an NHS number from any other ten-digit figure; a ten-digit run that fails
  it is not reported as an NHS number (it may still be caught as a phone number when it looks
  like one).
- postcode: a full UK postcode (outward and inward code, e.g. "CH41 5LH", "L8 0AB"); outward
  codes alone ("L8") name a district of thousands of homes and are left.
- email: anything shaped like local@domain.tld, and the same spelled out: "jane dot doe at gmail
  dot com", "jane(at)example(dot)org", "jane [at] example.org" (an "at" word or bracket, a
  domain of dotted words ending in a known top-level domain such as com, org, net, uk).
- phone: UK numbers, 0 or +44 then 9 or 10 further digits; spaces, dots, hyphens, slashes and
  brackets allowed ("0151.496.0000", "+44 151 496 0000", "07700 900123").
- address: a house number (optionally after "Flat 3," or "Apartment 2"), one to three
  capitalised words and a street word (Road, Street, Avenue, Lane, Close, Drive, Way, Crescent,
  Grove, Court, Place, Terrace, Gardens, Walk, Row, Square, Hill, Park, Mews, Rise, Green,
  Parade, Vale, ... or Rd, St, Ave, ...): "12 Acacia Avenue", "Flat 3, 4 Hope Street". Not when
  the capitalised words are agency words ("2 Family Court hearings"). A street named without a
  number, or written in lower case, is not caught.
- name: a given name from the maintained list in reviews.privacy.names (the gender-guesser
  package's dictionary, names in use in Great Britain, Ireland and the U.S.A. and the countries
  most Merseyside families came from), written capitalised ("Jane", "Muhammad"). The rule:
  * a name that is not also a common word (names.NEVER_ALONE, names.WORD_NAMES) is a hit
    wherever it stands, sentence start included: "Jane was not seen";
  * one that is also an ordinary word ("Grace", "Hope", "Will", "Rose", "Lily", "Ruby", "Jack",
    names.WORD_NAMES) is a hit after a cue word (below), before a surname, before words that
    make it a person ("Ruby's mother", "Jade, aged 4"), or capitalised in the middle of a
    sentence with no capitalised word either side ("the school saw Lily daily"), where the
    ordinary word would be lower case; never otherwise at the start of a sentence ("Grace
    periods...", "Will the partnership...") or inside a run of capitalised words ("Liverpool
    Hope University");
  * one that is also an agency, process or place word or a word reports capitalise ("May",
    "Mark", "Police", "Health", "Court", "Chester", names.NEVER_ALONE) is a hit only after a cue
    word or before a surname; a month, day or festival only after a cue ("Baby May");
  * a cue is the word right before: named, called, known as, child, sibling, brother, sister,
    mother, father, mum, dad, baby/Baby, son, daughter, nephew, niece, cousin, twin, infant,
    pupil, girl, boy, partner, uncle, aunt, nan (names.CUES); after a cue written in lower case
    (or "Baby") any capitalised word that is not an agency or process word is a name, listed or
    not ("sibling Theo"), but not a title-case phrase ("Child Sexual Exploitation");
  * a surname is the next word, capitalised, not a word that commonly follows a name in a
    report (names.NOT_SURNAMES: Street, Hospital, Care, Team, Half, Term, ...); it is redacted
    with the given name ("Grace Jones" -> "[redacted]");
  * a title (Mr, Mrs, Ms, Miss, Mx, Dr) followed by a capitalised word is a name (an adult's);
  * never after "St" or "Saint" (St Mary's, St Helens), never an organisation named after a
    person (Lucy Faithfull, Marie Collins, Alder Hey);
  * not caught: names in lower case or capitals ("jane", "JANE"); names the list lacks (it
    dates from 2008: "Alfie", "Albie") unless after a cue; an ordinary-word name opening a
    sentence with nothing else to tell ("Poppy was not seen").
- date_of_birth: a date (full, or month and year) after "born", "DOB", "D.O.B." or "date of
  birth".
- date: any other full date (day, month and year, in figures or words). A date of birth cannot
  be told from any other date by its look, and an incident date narrows down a child almost as
  much, so every full date is redacted. A month and year alone ("in March 2023") is kept.

Order matters: emails before postcodes (an email may hold one), dates before numbers, numbers
before addresses and names. Measured on a labelled corpus (tests/unit/screening_corpus.py;
`make bench BENCH_ARGS="--only screening"`).
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import asdict, dataclass, field

from reviews.privacy import names as _names

REDACTED = "[redacted]"
KINDS = ("email", "postcode", "date_of_birth", "date", "nhs_number", "phone", "address", "name")
KIND_LABELS = {
    "email": "email address",
    "postcode": "postcode",
    "date_of_birth": "date of birth",
    "date": "date",
    "nhs_number": "NHS number",
    "phone": "phone number",
    "address": "street address",
    "name": "name",
}
# Characters removed before anything else, counted by kind (never quoted).
INVISIBLE_KINDS = ("control", "zero_width", "bidi")
INVISIBLE_LABELS = {
    "control": "control character",
    "zero_width": "zero-width character",
    "bidi": "bidirectional control",
}
# Template fields whose text is screened for names. An author's name is the author, and agency
# names are agencies: both are screened for everything else.
NAME_FIELDS = frozenset({"finding", "recommendation", "methodology"})

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DAY = r"(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?"
_YEAR = r"(?:19|20)\d{2}"
_NUMERIC_DATE = r"\b(?:0?[1-9]|[12]\d|3[01])[/.\-](?:0?[1-9]|1[0-2])[/.\-](?:\d{4}|\d{2})\b"
_ISO_DATE = r"\b(?:19|20)\d{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])\b"
_WORD_DATE = rf"\b{_DAY}\s+(?:of\s+)?{_MONTH}\s*,?\s+{_YEAR}\b"
_US_WORD_DATE = rf"\b{_MONTH}\s+{_DAY}\s*,?\s+{_YEAR}\b"
_FULL_DATE = rf"(?:{_ISO_DATE}|{_NUMERIC_DATE}|{_WORD_DATE}|{_US_WORD_DATE})"
_MONTH_YEAR = rf"\b{_MONTH}\s+{_YEAR}\b"
_DOB_WORDS = r"\b(?:born(?:\s+(?:on|in))?|d\.?\s?o\.?\s?b\.?|date\s+of\s+birth)\s*[:\-]?\s*"

_SEP = r"(?:[ .\-/\u2010-\u2015\u2212]{1,3})"  # between digit groups: spaces, dots, hyphens, slashes, dashes

# Repetitions are bounded (a local part has at most 64 characters, a domain label 63) so that no
# text, however long or hostile, takes more than linear time.
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){1,8}")
_SPELLED_WORD = r"[A-Za-z0-9][A-Za-z0-9_%+\-]{0,62}"
_SPELLED_DOT = r"(?:\s{0,3}[(\[{<]\s{0,3}dot\s{0,3}[)\]}>]\s{0,3}|\s{1,3}dot\s{1,3}|\.)"
_SPELLED_AT = r"(?:\s{0,3}[(\[{<]\s{0,3}at\s{0,3}[)\]}>]\s{0,3}|\s{1,3}at\s{1,3}|\s{0,3}@\s{0,3})"
_TLD = r"(?:com|org|net|edu|gov|uk|ie|eu|io|info|biz|me|co|ac|nhs|sch|police|ltd|plc|scot|wales|cymru)"
_SPELLED_EMAIL = re.compile(
    rf"\b{_SPELLED_WORD}(?:{_SPELLED_DOT}{_SPELLED_WORD}){{0,4}}{_SPELLED_AT}{_SPELLED_WORD}"
    rf"(?:{_SPELLED_DOT}{_SPELLED_WORD}){{0,4}}?{_SPELLED_DOT}{_TLD}\b",
    re.I,
)
# Only texts with one of these can hold a spelled-out email (the full pattern is slow on long text).
_SPELLED_GATE = re.compile(r"\bdot\b|[(\[{<]\s*at\s*[)\]}>]|@|\.(?:com|org|net|uk|ie|io|info)\b", re.I)
_POSTCODE = re.compile(
    r"\b(?:GIR\s?0AA|[A-PR-UWYZ](?:\d{1,2}|[A-HK-Y]\d{1,2}|\d[A-HJKPSTUW]|[A-HK-Y]\d[ABEHMNPRVWXY])"
    r"\s?\d[ABD-HJLNP-UW-Z]{2})\b",
    re.I,
)
_DOB = re.compile(rf"{_DOB_WORDS}(?P<date>{_FULL_DATE}|{_MONTH_YEAR})", re.I)
_DATE = re.compile(_FULL_DATE, re.I)
_TEN_DIGITS = re.compile(  # 3-3-4 as the NHS prints it, also 4-3-3, 3-4-3, 5-5 or ten in a row
    rf"(?<![\d+])(?:\d{{3}}{_SEP}?\d{{3}}{_SEP}?\d{{4}}|\d{{4}}{_SEP}\d{{3}}{_SEP}\d{{3}}"
    rf"|\d{{3}}{_SEP}\d{{4}}{_SEP}\d{{3}}|\d{{5}}{_SEP}\d{{5}})(?!\d)")
_PHONE = re.compile(r"(?<![\w+])(?:\+44[\s.\-]?(?:\(0\)[\s.\-]?)?|\(?0)[\d\s.\-/()\u2010-\u2015\u2212]{8,16}\d")
_DIGIT = re.compile(r"\d")

_STREET_WORDS = (
    "Road|Rd|Street|St|Avenue|Ave|Lane|Ln|Close|Cl|Drive|Dr|Way|Crescent|Cres|Grove|Gr|Court|Ct"
    "|Place|Pl|Terrace|Terr|Tce|Gardens|Gdns|Walk|Row|Square|Sq|Hill|Park|Mews|Rise|Green|Parade"
    "|Vale|Boulevard|Mount|Brow|Croft|Yard|Villas|Meadows|Wharf|Quay|Cottages|Grange|Lea|Wynd|Fold"
)
_ADDRESS = re.compile(
    r"(?:\b(?:Flat|Apartment|Apt\.?|Unit|Room)\s+\d{1,4}[A-Za-z]?\s*,?\s*)?"
    r"(?<![\d.,/:£$€-])\b\d{1,3}[A-Za-z]?(?:\s*[-\u2013]\s*\d{1,3}[A-Za-z]?)?,?\s+"
    r"(?P<street>(?:(?:[A-Z][a-z'\u2019]+(?:-[A-Z][a-z]+)?|St\.?)\s+){1,3})"
    rf"(?P<kind>{_STREET_WORDS})\b"
)
_AGENCY_STREET_WORDS = frozenset("Court Ct Place Pl Park Way Walk Row Square Sq Green Yard Close Rise".split())
_ADDRESS_GATE = re.compile(rf"\b(?:{_STREET_WORDS})\b")

# A capitalised word (a name, a surname): letters after a capital, "Mc"/"O'" forms included.
_CAP_WORD = re.compile(r"\b(?:Mc|Mac|O['\u2019])?[A-Z\u00C0-\u00DE][a-z\u00DF-\u00FF]+(?:-[A-Z][a-z\u00DF-\u00FF]+)?\b")
# Words right after a capitalised word that say it is a person: "Ruby's mother", "Jade, aged 4".
_PERSON_AFTER = re.compile(
    r"(?:['\u2019]s\s+(?:mother|father|mum|mam|dad|parents?|grand(?:mother|father|parents?|ma|ad)|nan|"
    r"sisters?|brothers?|siblings?|aunt|auntie|uncle|cousin|carers?|step\w+|school|nursery|"
    r"teacher|social\s+worker|health\s+visitor|GP|bedroom|cot|injur(?:y|ies)|bruis\w+|weight|"
    r"wishes|voice|views|needs|behaviour|attendance|birth)\b"
    r"|,?\s*\(?aged?\s+\d)",
    re.I,
)
_SENTENCE_END = set(".!?:;\"'([{\u2018\u201c\u2022*-\u2013\u2014\n\r\t>|")

_INVISIBLE_CHARS: dict[int, str] = {}
for _c in list(range(0x00, 0x20)) + list(range(0x7F, 0xA0)):
    if _c not in (0x09, 0x0A, 0x0D):  # tab and line breaks (LF, and CR of Windows' CRLF) stay
        _INVISIBLE_CHARS[_c] = "control"
for _c in (0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x180E):
    _INVISIBLE_CHARS[_c] = "zero_width"
for _c in (0x200E, 0x200F, 0x061C, *range(0x202A, 0x202F), *range(0x2066, 0x206A)):
    _INVISIBLE_CHARS[_c] = "bidi"
_INVISIBLE = re.compile("[" + "".join(re.escape(chr(c)) for c in sorted(_INVISIBLE_CHARS)) + "]")


@dataclass(frozen=True)
class Hit:
    kind: str
    start: int  # in the original text
    end: int
    excerpt: str  # a few words either side, already redacted, for the report

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Screened:
    text: str
    hits: list[Hit] = field(default_factory=list)
    removed: Counter = field(default_factory=Counter)  # invisible characters removed, by kind

    @property
    def kinds(self) -> list[str]:
        """Kinds hit, each once, in the order of KINDS."""
        found = {h.kind for h in self.hits}
        return [k for k in KINDS if k in found]

    @property
    def changed(self) -> bool:
        return bool(self.hits or self.removed)


def nhs_number_valid(digits: str) -> bool:
    """The NHS number modulus-11 check: weights 10..2 on the first nine digits.

    11 - (sum mod 11) is the check digit, 11 meaning 0; 10 means the number cannot exist.
    Separators between the digits (spaces, dots, hyphens, slashes) are ignored.
    """
    digits = re.sub(r"[\s.\-/\u2010-\u2015\u2212]", "", unicodedata.normalize("NFKC", digits))
    if not re.fullmatch(r"[0-9]{10}", digits):
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1)))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(digits[9])


def _phone_digits_ok(candidate: str) -> bool:
    digits = re.sub(r"\D", "", candidate)
    if candidate.lstrip().startswith("+44"):
        national = digits[2:]
        national = national[1:] if national.startswith("0") else national
    else:
        if not digits.startswith("0"):
            return False
        national = digits[1:]
    return 9 <= len(national) <= 10 and not national.startswith("0")


def _normalise(text: str) -> tuple[str, list[int] | None, Counter]:
    """(NFKC form less invisible characters, position in `text` of each of its characters or
    None when it is `text` itself, invisible characters removed by kind)."""
    removed: Counter = Counter()
    if text.isascii() and _INVISIBLE.search(text) is None:
        return text, None, removed
    out: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        kind = _INVISIBLE_CHARS.get(ord(ch))
        if kind:
            removed[kind] += 1
            continue
        form = ch if ch.isascii() else unicodedata.normalize("NFKC", ch)
        out.append(form)
        origin.extend([i] * len(form))
    return "".join(out), origin, removed


def _sentence_start(text: str, pos: int) -> bool:
    i = pos - 1
    while i >= 0 and text[i] == " ":
        i -= 1
    return i < 0 or text[i] in _SENTENCE_END


_BETWEEN = frozenset(" ,:'\"(\u2018\u201c")
_IN_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.'\u2019-\u00e9")


def _word_before(text: str, pos: int) -> tuple[str, str, int]:
    """(the word before pos as written, lower case without "'s", where it starts): "sibling Theo",
    "mother, Jane", "Mrs. Jones", "Zoe's"; "known as" counts as one word. Nothing across the end
    of a sentence ("...the child. Schools were")."""
    j, skipped = pos - 1, 0
    while j >= 0 and text[j] in _BETWEEN and skipped < 4:
        j -= 1
        skipped += 1
    end = j + 1
    while j >= 0 and text[j] in _IN_WORD and end - j < 30:
        j -= 1
    written = text[j + 1:end]
    low = written.lower()
    if low.endswith("."):
        low = low.rstrip(".")
        if low not in _names.TITLES:
            return "", "", j + 1
    if low.endswith(("'s", "\u2019s")):
        low = low[:-2]
    if low == "as" and _word_before(text, j + 1)[1] == "known":
        return "known as", "known as", _word_before(text, j + 1)[2]
    return written, low, j + 1


def _name_spans(text: str) -> list[tuple[int, int]]:
    """Spans of names (given name, with a surname after it) by the rule in the module docstring."""
    given = _names.given_names()
    words = list(_CAP_WORD.finditer(text))
    if not words:
        return []
    spans: list[tuple[int, int]] = []
    for i, m in enumerate(words):
        if spans and m.start() < spans[-1][1]:
            continue
        low = m.group().lower()
        written, before, cue_at = _word_before(text, m.start())
        if before not in _names.CUES and before not in _names.TITLES and before not in _names.NOT_AFTER:
            if low not in given:
                continue
            before = ""
        nxt = words[i + 1] if i + 1 < len(words) else None
        adjacent = nxt is not None and text[m.end():nxt.start()] == " "
        surname = adjacent and nxt.group().lower() not in _names.NOT_SURNAMES and not (
            nxt.group().lower() in given and nxt.group().lower() in _names.NEVER_ALONE)
        if before in _names.NOT_AFTER:
            continue
        if nxt is not None and text[m.end():nxt.start()] in (" ", "'s ", "\u2019s ") and (
                low, nxt.group().lower()) in _names.NAMED_ORGANISATIONS:
            continue  # Lucy Faithfull Foundation, Zoe's Place
        if before in _names.TITLES:
            hit = low not in _names.NOT_SURNAMES
        elif before:
            # A cue makes a capitalised word a name even when the list lacks it ("sibling Theo"),
            # but not a title-case phrase ("Child Sexual Exploitation", "child Protection Plan").
            hit = low in given or (low not in _names.NOT_SURNAMES and (
                (written[:1].islower() or written in ("Baby", "known as"))
                and not (adjacent and nxt.group().lower() in _names.NOT_SURNAMES)
                # "Sibling Albie was...", but not "Child Death Overview Panel"
                or not adjacent and _sentence_start(text, cue_at)))
        elif low in _names.MONTHS_AND_DAYS:
            hit = False
        elif low in _names.NEVER_ALONE:
            hit = surname
        elif low in _names.WORD_NAMES:
            hit = surname or _PERSON_AFTER.match(text, m.end()) is not None or (
                not _sentence_start(text, m.start())
                and not adjacent
                and not _capitalised_before(text, m.start()))
        else:
            hit = True
        if not hit:
            continue
        end = nxt.end() if surname else m.end()
        spans.append((m.start(), end))
    return spans


def _capitalised_before(text: str, pos: int) -> bool:
    """Whether the word right before pos (one space between) is capitalised other than for
    starting the sentence ("Liverpool Hope", but not "When Grace", "Both Daisy")."""
    if pos < 2 or text[pos - 1] != " ":
        return False
    j = pos - 2
    while j >= 0 and (text[j].isalpha() or text[j] in "'\u2019") and pos - j < 30:
        j -= 1
    word = text[j + 1:pos - 1]
    return bool(word) and word[0].isupper() and not _sentence_start(text, j + 1)


def _spans(text: str, names: bool = True) -> list[tuple[int, int, str]]:
    """Non-overlapping (start, end, kind) hits, earliest rule first where two overlap."""
    found: list[tuple[int, int, str]] = []
    taken = bytearray(len(text))  # 1 where a hit is: checking is linear in the span, not in the hits

    def free(s: int, e: int) -> bool:
        return taken.find(1, s, e) == -1

    def add(s: int, e: int, kind: str) -> None:
        found.append((s, e, kind))
        taken[s:e] = b"\x01" * (e - s)

    if "@" in text:
        for m in _EMAIL.finditer(text):
            add(m.start(), m.end(), "email")
    if _SPELLED_GATE.search(text):
        for m in _SPELLED_EMAIL.finditer(text):
            if free(m.start(), m.end()):
                add(m.start(), m.end(), "email")
    if _DIGIT.search(text):
        for m in _POSTCODE.finditer(text):
            if free(m.start(), m.end()):
                add(m.start(), m.end(), "postcode")
        for m in _DOB.finditer(text):
            s, e = m.start("date"), m.end("date")
            if free(s, e):
                add(s, e, "date_of_birth")
        for m in _DATE.finditer(text):
            if free(m.start(), m.end()):
                add(m.start(), m.end(), "date")
        for m in _TEN_DIGITS.finditer(text):
            if free(m.start(), m.end()) and nhs_number_valid(m.group()):
                add(m.start(), m.end(), "nhs_number")
        pos = 0
        while (m := _PHONE.search(text, pos)) is not None:
            cand, pos = m.group(), m.end()
            if len(_DIGIT.findall(cand)) < 10:  # 0 and 9 more digits at least
                pos = m.start() + 1
                continue
            # The longest run that is a plausible number: "0151 496 0000 2 times" is 0151 496 0000;
            # the search goes on after it, so "0151 496 0000 0151 496 0001" is two numbers.
            for cut in sorted((g.end() for g in re.finditer(r"\d(?=\D|$)", cand)), reverse=True):
                s, e = m.start(), m.start() + cut
                if _phone_digits_ok(cand[:cut]):
                    if free(s, e):
                        add(s, e, "phone")
                    pos = e
                    break
            else:
                pos = m.start() + 1
        if _ADDRESS_GATE.search(text):
            for m in _ADDRESS.finditer(text):
                street_words = m.group("street").lower().split()
                if m.group("kind") in _AGENCY_STREET_WORDS and all(w in _names.NOT_STREETS for w in street_words):
                    continue  # "2 Family Court hearings", but "181 County Road" is an address
                if free(m.start(), m.end()):
                    add(m.start(), m.end(), "address")
    if names:
        for s, e in _name_spans(text):
            if free(s, e):
                add(s, e, "name")
    return sorted(found)


def _excerpt(redacted: str, pos: int, width: int = 40) -> str:
    start, end = max(0, pos - width), min(len(redacted), pos + len(REDACTED) + width)
    out = redacted[start:end].strip()
    return ("..." if start > 0 else "") + " ".join(out.split()) + ("..." if end < len(redacted) else "")


def screen(text: str | None, *, names: bool = True) -> Screened:
    """The text with invisible characters removed and every hit replaced by [redacted] (then
    stripped), the hits, and the invisible characters removed by kind. names=False leaves
    names alone (an author's or an agency's name is not a child's: see NAME_FIELDS)."""
    if text is None:
        return Screened("")
    text = str(text)
    norm, origin, removed = _normalise(text)
    spans = _spans(norm, names)
    if origin is not None:  # back to positions in the original text
        spans = [(origin[s], origin[e - 1] + 1, kind) for s, e, kind in spans]
    out, positions, last, length = [], [], 0, 0
    for s, e, _ in spans:
        part = _visible(text[last:s], removed)
        out.append(part)
        length += len(part)
        positions.append(length)
        out.append(REDACTED)
        length += len(REDACTED)
        last = e
    out.append(_visible(text[last:], removed))
    redacted = "".join(out)
    hits = [Hit(kind, s, e, _excerpt(redacted, pos)) for (s, e, kind), pos in zip(spans, positions)]
    return Screened(redacted.strip(), hits, removed)


def _visible(part: str, removed: Counter) -> str:
    return _INVISIBLE.sub("", part) if removed else part


def screen_free_text(text: str | None, *, names: bool = True) -> tuple[str, list[str]]:
    """(redacted text, kinds hit): the short form summary.py has always used."""
    result = screen(text, names=names)
    return result.text, result.kinds
