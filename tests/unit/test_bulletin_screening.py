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
