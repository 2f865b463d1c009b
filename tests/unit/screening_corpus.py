"""A labelled corpus for free-text screening (reviews.privacy.screening): ordinary findings and
recommendations, which must come through unchanged, and sentences with planted personal details,
each of which must be gone after screening.

ORDINARY: sentences in the style of safeguarding practice reviews (multi-agency working,
professional curiosity, information sharing, neglect, domestic abuse, escalation, Police, Health,
schools, GP, health visitor, Working Together 2023, months and years, amounts, review ids, section
numbers), hand-written and composed from review phrases. PLANTED: (sentence, [planted strings])
with NHS numbers (valid check digit, plain, spaced, dotted, hyphenated, full-width), phone numbers,
postcodes, emails, spelled-out emails, street addresses, children's given names (the most popular
names given in England and Wales, typed here as test data: the screener's list comes from the
gender-guesser package), dates of birth and full-width variants. Everything is invented; the
numbers are in the ranges set aside for drama (01514960000-0151 496 0999, 07700 900000-900999)
or fail no check but belong to nobody we know of. Built deterministically (seed 14).
"""
from __future__ import annotations

import random

ORDINARY_HANDWRITTEN = [
    "Information held by one agency about risks in the household was not shared with others working with the family.",
    "Partners should agree a single route for sharing safeguarding concerns and audit its use.",
    "Assessments focused on the presenting incident and did not consider how risks had built up over time.",
    "Children's social care should refresh assessment guidance so that history and cumulative risk are weighed.",
    "Decisions to step down support were made without a multi-agency discussion.",
    "Practitioners accepted explanations for injuries and absences without seeking further information.",
    "Training on professional curiosity should use examples drawn from local reviews.",
    "The child was rarely seen alone and their wishes and feelings were not recorded.",
    "Parents appeared to engage with services, which masked a lack of change for the child.",
    "Agencies worked in parallel rather than together and no one held an overview of the child's needs.",
    "Signs of long-standing neglect were seen by several agencies but were not brought together.",
    "Police call-outs for domestic abuse were not linked to the children living in the home.",
    "Domestic abuse notifications should reach schools and health visitors by the next working day.",
    "The effect of a parent's mental ill health on their capacity to care was not assessed.",
    "The young person waited a long time for emotional health support after disclosing self-harm.",
    "Risks outside the home were treated as the parents' responsibility alone.",
    "Working Together 2023 sets out the expectation that agencies escalate concerns when they disagree.",
    "The escalation policy was not used, although the school had concerns for over six months.",
    "The GP was not invited to the initial child protection conference in March 2024.",
    "The health visitor saw the baby at the new birth visit but the father was not present.",
    "Merseyside Police shared the incident with the MASH within 24 hours.",
    "The rapid review (LIV-R-0042) was completed within 15 working days.",
    "Section 4.2 of the report describes the timeline of agency involvement.",
    "The review recommends that the partnership commissions a multi-agency audit of neglect cases.",
    "Health, Police and Children's Social Care attended the strategy meeting.",
    "The Early Help assessment was closed when the family moved to another area.",
    "The school nurse was unaware that the child had been missing from education.",
    "A Section 47 enquiry began the following day and the plan was reviewed in June 2024.",
    "The partnership spent £12,500 on multi-agency training in 2023/24.",
    "Supervision did not challenge the assumption that the mother was protective.",
    "The learning from this review has been shared with all designated safeguarding leads.",
    "Was Not Brought guidance should be used by every health provider in the region.",
    "The Child Safeguarding Practice Review Panel was notified within five working days.",
    "Professional curiosity about the adults in the household was limited.",
    "The Graded Care Profile 2 tool was not used despite repeated concerns about home conditions.",
    "The family's housing provider had reported concerns about the state of the property.",
    "Adult mental health services did not ask about children in the household.",
    "The Independent Reviewer met with practitioners from Health, Police and the local authority.",
    "Practitioners described high caseloads and frequent changes of social worker.",
    "Operation Encompass notifications reached the school before the start of the next school day.",
    "The MARAC referral was made but the children were not discussed at the meeting.",
    "Recommendation 3: the partnership should seek assurance that escalation is understood by all agencies.",
    "Finding 2: information sharing between maternity services and the health visiting service was delayed.",
    "Paragraph 5.14 notes that the threshold document was applied inconsistently.",
    "The review was published in October 2024 after the criminal trial concluded.",
    "Alder Hey Children's Hospital shared the discharge summary with the GP practice.",
    "Mersey Care and the Wirral University Teaching Hospital contributed chronologies.",
    "The partnership board in Sefton agreed the action plan in January 2025.",
    "Knowsley, Liverpool, Sefton, St Helens and Wirral will share a regional learning event.",
    "The St Helens partnership has commissioned a thematic review of adolescent neglect.",
    "A strategy discussion should take place whenever a non-mobile baby has a bruise.",
    "The bruising protocol was not followed by the out-of-hours GP service.",
    "There was no evidence that the voice of the child informed the plan.",
    "Disguised compliance was not recognised by the core group.",
    "Case records did not show how decisions about contact with the father were made.",
    "Probation held information about previous offending that was not shared with Children's Social Care.",
    "Youth Offending Service workers recognised signs of exploitation in May 2023.",
    "The National Referral Mechanism referral was delayed by three weeks.",
    "Schools should record every concern on the safeguarding system and review patterns monthly.",
    "The designated nurse will lead a review of the neglect strategy by April 2025.",
    "The family court made a supervision order in the summer of 2023.",
    "The child attended 4 of 12 planned health appointments.",
    "Reviewing officers should check that actions from the last review were completed.",
    "The Lucy Faithfull Foundation offered support to the wider family.",
    "The Marie Collins Foundation provided advice on online harm.",
    "Information from the Multi-Agency Safeguarding Hub was not passed on to the health visitor.",
    "Grace periods for missed appointments were applied inconsistently across GP practices.",
    "Hope was expressed by practitioners that the new tenancy would stabilise the family.",
    "Will the partnership be able to evidence the impact of training on practice?",
    "May 2024 saw the launch of the revised threshold guidance.",
    "Police, Health and Education are the statutory safeguarding partners.",
    "The ICB designated professionals should audit the use of the bruising protocol.",
    "Housing officers should be included in core groups where tenancy is at risk.",
    "The review found that fathers and male carers were often invisible to services.",
    "Practitioners should use interpreters rather than family members.",
    "The transfer of records between two local authorities took over eight weeks.",
    "CAMHS declined the referral because it did not meet the threshold.",
    "The child was placed on a child protection plan under the category of neglect.",
    "Emotional abuse was not identified as a risk until the third referral.",
    "The review covers the period from April 2022 to September 2023.",
    "Key lines of enquiry were agreed by the panel in February 2024.",
    "The independent author met the family twice during the review.",
    "Learning events were attended by 143 practitioners across the region.",
    "Ofsted noted similar findings in the joint targeted area inspection.",
    "Health colleagues should use the Think Family approach at every contact.",
    "Early Help Hub staff were not told that the case had been closed.",
    "In 2023 the partnership received 38 serious incident notifications.",
    "Around 60% of rapid reviews identified information sharing as a theme.",
    "A 7-minute briefing will be circulated to all agencies.",
    "Agencies should audit a sample of 20 cases against the new standards.",
    "The lead professional changed five times in eighteen months.",
    "The child's school attendance fell to 72% in the spring term.",
    "Court proceedings were issued in December 2023.",
    "Bank holiday cover arrangements meant the referral was not read until Tuesday.",
    "The out of hours team visited on a Saturday evening but did not see the children.",
    "The pre-birth assessment started at 32 weeks of pregnancy.",
    "Midwives should ask about domestic abuse at every antenatal appointment.",
    "The review's terms of reference were agreed on the basis of Working Together 2023 chapter 5.",
    "Brook and the school nurse service offered sexual health support.",
    "Barnardo's provided a specialist worker for children at risk of exploitation.",
    "Royal Liverpool University Hospital and Aintree hospitals did not share a records system.",
    "Child A was known to 14 agencies before the incident.",
    "Sibling 2 was not included in the assessment.",
    "The Designated Safeguarding Lead at the primary school made a referral.",
    "The Named Nurse for safeguarding attended the rapid review.",
    "The Local Authority Designated Officer was consulted about the allegation.",
    "The Independent Reviewing Officer raised concerns with the Head of Service.",
    "The family moved from Bootle to Kirkby in 2022 and then to Huyton.",
    "The child attended a nursery in Prescot and then a primary school in Halewood.",
    "The mother stayed at a Women's Aid refuge in Birkenhead for six weeks.",
    "Liverpool Women's Hospital made a pre-birth referral at 20 weeks.",
    "Christmas and New Year staffing meant that visits were delayed.",
    "During Ramadan the family's routines changed and appointments were missed.",
    "The Supporting Families programme funded a keyworker for twelve months.",
    "The child's Education, Health and Care Plan was not reviewed for 14 months.",
    "Several practitioners described the father as charming and plausible.",
    "The Signs of Safety framework is used by Knowsley Children's Services.",
    "The Learning Together methodology was used for the review.",
    "Prevent guidance from the Home Office was followed by the college.",
    "Victim Care Merseyside offered support to the mother.",
    "Claire House Children's Hospice provided palliative care and respite.",
    "Zoe's Place Baby Hospice offered the family short breaks.",
    "The Ronald McDonald House at Alder Hey accommodated the parents.",
    "Marie Curie nurses supported the grandmother at home.",
    "The Crown Prosecution Service decided not to charge in August 2023.",
    "2 Family Court hearings were adjourned because reports were late.",
    "The family lived in a two-bedroom flat on the third floor of a tower block.",
    "The Youth Justice Board standards were not met in 3 of 10 cases.",
    "Mark-ups on the chronology showed where agencies disagreed.",
    "Reviewers met the Head Teacher, the SENCo and the Deputy Head.",
    "Frank conversations with the family did not take place.",
    "Rose-tinted accounts of progress were accepted by the core group.",
    "The child was seen at Whiston Hospital and then at Arrowe Park Hospital.",
    "Jack-knifing of the case between teams caused delay.",
    "The school's Christmas holidays began on 20 December.",
    "Dean Street clinic was not involved.",
    "New Beginnings, the parenting programme, had a waiting list of 10 weeks.",
    "Summer holidays are a known period of risk for children on plans.",
    "The Local Safeguarding Children Board was replaced by the partnership in 2019.",
    "The review considered 4 Step Down decisions made by the team.",
    "Page 12 of the chronology sets out the contacts made by Health Visiting.",
    "The Troubled Families Unit was renamed in 2021.",
    "Learning from the Wirral review was shared at the regional Practice Forum.",
    "Outreach to Gypsy, Roma and Traveller families was limited.",
    "The Channel panel and the Prevent lead were not told about the online contact.",
]

