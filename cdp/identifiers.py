"""Normalizing identifiers, so that one person's spellings meet in one key."""

import re
from functools import lru_cache

import phonenumbers

from cdp.model import ANONYMOUS_ID, EMAIL, PHONE, USER_ID, Identifier

MAX_VALUE_LENGTH = 512
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class IdentifierError(ValueError):
    pass


def normalize_email(value: str) -> str:
    cleaned = value.strip().lower()
    local, at, domain = cleaned.rpartition("@")
    if not at or not local or not domain or " " in cleaned:
        raise IdentifierError("not an email address")
    return cleaned


def normalize_phone(value: str, default_region: str | None = None) -> str:
    try:
        parsed = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException as exc:
        raise IdentifierError("not a phone number") from exc
    if not phonenumbers.is_possible_number(parsed):
        raise IdentifierError("not a possible phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# A workspace uses a handful of kinds, and a batch repeats them on every item.
# Only valid kinds are cached: a raised error is not.
@lru_cache(maxsize=1024)
def normalize_kind(kind: str) -> str:
    cleaned = kind.strip().lower()
    if not _KIND.match(cleaned):
        raise IdentifierError("kind must be lower-case letters, digits and underscores")
    return cleaned


def normalize(kind: str, value: object, *, default_region: str | None = None) -> Identifier:
    """Normalize one identifier, or raise IdentifierError saying why not."""
    kind = normalize_kind(kind)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise IdentifierError("value must be a string")
    text = str(value).strip()
    if not text:
        raise IdentifierError("value must not be empty")
    if len(text) > MAX_VALUE_LENGTH:
        raise IdentifierError(f"value must be at most {MAX_VALUE_LENGTH} characters")
    if kind == EMAIL:
        text = normalize_email(text)
    elif kind == PHONE:
        text = normalize_phone(text, default_region)
    return Identifier(kind, text)


def maybe(kind: str, value: object, *, default_region: str | None = None) -> Identifier | None:
    """Normalize if possible; a trait that is not a valid identifier is simply not one."""
    if value is None:
        return None
    try:
        return normalize(kind, value, default_region=default_region)
    except IdentifierError:
        return None


__all__ = ["ANONYMOUS_ID", "EMAIL", "PHONE", "USER_ID", "IdentifierError", "maybe", "normalize"]
