"""A test actor whose every run is visible: it appends its token to a file."""

from pathlib import Path

import dramatiq

import domain.broker  # noqa: F401 - a broker exists before the actor is declared


@dramatiq.actor(queue_name="probe", max_retries=0)
def record_probe(path: str, token: str) -> None:
    with Path(path).open("a") as handle:
        handle.write(token + "\n")


@dramatiq.actor(queue_name="probe", max_retries=1, min_backoff=10, max_backoff=20)
def always_fails(token: str) -> None:
    raise RuntimeError(f"probe failure {token}")
