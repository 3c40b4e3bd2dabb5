"""Duplicate candidates: pairs of live profiles that are probably one person.

The candidates are for a person to review and accept with `mergeProfiles`.
A wrong merge costs more than a missed one, so each candidate must have clear
evidence, and each piece of evidence is given as a reason.

Finding pairs (blocking). Comparing every profile with every other profile is
O(n²), so each profile gets a few blocking keys, and only profiles that share a
key are compared:
- normalized last name + first initial;
- the last 7 digits of each phone number;
- house number + first street word, and postal code + house number;
- the email's local part without dots and without a "+tag".
A block with more than `MAX_BLOCK` members ("info@…", a very common name) says
little about who is who, so it is skipped.

Evidence. Traits are read in snake_case or camelCase (`first_name`/`firstName`,
`last_name`/`lastName`, `name`, `phone`, `email`, `address` as a string or an
object with street, city and postal_code/postalCode/zip). The profile's email
and phone identities count as well. Each field is compared with rapidfuzz:
- name: `token_sort_ratio` of the full names; agrees at 85 or more;
- phone: the same E.164 number, or the same last 9 digits when one side is
  written in national format;
- email: the same address, or the same mailbox (a "+tag" dropped, and for
  Gmail the dots);
- address: `token_set_ratio` at 90 or more, with the same house numbers and
  postal codes where both have them; the address must reach street level.

The rule. A pair is a candidate when
- the names do not contradict each other (different first names, different
  last names, or Jr/Sr): one household shares phone, address and sometimes an
  inbox, so clearly different names veto a pair whatever else agrees; and
- at least two fields agree, or the same email (or mailbox) agrees, which is
  strong enough on its own. One name alone is never enough: names are shared.

The score combines the agreeing fields as independent pieces of evidence,
1 - Π(1 - weight), each weight scaled by its similarity (name 0.55, phone
0.75, email 0.9, mailbox 0.85, address 0.65). It drops by a tenth when both
sides have phones and none match ("phone differs"), and by a tenth when only
phone and address agree ("name unconfirmed"): those are what a household
shares. Scores lie in 0..1.

Never proposed: merged-away profiles, pairs the merge rules forbid (for
example two different user ids), and pairs with a recorded identity conflict.
"""

import heapq
import itertools
import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any
from uuid import UUID

from rapidfuzz import fuzz

from cdp import repository
from cdp.identifiers import IdentifierError, normalize_phone
from cdp.model import ANONYMOUS_ID, EMAIL, PHONE, Identifier
from cdp.profile_store import merge_rules
from cdp.resolution import Resolver
from domain.uow import UnitOfWork

MAX_BLOCK = 200
MIN_AGREEING = 2

NAME_AGREES = 85
NAME_CONTRADICTS = 70
GIVEN_NAME_SIMILAR = 75
FAMILY_NAME_SIMILAR = 80
ADDRESS_AGREES = 90
PHONE_SUFFIX = 9
PHONE_BLOCK_DIGITS = 7
MIN_PHONE_DIGITS = 7

NAME_WEIGHT = 0.55
PHONE_WEIGHT = 0.75
PHONE_SUFFIX_WEIGHT = 0.7
EMAIL_WEIGHT = 0.9
MAILBOX_WEIGHT = 0.85
ADDRESS_WEIGHT = 0.65
PHONE_DIFFERS_FACTOR = 0.9
HOUSEHOLD_ONLY_FACTOR = 0.9

TRAIT_KEYS = (
    "first_name",
    "firstName",
    "last_name",
    "lastName",
    "name",
    "phone",
    "email",
    "address",
)

_NOT_WORD = re.compile(r"[\W_]+")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_HOUSE_NUMBER = re.compile(r"^\d+[a-z]?$")
_TITLES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "dame"})
_GENERATIONS = frozenset({"jr", "sr", "ii", "iii", "iv"})
_UNIT_WORDS = frozenset({"flat", "apartment", "apt", "unit", "suite", "floor", "room"})
_STREET_WORDS = {
    "st": "street",
    "str": "strasse",
    "rd": "road",
    "ave": "avenue",
    "av": "avenue",
    "blvd": "boulevard",
    "ln": "lane",
    "dr": "drive",
    "ct": "court",
    "pl": "place",
    "sq": "square",
    "hwy": "highway",
    "apt": "apartment",
}
_GMAIL = frozenset({"gmail.com", "googlemail.com"})


