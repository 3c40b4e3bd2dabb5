"""Duplicate scoring and blocking, without a database."""

import uuid

import pytest

from cdp.duplicates import (
    Agreement,
    Candidate,
    candidate_pairs,
    compare,
    compare_names,
    find_candidates,
    fingerprint,
    mailbox,
    parse_address,
    parse_name,
    parse_phone,
)
from cdp.model import Identifier


def pid(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


def match(a: dict, b: dict):
    return compare(fingerprint(a), fingerprint(b))


def test_near_duplicate_name_and_reformatted_phone():
    found = match(
        {"name": "Jon Smith", "phone": "+44 20 7946 0958"},
        {"first_name": "John", "last_name": "Smith", "phone": "+442079460958"},
    )
    assert found is not None
    assert found.reasons == ("name 95", "phone equal")
    assert 0.8 <= found.score <= 1


def test_national_format_phone_matches_on_its_last_nine_digits():
    found = match(
        {"name": "Jon Smith", "phone": "+44 20 7946 0958"},
        {"name": "John Smith", "phone": "020 7946 0958"},
    )
    assert found is not None
    assert found.reasons == ("name 95", "phone last 9 digits equal")


def test_two_international_numbers_with_the_same_tail_are_different_phones():
    found = match(
        {"name": "Ann Lee", "phone": "+12025550199", "address": "3 Elm Road"},
        {"name": "Ann Lee", "phone": "+442025550199", "address": "3 Elm Road"},
    )
    assert found is not None
    assert "phone differs" in found.reasons


def test_a_common_name_alone_is_not_enough():
    assert match({"name": "John Smith"}, {"name": "John Smith"}) is None
    assert (
        match(
            {"name": "John Smith", "email": "js@example.com", "phone": "+4791234567"},
            {"name": "John Smith", "email": "john@example.org", "phone": "+4798765432"},
        )
        is None
    )


def test_household_members_sharing_phone_and_address_are_not_paired():
    shared = {"phone": "+442079460958", "address": "12 Baker Street, London"}
    assert match({"name": "John Smith", **shared}, {"name": "Jane Smith", **shared}) is None
    assert match({"name": "John Smith Jr", **shared}, {"name": "John Smith Sr", **shared}) is None
    assert match({"name": "John Smith", **shared}, {"name": "John Williams", **shared}) is None


def test_phone_and_address_without_a_name_score_lower_and_say_so():
    shared = {"phone": "+442079460958", "address": "12 Baker Street, London"}
    found = match({"name": "Smith", **shared}, {"name": "Jane Smith", **shared})
    assert found is not None
    assert found.reasons == ("phone equal", "address 100", "name unconfirmed")
    with_name = match({"name": "Jane Smith", **shared}, {"name": "Jane Smith", **shared})
    assert with_name is not None
    assert with_name.score > found.score


def test_address_string_and_object_agree():
    found = match(
        {"name": "John Smith", "address": "12 Baker St, London"},
        {
            "name": "John Smith",
            "address": {"street": "12 Baker Street", "city": "London", "postal_code": "NW1 6XE"},
        },
    )
    assert found is not None
    assert found.reasons == ("name 100", "address 100")


def test_neighbours_and_other_postal_codes_are_not_the_same_address():
    assert (
        match(
            {"name": "John Smith", "address": "12 Baker Street, London"},
            {"name": "John Smith", "address": "14 Baker Street, London"},
        )
        is None
    )
    assert (
        match(
            {"name": "Ola Nordmann", "address": {"street": "Storgata 1", "zip": "0155"}},
            {"name": "Ola Nordmann", "address": {"street": "Storgata 1", "zip": "7010"}},
        )
        is None
    )


def test_a_city_alone_is_not_an_address():
    assert parse_address("London") is None
    assert parse_address({"city": "London", "postal_code": "NW1 6XE"}) is None
    assert (
        match(
            {"name": "John Smith", "address": "London"}, {"name": "John Smith", "address": "London"}
        )
        is None
    )


def test_same_mailbox_is_strong_enough_alone():
    found = match({"email": "jon.smith+shop@gmail.com"}, {"email": "JonSmith@googlemail.com"})
    assert found is not None
    assert found.reasons == ("email same mailbox",)
    assert mailbox("a.b+x@example.com") == "a.b@example.com"


def test_identities_count_as_phones_and_emails():
    a = fingerprint({"name": "Kari Holm"}, [Identifier("phone", "+4791234567")])
    b = fingerprint({"firstName": "Kari", "lastName": "Holm", "phone": "+47 912 34 567"})
    found = compare(a, b)
    assert found is not None
    assert found.reasons == ("name 100", "phone equal")
    assert fingerprint({}, [Identifier("email", "k@example.com")]).emails == {"k@example.com"}


def test_names_are_read_leniently():
    assert parse_name({"name": "Dr. José Álvarez"}) == parse_name(
        {"firstName": "jose", "lastName": "ALVAREZ"}
    )
    agreement, _ = compare_names(
        parse_name({"name": "J Smith"}), parse_name({"name": "John Smith"})
    )
    assert agreement is Agreement.NEUTRAL
    assert compare_names(parse_name({"name": "Smith"}), None)[0] is Agreement.UNKNOWN
    assert compare_names(parse_name({"name": "Cleo"}), parse_name({"name": "Ann Smith"}))[0] is (
        Agreement.CONTRADICTS
    )


@pytest.mark.parametrize(
    "traits",
    [
        {"name": 42, "phone": True, "email": ["x"], "address": ["12 Baker St"]},
        {"first_name": None, "phone": "n/a", "email": "not-an-email", "address": {"street": 7}},
        {},
    ],
)
def test_odd_traits_are_ignored(traits):
    found = fingerprint(traits)
    assert found.phones == frozenset()
    assert found.emails == frozenset()
    assert found.address is None
    assert compare(found, found) is None


def test_phone_parsing():
    assert parse_phone("0047 912 34 567") == "+4791234567"
    assert parse_phone("020 7946 0958") == "02079460958"
    assert parse_phone("12-34") is None


def test_only_profiles_sharing_a_block_are_compared():
    prints = {
        pid(1): fingerprint({"name": "Jon Smith", "phone": "+442079460958"}),
        pid(2): fingerprint({"name": "John Smith"}),
        pid(3): fingerprint({"name": "Ann Lee", "phone": "+4420 7946 0958"}),
        pid(4): fingerprint({"name": "Bo Ek"}),
    }
    assert candidate_pairs(prints) == {(pid(1), pid(2)), (pid(1), pid(3))}


def test_giant_blocks_are_skipped():
    prints = {pid(n): fingerprint({"name": "John Smith"}) for n in range(1, 12)}
    assert len(candidate_pairs(prints, max_block=20)) == 55
    assert candidate_pairs(prints, max_block=10) == set()


def _twins(first: int, second: int, phone: str, name: str = "Jon Smith") -> dict:
    return {
        pid(first): fingerprint({"name": name, "phone": phone}),
        pid(second): fingerprint({"name": name.replace("Jon", "John"), "phone": phone}),
    }


def test_candidates_are_ranked_deterministically_and_filtered():
    prints = {
        **_twins(5, 6, "+4791234567"),
        **_twins(1, 2, "+4798765432"),
        pid(3): fingerprint({"email": "kim@example.com"}),
        pid(4): fingerprint({"email": "kim+news@example.com"}),
    }
    found = find_candidates(prints, limit=10, min_score=0.8)
    assert [(c.profile_a, c.profile_b) for c in found] == [
        (pid(1), pid(2)),
        (pid(5), pid(6)),
        (pid(3), pid(4)),
    ]
    assert found[0].score == found[1].score > found[2].score
    assert find_candidates(prints, limit=1, min_score=0.8) == found[:1]
    assert find_candidates(prints, limit=10, min_score=0.86) == found[:2]
    assert find_candidates(prints, limit=0, min_score=0) == []


def test_forbidden_pairs_are_left_out():
    prints = {**_twins(1, 2, "+4798765432"), **_twins(3, 4, "+4791234567")}
    found = find_candidates(
        prints, limit=10, min_score=0, forbidden=lambda a, b: {a, b} == {pid(1), pid(2)}
    )
    assert found == [Candidate(pid(3), pid(4), found[0].score, ("name 95", "phone equal"))]
