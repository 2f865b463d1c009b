"""Given names for free-text screening: a maintained list from a package, and the words around it.

Where the names come from: the `gender-guesser` package (PyPI; pinned in requirements.txt) ships
`nam_dict.txt`, Jörg Michael's dictionary of about 45,000 first names with a frequency (1 = rare
to 13 = extremely common) in each of 54 countries. `given_names()` reads it once per process
(memoised) and keeps the names that are in use where the children of Merseyside come from:
any frequency in Great Britain, Ireland or the U.S.A. (the U.S. column carries the names British
children are given now that the 2008 British column lacks, e.g. Chloe, Mia, Ellie), or a
frequency of at least 4 in the Arab countries, India, Pakistan and Central Asia, Turkey, Poland,
Romania, Lithuania, Latvia or China, or of at least 5 in France, Germany, the Netherlands,
Belgium, Spain, Portugal or Italy (Theo, Hugo). Names shorter than three letters are left out
("Al", "Jo" clash with too much ordinary text). About 9,000 names; no name is typed in here, and
the file is read where the package installed it, not copied into this repository (the package
is GPLv3, its nam_dict.txt is under the GNU Free Documentation License). The dictionary dates
from 2008: names that became common since and are in no column ("Alfie", "Albie") are missed
unless a cue says they are names.

What is typed in here is the other side: words that are names in that list but are far more
often something else in a safeguarding review, grouped by how much evidence screening.py needs
before it calls one a name (its module docstring gives the rule):
- MONTHS_AND_DAYS (months, days, festivals): a name only after a cue ("Baby May").
- NEVER_ALONE: agency and process words, Merseyside places, words a report capitalises ("May",
  "Mark", "Police", "Health", "Children", "Social", "Court", "Chester"): a name only after a cue
  ("named", "called", "child", "sibling", "mother", "Baby", ...) or followed by a surname.
- WORD_NAMES: ordinary English words that are also popular girls' and boys' names ("Grace",
  "Hope", "Will", "Rose", "Lily", "Ruby", "Jack", "Harry", "Mason"): a name after a cue, before
  a surname or words that make it a person ("Ruby's mother", "Jade, aged 4"), or when
  capitalised in the middle of a sentence on its own (where the ordinary word would be lower
  case); otherwise never at the start of a sentence ("Will the partnership...", "Grace
  periods...", "Hope was expressed...").
- NOT_SURNAMES: capitalised words that can follow a name without being a surname ("Street",
  "Hospital", "Care", "Team", "Half", "Term"): they never turn a NEVER_ALONE word into a name.
"""
from __future__ import annotations

import logging
from functools import lru_cache
from importlib import resources

log = logging.getLogger(__name__)

# nam_dict.txt: country frequencies are single hex digits from column 30, in this order.
_COUNTRIES = (
    "great_britain ireland usa italy malta portugal spain france belgium luxembourg the_netherlands "
    "east_frisia germany austria swiss iceland denmark norway sweden finland estonia latvia lithuania "
    "poland czech_republic slovakia hungary romania bulgaria bosnia croatia kosovo macedonia montenegro "
    "serbia slovenia albania greece russia belarus moldova ukraine armenia azerbaijan georgia the_stans "
    "turkey arabia israel china india japan korea vietnam other_countries"
).split()
_ANY_FREQUENCY = ("great_britain", "ireland", "usa")
_FREQUENCY_4 = ("arabia", "india", "the_stans", "turkey", "poland", "romania", "lithuania", "latvia", "china")
_FREQUENCY_5 = ("france", "germany", "the_netherlands", "belgium", "spain", "portugal", "italy")
_MIN_LENGTH = 3


def _words(text: str) -> frozenset[str]:
    return frozenset(text.lower().split())


MONTHS_AND_DAYS = _words("""
    january february march april may june july august september october november december
    monday tuesday wednesday thursday friday saturday sunday
    christmas easter ramadan eid diwali hanukkah passover jesus christ god allah lord
""")

# Agency, process and report words that are also names somewhere in the list, and words reports
# capitalise at the start of a sentence or in a title.
NEVER_ALONE = MONTHS_AND_DAYS | _words("""
    may can mark bill grant dean guy ray major judge justice king queen prince princess
    earl duke baron lord long young lane ward charity unity liberty chance chase
    trace mine said lie win rich red man key deep lean era genesis spring haven
    heaven price porter walker turner warren rush rock stone storm river brook forest heath
    dale glen cliff clay art con bell honor honour noble royal precious sterling patience prudence
    verity harmony serenity trinity destiny miracle melody sincere essence sky angel angels
    police health children social care court early help school academy trust council board
    service services team hub unit nurse worker family families partnership partner partners
    safeguarding review reviews panel hospital practice primary secondary college university
    local national regional north south east west central new old great little high low
    independent chair section article schedule part level stage step phase working together
    alder hey mersey wirral sefton knowsley helens liverpool merseyside crosby formby kirkby bootle
    walton chester everton anfield speke garston huyton prescot aintree halton maghull southport
    wallasey birkenhead newton norris hoylake heswall woolton allerton dingle toxteth kensington
    roma romany gypsy traveller irish african caribbean asian arab kurdish somali polish
    england britain wales scotland ireland france marine london manchester warrington wigan lancashire cheshire
    this that these those then than there their they when where which while what who why how
    after before during since until into onto upon over under about above below between
    within without across along among around though although because however also only
    even ever every each both either neither other another such same some many most more
    much very well just still yet again once here now today tomorrow
    his her hers him she he its our ours your yours we us them one two three four five six seven
    eight nine ten first second third last next
    in on at to of for from by with as an and or but not no nor so if is are was were be been
    being have has had do does did done the
""")

