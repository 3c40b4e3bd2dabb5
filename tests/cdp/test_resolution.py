"""The resolver's decisions, without a database."""

import itertools
import uuid

import pytest

from cdp.model import Identifier
from cdp.resolution import KindRule, Resolver, Rules

U1, U2 = Identifier("user_id", "u1"), Identifier("user_id", "u2")
A1, A2, A3 = (
    Identifier("anonymous_id", "a1"),
    Identifier("anonymous_id", "a2"),
    Identifier("anonymous_id", "a3"),
)
E = Identifier("email", "ann@example.com")


def _ids():
    counter = itertools.count(1)
    return lambda: uuid.UUID(int=next(counter))


def test_new_identifiers_make_one_new_profile():
    r = Resolver(Rules(), {}, {}, make_id=_ids())
    p = r.resolve([A1], "m1")
    assert r.plan.new_profiles == [p]
    assert r.plan.attached == [(A1, p)]


def test_anonymous_then_identify_joins_the_histories():
    r = Resolver(Rules(), {}, {}, make_id=_ids())
    anon = r.resolve([A1], "m1")
    known = r.resolve([A1, E, U1], "m2")
    assert known == anon
    assert r.holdings(anon) == {A1, E, U1}
    assert r.plan.merges == []


def test_second_device_joins_through_email():
    r = Resolver(Rules(), {}, {}, make_id=_ids())
    first = r.resolve([A1, E], "m1")
    second_device = r.resolve([A2], "m2")
    joined = r.resolve([A2, E], "m3")
    assert joined == first
    assert r.plan.merges[0].source == second_device
    assert r.plan.merges[0].target == first
    assert r.survivor(second_device) == first
    assert r.holdings(first) == {A1, A2, E}


def test_two_user_ids_sharing_an_email_do_not_merge():
    r = Resolver(Rules(), {}, {}, make_id=_ids())
    p1 = r.resolve([U1, E], "m1")
    p2 = r.resolve([U2, E], "m2")
    assert p1 != p2
    assert r.plan.merges == []
    assert [(c.identifier, c.held_by, c.claimed_by) for c in r.plan.conflicts] == [(E, p1, p2)]
    assert c_rule(r) == "user_id:max_values=1"
    assert r.holdings(p2) == {U2}


def c_rule(r):
    return r.plan.conflicts[0].rule


def test_existing_profiles_with_different_user_ids_are_not_merged():
    p1, p2 = uuid.UUID(int=101), uuid.UUID(int=102)
    r = Resolver(Rules(), {U1: p1, E: p1, U2: p2}, {p1: [U1, E], p2: [U2]}, make_id=_ids())
    target = r.resolve([U2, E], "m")
    assert target == p2
    assert r.plan.merges == []
    assert r.plan.conflicts[0].identifier == E


def test_survivor_is_the_profile_with_the_stronger_identifier():
    anon, known = uuid.UUID(int=1), uuid.UUID(int=2)
    r = Resolver(Rules(), {A1: anon, U1: known}, {anon: [A1], known: [U1]}, make_id=_ids())
    assert r.resolve([A1, U1], "alias") == known
    assert r.plan.merges[0].source == anon


def test_older_profile_survives_between_equals():
    older, newer = uuid.UUID(int=1), uuid.UUID(int=2)
    r = Resolver(Rules(), {A1: newer, A2: older}, {newer: [A1], older: [A2]}, make_id=_ids())
    assert r.resolve([A1, A2], "m") == older


def test_custom_rule_limits_emails():
    rules = Rules({**Rules().kinds, "email": KindRule(max_values=1, priority=10)})
    r = Resolver(rules, {}, {}, make_id=_ids())
    p = r.resolve([U1, E], "m1")
    same = r.resolve([U1, Identifier("email", "other@example.com")], "m2")
    assert same == p
    assert r.holdings(p) == {U1, E}
    assert r.plan.conflicts[0].identifier.value == "other@example.com"


def test_fifty_devices_one_email():
    r = Resolver(Rules(), {}, {}, make_id=_ids())
    profiles = {r.resolve([Identifier("anonymous_id", f"a{i}"), E], f"m{i}") for i in range(50)}
    assert len(profiles) == 1
    assert len(r.holdings(profiles.pop())) == 51


def test_a_message_needs_an_identifier():
    with pytest.raises(ValueError, match="identifier"):
        Resolver(Rules(), {}, {}).resolve([], "m")
