"""E-mail addresses as bounce and complaint reports write them: found in text, normalized.

A recipient is kept as `local@domain` in lower case, without angle brackets,
display names or address-type prefixes (`rfc822;`), which is how suppression
compares addresses. Quoted local parts are not recognized: reports do not use them
for the addresses they name.
"""

import re
from email.utils import getaddresses

ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
# Mailboxes that send reports or receive them; never a failed recipient.
_SYSTEM_LOCAL_PARTS = frozenset({"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"})


def normalize(value: str) -> str | None:
    """The first address in `value`, lower case, or None when there is none."""
    found = ADDRESS.search(value)
    if found is None:
        return None
    return found.group(0).strip(".").lower()


def as_written(value: str) -> str | None:
    """The first address in `value` with its local part's case kept (a VERP token may need it)."""
    found = ADDRESS.search(value)
    if found is None:
        return None
    local, _, domain = found.group(0).strip(".").rpartition("@")
    return f"{local}@{domain.lower()}"


def in_header(values: list[str]) -> list[str]:
    """The addresses of address-list header values (To, Cc, ...), normalized, in order."""
    found: list[str] = []
    for _, address in getaddresses(values):
        normal = normalize(address) if "@" in address else None
        if normal is not None and normal not in found:
            found.append(normal)
    return found


def all_in(values: list[str]) -> list[str]:
    """Every address in `values`, normalized; cheaper than parsing them as address lists."""
    return [found.strip(".").lower() for value in values for found in ADDRESS.findall(value)]


def is_system(address: str) -> bool:
    return address.partition("@")[0] in _SYSTEM_LOCAL_PARTS


def unique(addresses: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(addresses))
