"""The free-text screener as it was before issue 14, kept as the baseline of `make bench --only
screening` (recall, ordinary sentences changed, speed). Not used by the product: see
reviews.privacy.screening. Its own docstring follows.

Screen free text from reviews for personal details before it can leave the business unit.

Findings and recommendations are written by people, and people sometimes paste in what should
never travel: an NHS number, an address, an email, a phone number, a child's date of birth.
Every free-text field that goes into a bulletin, a 7-minute briefing or an export passes
through `screen`; each hit is replaced by "[redacted]" and reported (kind, where, a masked
excerpt), so the business unit can go back to the partnership and have the return corrected.

What counts as a hit, and why:
- nhs_number: ten digits, optionally grouped 3-3-4 with spaces or hyphens, whose last digit is
  the NHS modulus-11 check digit of the first nine. The check digit is what tells an NHS
  number from any other ten-digit figure; a ten-digit run that fails it is not reported as an
  NHS number (it may still be caught as a phone number when it looks like one).
- postcode: a full UK postcode (outward and inward code, e.g. "CH41 5LH", "L8 0AB"); outward
  codes alone ("L8") name a district of thousands of homes and are left.
- email: anything shaped like local@domain.tld.
- phone: UK numbers, 0 or +44 then 9 or 10 further digits, spaces, hyphens and brackets allowed.
- date_of_birth: a date (full, or month and year) after "born", "DOB", "D.O.B." or "date of
  birth".
- date: any other full date (day, month and year, in figures or words). A date of birth cannot
  be told from any other date by its look, and an incident date narrows down a child almost as
  much, so every full date is redacted. A month and year alone ("in March 2023") is kept.

Order matters: emails before postcodes (an email may hold one), dates before numbers.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

REDACTED = "[redacted]"
KINDS = ("email", "postcode", "date_of_birth", "date", "nhs_number", "phone")
KIND_LABELS = {
    "email": "email address",
    "postcode": "postcode",
    "date_of_birth": "date of birth",
    "date": "date",
    "nhs_number": "NHS number",
    "phone": "phone number",
}

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

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
_POSTCODE = re.compile(
    r"\b(?:GIR\s?0AA|[A-PR-UWYZ](?:\d{1,2}|[A-HK-Y]\d{1,2}|\d[A-HJKPSTUW]|[A-HK-Y]\d[ABEHMNPRVWXY])"
    r"\s?\d[ABD-HJLNP-UW-Z]{2})\b",
    re.I,
)
_DOB = re.compile(rf"{_DOB_WORDS}(?P<date>{_FULL_DATE}|{_MONTH_YEAR})", re.I)
_DATE = re.compile(_FULL_DATE, re.I)
_TEN_DIGITS = re.compile(r"(?<![\d+])\d{3}[ \-]?\d{3}[ \-]?\d{4}(?!\d)")
_PHONE = re.compile(r"(?<![\w+])(?:\+44[\s\-]?(?:\(0\)[\s\-]?)?|\(?0)[\d\s\-()]{8,16}\d")


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

    @property
    def kinds(self) -> list[str]:
        """Kinds hit, each once, in the order of KINDS."""
        found = {h.kind for h in self.hits}
        return [k for k in KINDS if k in found]


def nhs_number_valid(digits: str) -> bool:
    """The NHS number modulus-11 check: weights 10..2 on the first nine digits.

    11 - (sum mod 11) is the check digit, 11 meaning 0; 10 means the number cannot exist.
    """
    digits = re.sub(r"[\s\-]", "", digits)
    if not re.fullmatch(r"\d{10}", digits):
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


def _spans(text: str) -> list[tuple[int, int, str]]:
    """Non-overlapping (start, end, kind) hits, earliest rule first where two overlap."""
    found: list[tuple[int, int, str]] = []

    def free(s: int, e: int) -> bool:
        return all(e <= a or s >= b for a, b, _ in found)

    for m in _EMAIL.finditer(text):
        found.append((m.start(), m.end(), "email"))
    for m in _POSTCODE.finditer(text):
        if free(m.start(), m.end()):
            found.append((m.start(), m.end(), "postcode"))
    for m in _DOB.finditer(text):
        s, e = m.start("date"), m.end("date")
        if free(s, e):
            found.append((s, e, "date_of_birth"))
    for m in _DATE.finditer(text):
        if free(m.start(), m.end()):
            found.append((m.start(), m.end(), "date"))
    for m in _TEN_DIGITS.finditer(text):
        if free(m.start(), m.end()) and nhs_number_valid(m.group()):
            found.append((m.start(), m.end(), "nhs_number"))
    for m in _PHONE.finditer(text):
        cand = m.group()
        # The longest run that is a plausible number: "0151 496 0000 2 times" is 0151 496 0000.
        for cut in sorted((g.end() for g in re.finditer(r"\d(?=\D|$)", cand)), reverse=True):
            s, e = m.start(), m.start() + cut
            if _phone_digits_ok(cand[:cut]):
                if free(s, e):
                    found.append((s, e, "phone"))
                break
    return sorted(found)


def _excerpt(redacted: str, pos: int, width: int = 40) -> str:
    start, end = max(0, pos - width), min(len(redacted), pos + len(REDACTED) + width)
    out = redacted[start:end].strip()
    return ("..." if start > 0 else "") + " ".join(out.split()) + ("..." if end < len(redacted) else "")


def screen(text: str | None) -> Screened:
    """The text with every hit replaced by [redacted] (then stripped), and the hits."""
    if text is None:
        return Screened("")
    text = str(text)
    spans = _spans(text)
    out, positions, last = [], [], 0
    for s, e, _ in spans:
        out.append(text[last:s])
        positions.append(sum(len(p) for p in out))
        out.append(REDACTED)
        last = e
    out.append(text[last:])
    redacted = "".join(out)
    hits = [Hit(kind, s, e, _excerpt(redacted, pos)) for (s, e, kind), pos in zip(spans, positions)]
    return Screened(redacted.strip(), hits)


def screen_free_text(text: str | None) -> tuple[str, list[str]]:
    """(redacted text, kinds hit): the short form summary.py has always used."""
    result = screen(text)
    return result.text, result.kinds