_AGENCIES = [
    "Police", "Health", "Children's Social Care", "the school", "the GP practice", "the health visitor",
    "Merseyside Police", "the local authority", "Early Help", "the Youth Justice Service", "Probation",
    "the ICB", "Adult Social Care", "the housing provider", "maternity services", "CAMHS",
    "the school nurse", "Education", "the Multi-Agency Safeguarding Hub", "the ambulance service",
]
_ISSUES = [
    "information sharing", "professional curiosity", "escalation", "neglect", "domestic abuse",
    "multi-agency working", "the voice of the child", "cumulative harm", "parental mental health",
    "parental substance misuse", "extrafamilial harm", "disguised compliance", "missing episodes",
    "child criminal exploitation", "safe sleep", "non-mobile babies with bruising",
    "whole family assessment", "risk assessment", "decision making", "transition to adult services",
]
_WHEN = [
    "in March 2024", "during 2023", "in the spring term", "from April 2022", "by June 2025",
    "before the rapid review", "within 15 working days", "in the year to March 2024",
    "over eighteen months", "after the strategy meeting", "in Q3 2023/24", "since January 2023",
    "between 2021 and 2023", "in the autumn", "at the initial child protection conference",
]
_SUBJECT_VERBS = [
    "{a} did not share what it knew about {i} {w}.",
    "{a} should review its approach to {i} {w}.",
    "The partnership will audit {i} across agencies {w}.",
    "Practitioners in {a} described {i} as the main challenge {w}.",
    "{a} recognised concerns about {i} but did not escalate them {w}.",
    "The review found limited evidence of {i} by {a} {w}.",
    "Learning about {i} from review {r} has been shared with {a}.",
    "Section {s} of review {r} considers {i}.",
    "{a} and {b} should agree a joint protocol on {i} {w}.",
    "Training on {i} for {a} cost £{m} {w}.",
    "The action on {i} owned by {a} was completed {w}.",
    "Recommendation {n}: {a} should provide assurance on {i} {w}.",
    "Finding {n}: {i} was not considered by {a} {w}.",
    "Working Together 2023 expects {a} to lead on {i}.",
    "{a} attended {n} of {k} core group meetings {w}.",
    "The chronology from {a} shows gaps in {i} {w}.",
    "{a} held information relevant to {i} that was not shared with {b}.",
    "Paragraph {s} notes that {a} had no policy on {i}.",
    "Audit of {k} cases by {a} {w} found weaknesses in {i}.",
    "The panel asked {a} to explain its approach to {i}.",
]