# Ordinary words that are also popular children's names: a name when capitalised mid-sentence.
WORD_NAMES = _words("""
    will grace hope faith summer autumn mason frank harmony destiny trinity
    lily ruby poppy daisy holly jade amber rose ivy willow hazel violet iris pearl olive penny robin
    jack harry crystal heather dawn joy sandy sunny misty blossom coral fern flora ginger jasmine
    rosemary meadow raven phoenix sage sierra skye jasper blake drew gene carol georgia
    austin tyler hunter skipper buddy rusty dusty sonny jay kit kitty bobby billy
""")

# Capitalised words that may follow a name in a report without being a surname.
NOT_SURNAMES = NEVER_ALONE | _words("""
    street road avenue lane close drive way crescent grove court place terrace gardens walk row
    square hill park mews rise view green parade vale boulevard mount brow croft gate yard villas
    bank meadow meadows wharf quay cottages heights fields grange house centre center hall church
    chapel station ward clinic surgery practice hospital hospice nursery academy school college
    trust foundation charity project programme program group network forum board committee
    panel meeting conference protocol policy procedure strategy plan plans assessment pathway
    framework guidance standard standards report audit review reviews inquiry enquiry enquiries
    half term holiday holidays bank day days week weeks month months year years time times
    period periods festival weekend morning afternoon evening night
    care health police team teams service services social children child young people adult
    adults family families hub unit units partnership partners agency agencies department
    office authority authorities council government ministry home homes housing education
    learning safeguarding protection support help early intervention mental substance misuse
    domestic abuse neglect exploitation violence risk risks harm offending justice youth court
    probation prison visitor visitors nurse nurses midwife midwives doctor doctors practitioner
    practitioners worker workers officer officers manager managers lead leads designated named
    the a an and or of in on at to for by with from is was were had has have not no but as it its
    this that these those he she they we i you his her their our my your who whom which what
    when where why how all any each every some one two three four five six seven eight nine ten
    after before during since until while because however although though also then than so
    following further other others same such only first second third last next new old
    mr mrs ms miss dr mx
    ofsted cafcass barnardo barnardos nspcc marac mash camhs operation encompass signs think
    graded profile serious incident rapid child practice lcspr scr dhr nhs gp
""")

# Words right before a name that say it is one ("named Grace", "sibling Will", "Baby May").
CUES = _words("""
    named called aka nee née child childs sibling siblings brother brothers sister sisters
    mother mothers father fathers mum mums mam mom dad dads baby babies son sons daughter
    daughters grandson granddaughter grandchild nephew niece cousin twin twins stepson
    stepdaughter stepbrother stepsister stepchild half-brother half-sister infant toddler pupil
    girl boy girlfriend boyfriend partner uncle aunt auntie nan nana grandmother grandfather
    grandma grandad mr mrs ms miss mx dr
""") | {"known as"}

# Words before "Court", "Park", "Place"... that make a house number and street word something
# else: "2 Family Court hearings", "3 Crown Court trials", "4 Care Place placements".
NOT_STREETS = _words("""
    family crown county youth magistrates magistrates' coroner coroner's coroners supreme appeal
    high civil criminal district combined juvenile children's childrens court police health care
    social school schools primary secondary nursery early learning help year years forward point
    step steps stage stages level levels section sections tier tiers car play safe placement
    hospital trust council board team teams panel
""")

# Organisations named after people: never redacted as a person's name.
NAMED_ORGANISATIONS = frozenset({
    ("lucy", "faithfull"), ("marie", "collins"), ("marie", "curie"), ("grace", "darling"),
    ("florence", "nightingale"), ("alder", "hey"), ("claire", "house"), ("zoe", "place"),
    ("ronald", "mcdonald"), ("sue", "ryder"), ("martin", "house"), ("jessie", "fund"),
})

# Words right before a capitalised word that make it a place or a building, not a person.
NOT_AFTER = _words("st st. saint")

TITLES = _words("mr mrs ms miss mx dr")


def _data_file():
    return resources.files("gender_guesser").joinpath("data", "nam_dict.txt")


@lru_cache(maxsize=1)
def given_names() -> frozenset[str]:
    """The given names screening looks for, lower case (read once per process). Without the
    gender-guesser package (requirements.txt pins it; tests/unit/test_bulletin_screening.py fails
    without it) names are only found after a cue or a title, and every process says so once."""
    try:
        data = _data_file()
    except ModuleNotFoundError:
        log.warning("free-text screening: the gender-guesser package is not installed, so given names are "
                    "not looked for except after a cue; install the pinned requirements (requirements.txt)")
        return frozenset()
    wanted_any = [_COUNTRIES.index(c) for c in _ANY_FREQUENCY]
    wanted_4 = [_COUNTRIES.index(c) for c in _FREQUENCY_4]
    wanted_5 = [_COUNTRIES.index(c) for c in _FREQUENCY_5]
    names: set[str] = set()
    with data.open("r", encoding="utf-8") as f:
        for line in f:
            if line[:1] in "#=" or len(line) < 31:
                continue
            if line[29] == "+":  # the same name again, sorted with expanded umlauts
                continue
            name = line[3:29].strip()
            if "+" in name or len(name) < _MIN_LENGTH or not name.isalpha():
                continue
            values = line[30:30 + len(_COUNTRIES)]
            freq = [int(c, 16) if c.strip() and c in "0123456789ABCDEFabcdef" else 0 for c in values]
            freq += [0] * (len(_COUNTRIES) - len(freq))
            if (any(freq[i] >= 1 for i in wanted_any) or any(freq[i] >= 4 for i in wanted_4)
                    or any(freq[i] >= 5 for i in wanted_5)):
                names.add(name.lower())
    return frozenset(names)