@dataclass(frozen=True)
class Candidate:
    profile_a: UUID
    profile_b: UUID
    score: float
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Name:
    given: str
    family: str
    generation: str

    @property
    def full(self) -> str:
        return f"{self.given} {self.family}".strip()

    @property
    def complete(self) -> bool:
        return bool(self.given and self.family)


@dataclass(frozen=True)
class Address:
    text: str
    numbers: frozenset[str]
    house: str
    street_word: str
    postal: str


@dataclass(frozen=True)
class Fingerprint:
    name: Name | None
    phones: frozenset[str]
    emails: frozenset[str]
    address: Address | None

    def blocking_keys(self) -> set[str]:
        keys: set[str] = set()
        if self.name is not None and self.name.complete:
            keys.add(f"name:{self.name.family}:{self.name.given[0]}")
        keys.update(f"phone:{_digits(p)[-PHONE_BLOCK_DIGITS:]}" for p in self.phones)
        for email in self.emails:
            local = email.rpartition("@")[0].partition("+")[0].replace(".", "")
            if local:
                keys.add(f"email:{local}")
        if self.address is not None:
            keys.add(f"street:{self.address.house}:{self.address.street_word}")
            if self.address.postal:
                keys.add(f"postal:{self.address.postal}:{self.address.house}")
        return keys


class Agreement(Enum):
    UNKNOWN = "unknown"
    AGREES = "agrees"
    NEUTRAL = "neutral"
    CONTRADICTS = "contradicts"


@dataclass(frozen=True)
class Signal:
    reason: str
    weight: float
    strong: bool = False


@dataclass(frozen=True)
class Match:
    score: float
    reasons: tuple[str, ...]


def _plain(value: str) -> str:
    """Case-folded, accents and punctuation dropped, single-spaced."""
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_NOT_WORD.sub(" ", bare).split())


def _text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    return _plain(str(value))


def _digits(value: str) -> str:
    return "".join(c for c in value if c.isdigit())


def _name_words(value: Any) -> tuple[list[str], str]:
    """Words of a name without titles, and its generation suffix (Jr, Sr…) if any."""
    words = [w for w in _text(value).split() if w not in _TITLES]
    generation = next((w for w in words if w in _GENERATIONS), "")
    return [w for w in words if w not in _GENERATIONS], generation


def parse_name(traits: Mapping[str, Any]) -> Name | None:
    given_raw = traits.get("first_name") or traits.get("firstName")
    family_raw = traits.get("last_name") or traits.get("lastName")
    if given_raw or family_raw:
        given_words, gen_a = _name_words(given_raw)
        family_words, gen_b = _name_words(family_raw)
        name = Name(" ".join(given_words), " ".join(family_words), gen_a or gen_b)
    else:
        words, generation = _name_words(traits.get("name"))
        if not words:
            return None
        family = words[-1] if len(words) > 1 else ""
        name = Name(" ".join(words[:-1]) if family else words[0], family, generation)
    return name if name.given or name.family else None