def _review_id(rng: random.Random) -> str:
    return f"{rng.choice(['KNO', 'LIV', 'SEF', 'STH', 'WIR'])}-{rng.choice(['R', 'N', 'P'])}-{rng.randint(1, 999):04d}"


def _cap(text: str) -> str:
    return text[0].upper() + text[1:]


def ordinary_sentences(extra: int = 260, seed: int = 14) -> list[str]:
    rng = random.Random(seed)
    out = list(ORDINARY_HANDWRITTEN)
    for _ in range(extra):
        template = rng.choice(_SUBJECT_VERBS)
        a, b = rng.sample(_AGENCIES, 2)
        out.append(_cap(template.format(
            a=a, b=b, i=rng.choice(_ISSUES), w=rng.choice(_WHEN), r=_review_id(rng),
            s=f"{rng.randint(1, 9)}.{rng.randint(1, 20)}", m=f"{rng.randint(1, 40)},{rng.randint(0, 9)}00",
            n=rng.randint(1, 9), k=rng.randint(10, 40))))
    return out


# Test data: given names among the most popular for babies in England and Wales in recent years,
# and names common in Merseyside's communities. Not the screener's list.
CHILD_NAMES = [
    "Oliver", "George", "Noah", "Arthur", "Leo", "Oscar", "Harry", "Jack", "Charlie", "Thomas",
    "Jacob", "Freddie", "Theo", "Henry", "Archie", "Theodore", "Joshua", "Alexander", "James",
    "William", "Isaac", "Edward", "Lucas", "Tommy", "Finley", "Max", "Logan", "Ethan", "Teddy",
    "Benjamin", "Arlo", "Joseph", "Sebastian", "Harrison", "Elijah", "Adam", "Daniel", "Samuel",
    "Louie", "Mason", "Reggie", "Hugo", "Ronnie", "Liam", "Callum", "Kieran", "Connor", "Declan",
    "Ryan", "Kyle", "Jayden", "Tyler", "Riley", "Muhammad", "Mohammed", "Yusuf", "Ibrahim", "Omar",
    "Olivia", "Amelia", "Isla", "Ava", "Ivy", "Freya", "Lily", "Florence", "Mia", "Willow", "Rosie",
    "Sophia", "Isabella", "Grace", "Daisy", "Sienna", "Poppy", "Elsie", "Emily", "Ella", "Evelyn",
    "Phoebe", "Sophie", "Evie", "Charlotte", "Harper", "Millie", "Matilda", "Ruby", "Maya",
    "Isabelle", "Layla", "Ellie", "Chloe", "Jessica", "Niamh", "Aoife", "Siobhan", "Leah",
    "Chantelle", "Jade", "Courtney", "Bethany", "Paige", "Shannon", "Mollie", "Esme", "Nancy",
    "Aisha", "Fatima", "Maryam", "Zainab", "Amira", "Hannah", "Sarah", "Emma", "Laura", "Jane",
    "Alfie", "Albie", "Ezra", "Hallie", "Margot", "Sonny", "Bonnie", "Elodie",
]
SURNAMES = ["Jones", "Smith", "Williams", "Taylor", "Brown", "Davies", "Evans", "Roberts", "Hughes",
            "McDonald", "O'Brien", "Murphy", "Kelly", "Ahmed", "Khan", "Nowak", "Kowalski", "Okafor"]
