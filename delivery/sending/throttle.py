"""Throttling: at most so many messages a second per sending domain and per recipient domain.

Mailbox providers slow down or refuse a sender that sends faster than its
reputation allows, and a new domain has none yet. Each sending domain and
each recipient domain of a workspace has a token bucket in PostgreSQL
(`send_buckets`), shared by every worker: it refills at the send policy's
rate, holds at most `BURST_SECONDS` of it, and a batch takes the tokens of
its messages in one statement. A message without a token waits in the queue
until the moment its bucket will have one, and that wait is not an attempt.
The defaults (`DEFAULT_SENDING_RATE`, `DEFAULT_RECIPIENT_RATE`) suit a
domain that is warming up; raise them in the send policy as its reputation
grows.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from delivery.sending import repository
from delivery.sending.repository import Want
from domain.uow import UnitOfWork

DEFAULT_SENDING_RATE = 20.0
DEFAULT_RECIPIENT_RATE = 10.0
MAX_RATE = 100_000.0
BURST_SECONDS = 2.0


def burst(rate: float) -> float:
    return max(1.0, rate * BURST_SECONDS)


def sender_key(domain: str) -> str:
    return f"from:{domain.lower()}"


def recipient_key(domain: str) -> str:
    return f"to:{domain.lower()}"


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


@dataclass(frozen=True)
class Rates:
    sending: float = DEFAULT_SENDING_RATE
    recipient: float = DEFAULT_RECIPIENT_RATE


async def room(uow: UnitOfWork, sending_domain: str, rates: Rates) -> float:
    """How many messages the sending domain may send now."""
    return await repository.tokens_left(
        uow, sender_key(sending_domain), rate=rates.sending, burst=burst(rates.sending)
    )


@dataclass
class Admission:
    """Which of a batch's messages may go now, and until when the others wait, with why."""

    allowed: set[UUID] = field(default_factory=set)
    waiting: dict[UUID, tuple[datetime, str]] = field(default_factory=dict)


async def admit(
    uow: UnitOfWork, sending_domain: str, rates: Rates, messages: list[tuple[UUID, str]]
) -> Admission:
    """Take the tokens of `messages` (delivery id, recipient address), in their order."""
    found = Admission()
    if not messages:
        return found
    per_domain = Counter(domain_of(address) for _, address in messages)
    sender = sender_key(sending_domain)
    wants = [Want(recipient_key(d), n, rates.recipient, burst(rates.recipient))
             for d, n in sorted(per_domain.items())]  # fmt: skip
    wants.append(Want(sender, len(messages), rates.sending, burst(rates.sending)))
    left = await repository.take_tokens(uow, wants)
    now = uow.clock.now()
    behind: Counter[str] = Counter()
    for delivery_id, address in messages:
        domain = domain_of(address)
        key = recipient_key(domain)
        if left.get(key, 0) >= 1 and left.get(sender, 0) >= 1:
            left[key] -= 1
            left[sender] -= 1
            found.allowed.add(delivery_id)
            continue
        if left.get(key, 0) < 1:
            limited, rate, what = key, rates.recipient, f"to {domain}"
        else:
            limited, rate, what = sender, rates.sending, f"from {sending_domain}"
        behind[limited] += 1
        due = now + timedelta(seconds=behind[limited] / rate)
        found.waiting[delivery_id] = (due, f"throttled: at most {rate:g} messages a second {what}")
    return found