def parse_phone(value: Any) -> str | None:
    """E.164 when the number says its country, else its digits (national format)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    raw = str(value).strip()
    if _E164.match(raw):
        return raw
    if raw.startswith(("+", "00")):
        try:
            return normalize_phone("+" + raw[2:] if raw.startswith("00") else raw)
        except IdentifierError:
            pass
    digits = _digits(raw)
    return digits if len(digits) >= MIN_PHONE_DIGITS else None


def parse_email(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    cleaned = value.strip().lower()
    local, at, domain = cleaned.rpartition("@")
    return cleaned if at and local and domain and " " not in cleaned else None


def mailbox(email: str) -> str:
    """The mailbox an address delivers to: without a "+tag", and Gmail ignores dots."""
    local, _, domain = email.rpartition("@")
    local = local.partition("+")[0]
    if domain in _GMAIL:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


def _address_words(value: Any) -> list[str]:
    return [_STREET_WORDS.get(w, w) for w in _text(value).split()]


def parse_address(value: Any) -> Address | None:
    """A street-level address, or None: a city alone does not tell people apart."""
    if isinstance(value, Mapping):
        street = value.get("street") or value.get("line1") or value.get("address1")
        postal_raw = value.get("postal_code") or value.get("postalCode") or value.get("zip")
        segments = [_address_words(s) for s in str(street or "").split(",")]
        rest = _address_words(value.get("city")) + _address_words(postal_raw)
        postal = _text(postal_raw).replace(" ", "")
    elif isinstance(value, str):
        segments = [_address_words(s) for s in value.split(",")]
        rest, postal = [], ""
    else:
        return None
    street_words = next(
        (s for s in segments if s and s[0] not in _UNIT_WORDS and any(map(_HOUSE_NUMBER.match, s))),
        [],
    )
    house = next((w for w in street_words if _HOUSE_NUMBER.match(w)), "")
    street_word = next((w for w in street_words if w.isalpha()), "")
    if not house or not street_word:
        return None
    words = [w for s in segments for w in s] + rest
    numbers = frozenset(w for w in words if any(c.isdigit() for c in w))
    return Address(" ".join(words), numbers, house, street_word, postal)


def fingerprint(traits: Mapping[str, Any], identifiers: Iterable[Identifier] = ()) -> Fingerprint:
    phones = {p for p in [parse_phone(traits.get("phone"))] if p}
    emails = {e for e in [parse_email(traits.get("email"))] if e}
    for identifier in identifiers:
        if identifier.kind == PHONE:
            phones.add(identifier.value)
        elif identifier.kind == EMAIL:
            emails.add(identifier.value)
    return Fingerprint(
        name=parse_name(traits),
        phones=frozenset(phones),
        emails=frozenset(emails),
        address=parse_address(traits.get("address")),
    )


def _given_names_fit(a: str, b: str) -> bool:
    if not a or not b or a == b:
        return True
    if len(a) == 1 or len(b) == 1:
        return a[0] == b[0]
    return a.startswith(b) or b.startswith(a) or fuzz.ratio(a, b) >= GIVEN_NAME_SIMILAR


def _family_names_fit(a: str, b: str) -> bool:
    return not a or not b or a == b or fuzz.ratio(a, b) >= FAMILY_NAME_SIMILAR


def _names_fit(a: Name, b: Name) -> bool:
    in_order = _given_names_fit(a.given, b.given) and _family_names_fit(a.family, b.family)
    swapped = _given_names_fit(a.given, b.family) and _family_names_fit(a.family, b.given)
    return in_order or (swapped and a.complete and b.complete)


def compare_names(a: Name | None, b: Name | None) -> tuple[Agreement, int]:
    if a is None or b is None:
        return Agreement.UNKNOWN, 0
    if a.generation and b.generation and a.generation != b.generation:
        return Agreement.CONTRADICTS, 0
    if not a.complete or not b.complete:
        # "Smith" against "Jane Smith": the one word fits some part of the other name or not.
        single, other = (a, b) if not a.complete else (b, a)
        word = single.given or single.family
        fits = any(_given_names_fit(word, w) for w in (other.given, other.family) if w)
        return (Agreement.NEUTRAL if fits else Agreement.CONTRADICTS), 0
    similarity = round(fuzz.token_sort_ratio(a.full, b.full))
    if not _names_fit(a, b) or similarity < NAME_CONTRADICTS:
        return Agreement.CONTRADICTS, similarity
    if similarity >= NAME_AGREES:
        return Agreement.AGREES, similarity
    return Agreement.NEUTRAL, similarity


def _phones_match(a: frozenset[str], b: frozenset[str]) -> Signal | None:
    if a & b:
        return Signal("phone equal", PHONE_WEIGHT)
    for x, y in itertools.product(a, b):
        national = not x.startswith("+") or not y.startswith("+")
        dx, dy = _digits(x), _digits(y)
        if (
            national
            and min(len(dx), len(dy)) >= PHONE_SUFFIX
            and dx[-PHONE_SUFFIX:] == dy[-PHONE_SUFFIX:]
        ):
            return Signal(f"phone last {PHONE_SUFFIX} digits equal", PHONE_SUFFIX_WEIGHT)
    return None


def _emails_match(a: frozenset[str], b: frozenset[str]) -> Signal | None:
    if a & b:
        return Signal("email equal", EMAIL_WEIGHT, strong=True)
    if {mailbox(e) for e in a} & {mailbox(e) for e in b}:
        return Signal("email same mailbox", MAILBOX_WEIGHT, strong=True)
    return None


def _addresses_match(a: Address | None, b: Address | None) -> Signal | None:
    if a is None or b is None:
        return None
    # "12 Baker Street" and "14 Baker Street" are neighbours, however similar the text.
    if not (a.numbers <= b.numbers or b.numbers <= a.numbers):
        return None
    if a.postal and b.postal and a.postal != b.postal:
        return None
    similarity = round(fuzz.token_set_ratio(a.text, b.text))
    if similarity < ADDRESS_AGREES:
        return None
    return Signal(f"address {similarity}", ADDRESS_WEIGHT * similarity / 100)


def compare(a: Fingerprint, b: Fingerprint) -> Match | None:
    """The evidence that `a` and `b` are one person, or None when it is not enough."""
    names, name_similarity = compare_names(a.name, b.name)
    if names is Agreement.CONTRADICTS:
        return None
    signals: list[Signal] = []
    if names is Agreement.AGREES:
        signals.append(Signal(f"name {name_similarity}", NAME_WEIGHT * name_similarity / 100))
    found = (
        _phones_match(a.phones, b.phones),
        _emails_match(a.emails, b.emails),
        _addresses_match(a.address, b.address),
    )
    signals.extend(s for s in found if s is not None)
    if len(signals) < MIN_AGREEING and not any(s.strong for s in signals):
        return None
    score = 1 - math.prod(1 - s.weight for s in signals)
    reasons = [s.reason for s in signals]
    if names is not Agreement.AGREES and not any(s.strong for s in signals):
        # Phone and address are what a household shares: without a name or an
        # email to say which member this is, they are weaker evidence.
        score *= HOUSEHOLD_ONLY_FACTOR
        reasons.append("name unconfirmed")
    if a.phones and b.phones and found[0] is None:
        score *= PHONE_DIFFERS_FACTOR
        reasons.append("phone differs")
    return Match(round(score, 4), tuple(reasons))


def candidate_pairs(
    fingerprints: Mapping[UUID, Fingerprint], *, max_block: int = MAX_BLOCK
) -> set[tuple[UUID, UUID]]:
    """Pairs (smaller id first) that share a blocking key in a block of at most `max_block`."""
    blocks: dict[str, list[UUID]] = defaultdict(list)
    for profile_id in sorted(fingerprints):
        for key in fingerprints[profile_id].blocking_keys():
            blocks[key].append(profile_id)
    pairs: set[tuple[UUID, UUID]] = set()
    for members in blocks.values():
        if 2 <= len(members) <= max_block:  # noqa: PLR2004 - a pair needs two
            pairs.update(itertools.combinations(members, 2))
    return pairs


def find_candidates(
    fingerprints: Mapping[UUID, Fingerprint],
    *,
    limit: int,
    min_score: float,
    forbidden: Callable[[UUID, UUID], bool] = lambda _a, _b: False,
    max_block: int = MAX_BLOCK,
) -> list[Candidate]:
    """The best `limit` candidates, by score, then ids."""
    found: list[Candidate] = []
    for a, b in candidate_pairs(fingerprints, max_block=max_block):
        match = compare(fingerprints[a], fingerprints[b])
        if match is not None and match.score >= min_score and not forbidden(a, b):
            found.append(Candidate(a, b, match.score, match.reasons))
    return heapq.nsmallest(limit, found, key=lambda c: (-c.score, c.profile_a, c.profile_b))


async def _live_fingerprints(
    uow: UnitOfWork,
) -> tuple[dict[UUID, Fingerprint], dict[UUID, set[Identifier]]]:
    traits = await repository.live_profile_traits(uow, TRAIT_KEYS)
    # Anonymous ids can be many and never limit a merge (see profile_store.load_profiles).
    holdings: dict[UUID, set[Identifier]] = defaultdict(set)
    for profile_id, identifier in await repository.live_identities(uow, except_kind=ANONYMOUS_ID):
        holdings[profile_id].add(identifier)
    fingerprints = {p: fingerprint(t, holdings.get(p, ())) for p, t in traits.items()}
    return fingerprints, holdings


async def _conflicting_pairs(uow: UnitOfWork) -> set[tuple[UUID, UUID]]:
    """Pairs of live profiles with a recorded identity conflict, both orders."""
    pairs: set[tuple[UUID, UUID]] = set()
    for a, b in await repository.conflicting_profiles(uow):
        pairs.update({(a, b), (b, a)})
    return pairs


async def duplicate_candidates(uow: UnitOfWork, *, limit: int, min_score: float) -> list[Candidate]:
    """The workspace's best duplicate candidates, best first (score desc, then ids).

    Reads every live profile's name, phone, email and address traits and its
    identities in a constant number of statements and compares in memory, so
    it suits workspaces of up to about 100,000 live profiles; beyond that the
    candidates should be computed by a job and stored.
    """
    if limit <= 0:
        return []
    fingerprints, holdings = await _live_fingerprints(uow)
    conflicts = await _conflicting_pairs(uow)
    resolver = Resolver(await merge_rules(uow), {}, holdings)

    def forbidden(a: UUID, b: UUID) -> bool:
        return (a, b) in conflicts or resolver.blocking_rule(a, b) is not None

    return find_candidates(fingerprints, limit=limit, min_score=min_score, forbidden=forbidden)