STREETS = ["Acacia Avenue", "Hope Street", "Bold Street", "Church Road", "Park Lane", "Mill Close",
           "Oak Drive", "Priory Way", "Station Road", "Laurel Crescent", "Elm Grove", "Victoria Court",
           "Canning Place", "Rodney Terrace", "Orchard Gardens", "Queens Drive", "Castle Street",
           "Rice Lane", "Scotland Road", "Smithdown Road", "Breck Road", "County Road", "Beech Walk",
           "Marine Parade", "Seaview Rise", "Poplar Mews", "Sandy Lane", "Stanley Park Avenue"]
POSTCODES = ["L8 0AB", "CH41 5LH", "L36 9YU", "PR8 1DJ", "WA10 1HP", "L20 3NJ", "CH44 7HS", "L4 4EL",
             "l8 0ab", "L35 2XA", "WA9 5AA", "CH62 4TE"]
# Valid NHS numbers (check digit holds), invented.
NHS_NUMBERS = ["9434765919", "4010232137", "4505577104", "9876543210", "3478123402", "6426212997",
               "3832364056", "4061358952"]
PHONES = ["0151 496 0000", "0151.496.0123", "0151-496-0456", "01514960789", "+44 151 496 0321",
          "07700 900123", "07700.900.456", "+44 7700 900789", "(0151) 496 0999", "0151/496/0111",
          "+44 (0)7700 900222"]
