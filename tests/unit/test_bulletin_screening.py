"""Free-text screening: what is redacted, what is left, and what the business unit is told."""
from __future__ import annotations

import pytest

from reviews.privacy.screening import REDACTED, nhs_number_valid, screen, screen_free_text


@pytest.mark.parametrize("number, valid", [
    ("9434765919", True), ("943 476 5919", True), ("943-476-5919", True), ("4010232137", True),
    ("9434765918", False),  # wrong check digit
    ("1234567890", False),  # check digit would be 10: no such number
    ("943476591", False), ("94347659190", False),
])
def test_nhs_number_check_digit(number, valid):
    assert nhs_number_valid(number) is valid


def test_nhs_numbers_are_redacted_only_when_the_check_digit_holds():
    hit = screen("Baby's NHS number 943 476 5919 was not on the referral.")
    assert hit.text == f"Baby's NHS number {REDACTED} was not on the referral." and hit.kinds == ["nhs_number"]
    miss = screen("Reference 943 476 5918 in the minutes.")
    assert miss.text == "Reference 943 476 5918 in the minutes." and miss.hits == []


@pytest.mark.parametrize("text, kind", [
    ("Family moved to CH41 5LH in the spring.", "postcode"),
    ("Seen at l8 0ab by the health visitor.", "postcode"),
    ("Email jo.bloggs+sw@example.co.uk for the notes.", "email"),
    ("Call 0151 496 0000 after 5pm.", "phone"),
    ("Mobile 07700 900123.", "phone"),
    ("Ring +44 (0)7700 900123 now.", "phone"),
    ("(0151) 496-0000 was the number.", "phone"),
    ("The child (DOB 03/04/2019) was seen.", "date_of_birth"),
    ("Born on 3rd April 2019 at home.", "date_of_birth"),
    ("Date of birth: March 2019.", "date_of_birth"),
    ("Seen on 2023-11-05 by the GP.", "date"),
    ("Visited on 5 November 2023.", "date"),
    ("Visited on November 5, 2023.", "date"),
])
def test_each_kind_is_found(text, kind):
    result = screen(text)
    assert kind in result.kinds, (text, result)
    assert REDACTED in result.text


@pytest.mark.parametrize("text", [
    "Information was not shared across 3 agencies in 2023.",
    "In March 2023 the plan was stepped down.",  # a month and year alone is kept
    "The L8 area has 12 schools; 15 working days were allowed.",
    "Section 47 enquiries began within 24 hours.",
])
def test_ordinary_text_is_left_alone(text):
    assert screen(text).text == text and screen(text).hits == []


def test_hits_are_listed_with_redacted_excerpts_only():
    text = "Mum (jo@example.com, 0151 496 0000) said the baby was born 03/04/2023 at CH41 5LH; NHS 9434765919."
    result = screen(text)
    assert [h.kind for h in result.hits] == ["email", "phone", "date_of_birth", "postcode", "nhs_number"]
    for h in result.hits:
        assert text[h.start:h.end] and REDACTED in h.excerpt
        for secret in ("jo@example.com", "0151", "03/04/2023", "CH41", "9434765919"):
            assert secret not in h.excerpt
    assert screen_free_text(text) == (result.text, result.kinds)


def test_a_phone_number_followed_by_a_count_is_still_found():
    assert screen("call 0151 496 0000 2 times").text == f"call {REDACTED} 2 times"


def test_blank_text():
    assert screen(None).text == "" and screen("   ").text == ""


# ------------------------------------------------------------------ issue 14: normalised first

@pytest.mark.parametrize("text, kind, secret", [
    ("Health visitor noted NHS 943.476.5919 on the file.", "nhs_number", "943.476.5919"),
    ("The GP letter gave 9876 543 210 as the number.", "nhs_number", "9876 543 210"),
    ("NHS ９４３４７６５９１９ was on the letter.", "nhs_number", "９４３４７６５９１９"),
    ("NHS 943/476/5919 was on the letter.", "nhs_number", "943/476/5919"),
    ("Mum was reached on 0151.496.0000 after the visit.", "phone", "0151.496.0000"),
    ("Ring +44 151 496 0000 first.", "phone", "+44 151 496 0000"),
    ("The school rang ０１５１ ４９６ ００４４ twice.", "phone", "０１５１ ４９６ ００４４"),
    ("Mobile 07700 900123 was given.", "phone", "07700 900123"),
    ("Write to ｊｏ＠ｅｘａｍｐｌｅ．ｃｏｍ today.", "email", "ｊｏ＠ｅｘａｍｐｌｅ．ｃｏｍ"),
    ("Referrals were sent to jane dot doe at gmail dot com by the school.", "email", "jane dot doe at gmail dot com"),
    ("Contact jane(at)example(dot)org for notes.", "email", "jane(at)example(dot)org"),
    ("Contact kerry [at] example [dot] net for notes.", "email", "kerry [at] example [dot] net"),
    ("The family moved to 12 Acacia Avenue in the spring.", "address", "12 Acacia Avenue"),
    ("They lived at Flat 3, 4 Hope Street for a year.", "address", "Flat 3, 4 Hope Street"),
    ("Post went to 27b Rice Lane instead.", "address", "27b Rice Lane"),
    ("Kayden and his sister Maisie were not seen alone.", "name", "Kayden"),
    ("The school saw Lily every day.", "name", "Lily"),
    ("A child named Grace was referred.", "name", "Grace"),
    ("Baby May was admitted.", "name", "May"),
    ("Will Jones attended with his mother.", "name", "Will Jones"),
    ("Ruby's mother declined the offer.", "name", "Ruby"),
    ("Mrs Okafor spoke to the school.", "name", "Okafor"),
    ("The boy, known as Theo, was seen.", "name", "Theo"),
])
def test_issue_14_forms_are_found(text, kind, secret):
    result = screen(text)
    assert kind in result.kinds, (text, result)
    assert secret not in result.text and REDACTED in result.text
    for hit in result.hits:
        assert secret not in hit.excerpt