EMAILS = ["jane.doe@gmail.com", "mum1985@hotmail.co.uk", "j.smith@example.org", "dad_k@yahoo.com",
          "carer.name@outlook.com"]
SPELLED_EMAILS = ["jane dot doe at gmail dot com", "jane(at)example(dot)org", "jo.bloggs at hotmail dot co dot uk",
                  "mark smith at yahoo dot com", "kerry [at] example [dot] net", "sam dot ward at gmail.com",
                  "mum85 AT hotmail DOT com"]
DATES_OF_BIRTH = [("DOB ", "03/04/2019"), ("born on ", "3rd April 2019"), ("date of birth: ", "14.11.2020"),
                  ("D.O.B. ", "2018-07-22"), ("born ", "5 January 2021"), ("DOB: ", "28/02/2017"),
                  ("born in ", "March 2019"), ("dob ", "1/6/18")]

_FULLWIDTH = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)})


def fullwidth(text: str) -> str:
    return text.translate(_FULLWIDTH)


def _group_nhs(number: str, sep: str) -> str:
    return f"{number[:3]}{sep}{number[3:6]}{sep}{number[6:]}"


_NAME_CONTEXTS = [
    ("{n} was not seen by the health visitor.", "{n}"),
    ("The school saw {n} every day but did not record the bruises.", "{n}"),
    ("{n}'s mother said the father had left the home.", "{n}"),
    ("The social worker spoke to {n} alone on two occasions.", "{n}"),
    ("Sibling {n} was not included in the assessment.", "{n}"),
    ("Baby {n} was admitted to hospital with a head injury.", "{n}"),
    ("{n} {s} attended the GP surgery with her mother.", "{n} {s}"),
    ("A child named {n} was referred by the school.", "{n}"),
    ("The mother, {n} {s}, declined the Early Help offer.", "{n} {s}"),
    ("Practitioners did not ask {n} about life at home.", "{n}"),
    ("His sister {n} told a teacher about the shouting.", "{n}"),
    ("Police found {n} alone in the flat.", "{n}"),
]
_CARRIERS = [
    "The referral gave {x} but no one followed it up.",
    "Contact details ({x}) were copied into the chronology.",
    "Records show {x} for the family.",
    "The school held {x} on its system.",
    "Practitioners used {x} to contact the mother.",
    "{x} was recorded in the health visiting notes.",
]


def planted_sentences(seed: int = 14) -> list[tuple[str, list[str]]]:
    """(sentence, planted strings) pairs: at least 200, every kind many times."""
    rng = random.Random(seed)
    out: list[tuple[str, list[str]]] = []

    def carrier(x: str) -> str:
        return _cap(rng.choice(_CARRIERS).format(x=x))

    for number in NHS_NUMBERS:
        for form in (number, _group_nhs(number, " "), _group_nhs(number, "."), _group_nhs(number, "-"),
                     fullwidth(number), _group_nhs(number, "/"), f"{number[:4]} {number[4:7]} {number[7:]}",
                     fullwidth(_group_nhs(number, " "))):
            out.append((carrier(f"NHS number {form}"), [form]))
    for phone in PHONES:
        out.append((carrier(f"the number {phone}"), [phone]))
        out.append((carrier(f"mobile {fullwidth(phone)}"), [fullwidth(phone)]))
    for postcode in POSTCODES:
        out.append((carrier(f"an address in {postcode}"), [postcode]))
    for email in EMAILS:
        out.append((carrier(f"the email {email}"), [email]))
        out.append((carrier(f"the email {fullwidth(email)}"), [fullwidth(email)]))
    for email in SPELLED_EMAILS:
        out.append((carrier(email), [email]))
        out.append((f"Mum asked for letters to go to {email} instead of the post.", [email]))
    for i, street in enumerate(STREETS):
        number = rng.randint(1, 199)
        address = f"{number} {street}"
        out.append((f"The family moved to {address} in March 2024.", [address]))
        flat = f"Flat {i + 1}, {number} {street}"
        out.append((f"The children lived at {flat} with their grandmother.", [flat]))
    for words, date_text in DATES_OF_BIRTH:
        out.append((f"The child ({words}{date_text}) was not registered with a GP.", [date_text]))
        out.append((f"The child ({words}{fullwidth(date_text)}) was seen.", [fullwidth(date_text)]))
    for name in CHILD_NAMES:
        template, planted = rng.choice(_NAME_CONTEXTS)
        surname = rng.choice(SURNAMES)
        out.append((template.format(n=name, s=surname), [planted.format(n=name, s=surname)]))
    for _ in range(40):  # several kinds in one sentence
        name = rng.choice(CHILD_NAMES)
        phone, postcode = rng.choice(PHONES), rng.choice(POSTCODES)
        number = _group_nhs(rng.choice(NHS_NUMBERS), rng.choice([" ", ".", "-", ""]))
        street = f"{rng.randint(1, 99)} {rng.choice(STREETS)}"
        email = rng.choice(EMAILS + SPELLED_EMAILS)
        out.append((f"{name} {rng.choice(SURNAMES)} (NHS {number}) lived at {street}, {postcode}; "
                    f"mum's number was {phone} and her email {email}.",
                    [name, number, street, postcode, phone, email]))
    return out


def planted_gone(screened: str, planted: str) -> bool:
    """Whether a planted detail no longer appears (a name as a whole word, anything else anywhere)."""
    import re

    if re.fullmatch(r"[A-Z][a-z]+(?: [A-Z][a-z'A-Z]+)?", planted):
        return all(re.search(rf"\b{re.escape(word)}\b", screened) is None for word in planted.split())
    return planted not in screened