@pytest.mark.parametrize("text", [
    "Will the partnership be able to evidence the impact of training?",
    "May 2024 saw the launch of the revised threshold guidance.",
    "In May the Police and Health agreed a protocol.",
    "Grace periods for missed appointments were applied inconsistently.",
    "Hope was expressed that the new tenancy would help.",
    "Rose-tinted accounts of progress were accepted.",
    "Police, Health and Children's Social Care attended the strategy meeting.",
    "St Mary's Primary School and the Lucy Faithfull Foundation gave evidence.",
    "Child Sexual Exploitation was not recognised; the child Protection Plan lapsed.",
    "2 Family Court hearings were adjourned.",
    "The rapid review (LIV-R-0042) was completed within 15 working days; see section 4.2.",
    "Training cost £12,500 in 2023/24 under Working Together 2023.",
    "The family moved from Bootle to Kirkby in March 2024.",
    "Dean Street clinic was not involved.",
    "We met at school to discuss the plan.",
])
def test_issue_14_ordinary_text_is_left_alone(text):
    result = screen(text)
    assert result.text == text and result.hits == [], result


def test_names_only_where_asked():
    assert screen("Report by Jane Smith.", names=False).text == "Report by Jane Smith."
    assert screen("Report by Jane Smith.").text == f"Report by {REDACTED}."


def test_invisible_characters_are_removed_and_counted_never_quoted():
    text = "Agencies \u202ewere not\u202c told \u200fin time\x07 and \u202bthe plan\u202c lapsed\u200b.\tOK\nnext"
    result = screen(text)
    assert result.text == "Agencies were not told in time and the plan lapsed.\tOK\nnext"
    assert result.removed == {"bidi": 5, "control": 1, "zero_width": 1} and result.hits == []
    assert result.changed
    for ch in ("\u0000", "\u0085", "\u2066", "\u2069", "\u061c", "\ufeff", "\u200d"):
        assert screen(f"a{ch}b").text == "ab", repr(ch)
    assert screen("two\r\nlines\tand a tab").text == "two\r\nlines\tand a tab"  # line breaks stay


def test_hit_positions_are_in_the_original_text_after_invisible_and_full_width_characters():
    text = "\u202eNHS ９４３４７６５９１９ and 0151 496 0000"
    result = screen(text)
    assert [text[h.start:h.end] for h in result.hits] == ["９４３４７６５９１９", "0151 496 0000"]
    assert result.text == f"NHS {REDACTED} and {REDACTED}"


def test_the_names_list_comes_from_the_package_and_is_read_once():
    from reviews.privacy import names

    first = names.given_names()
    assert first is names.given_names()  # memoised
    assert {"oliver", "muhammad", "chloe", "niamh", "maisie", "kayden", "theo"} <= first
    assert len(first) > 5000
    assert not {"the", "and", "al", "jo"} & first  # short names are left out


def test_numbers_side_by_side_are_each_found():
    text = "call 0151 496 0000 0151 496 0001 or 07700 900123 07700 900124"
    assert screen(text).text == f"call {REDACTED} {REDACTED} or {REDACTED} {REDACTED}"


@pytest.mark.parametrize("text", [
    "a dot " * 5000 + "at b", "a." * 10000 + "@", "a-" * 15000 + "@", "1 A " * 5000 + " Road",
    "x." + "Jane." * 6000, "a@a." * 5000, "0 " * 10000, "12 Acacia " * 3000 + "Road", " " * 50000 + "x",
], ids=["spelled", "dotted", "hyphens", "address", "names", "ats", "zeros", "streets", "spaces"])
def test_hostile_long_text_takes_linear_time(text):
    """Each took 2 to 10 s (quadratic) before the patterns were bounded; now under 0.3 s here."""
    import time

    start = time.perf_counter()
    screen(text)
    assert time.perf_counter() - start < 1.5
