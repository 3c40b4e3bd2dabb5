"""The Segment HTTP tracking API, so the official analytics SDKs can send here.

A request is read under a hard size cap, parsed and validated whole before
the write key is checked against the database; nothing reaches ingest
unless every message is valid.
"""

import asyncio
import base64
import binascii
import zlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import orjson
import psycopg
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.graphql.state import AppState
from api.http.bodies import BodyTooLargeError, read_capped
from api.http.group_commit import GroupCommit
from cdp import ingest_messages
from cdp.ingest import ingest
from cdp.model import MESSAGE_TYPES, Message, MessageType
from domain import credentials
from domain.errors import AuthenticationError, FieldError, ValidationError
from domain.uow import UnitOfWork

BODY_FIELD = "(body)"
_GZIP = frozenset({"gzip", "x-gzip"})
_IDENTITY = frozenset({"", "identity"})
_SUCCESS = orjson.dumps({"success": True})
# The official SDKs report an error's `code` and `message`, when the body has them.
_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    413: "too_large",
    415: "bad_encoding",
    503: "unavailable",
}
# Seconds a client is asked to wait before it sends a request that timed out again.
RETRY_AFTER_SECONDS = 5

Parser = Callable[[dict[str, Any], datetime], list[Message]]


class RequestRejectedError(Exception):
    """A request refused with a client error; carries what to answer."""

    def __init__(self, status: int, errors: list[FieldError]) -> None:
        super().__init__("; ".join(error.describe() for error in errors))
        self.status = status
        self.errors = errors

    @classmethod
    def body(cls, status: int, message: str) -> "RequestRejectedError":
        return cls(status, [FieldError(None, BODY_FIELD, message)])


class UnauthorizedError(Exception):
    pass


class StoreUnavailableError(Exception):
    """The messages could not be stored in time; nothing of them was kept, so a retry is safe."""


def _failure(
    status: int,
    error: str,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    payload = {"success": False, "error": error, "code": _CODES[status], "message": error}
    return Response(
        orjson.dumps({**payload, **(extra or {})}),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _rejected(exc: RequestRejectedError) -> Response:
    errors = [
        {"index": error.index, "field": error.field, "message": error.message}
        for error in exc.errors
    ]
    return _failure(exc.status, str(exc), {"errors": errors})


def _unavailable(exc: StoreUnavailableError) -> Response:
    return _failure(503, str(exc), headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def _unauthorized(exc: UnauthorizedError) -> Response:
    return _failure(401, str(exc), headers={"WWW-Authenticate": 'Basic realm="cdp"'})


async def _read(request: Request, limit: int, too_large: RequestRejectedError) -> bytes:
    try:
        return await read_capped(request, limit)
    except BodyTooLargeError as exc:
        raise too_large from exc


def _decoded(request: Request, raw: bytes, limit: int, too_large: RequestRejectedError) -> bytes:
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding in _IDENTITY:
        return raw
    if encoding in _GZIP:
        return _gunzip(raw, limit, too_large)
    raise RequestRejectedError.body(415, f"unsupported Content-Encoding {encoding!r}: use gzip")


def _gunzip(raw: bytes, limit: int, too_large: RequestRejectedError) -> bytes:
    """Inflate at most `limit` bytes, so a small bomb cannot fill the memory."""
    inflated = bytearray()
    rest = raw
    while rest:  # a gzip stream may hold several members
        inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
        try:
            inflated += inflater.decompress(rest, limit + 1 - len(inflated))
        except zlib.error as exc:
            raise RequestRejectedError.body(400, "the body is not valid gzip") from exc
        if len(inflated) > limit:
            raise too_large
        if not inflater.eof:
            raise RequestRejectedError.body(400, "the gzip body is truncated")
        rest = inflater.unused_data
    return bytes(inflated)


def _parsed(data: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise RequestRejectedError.body(400, f"the body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise RequestRejectedError.body(400, "the body must be a JSON object")
    return body


def _write_key(request: Request, body: dict[str, Any]) -> str:
    """HTTP Basic with the key as user name, or `writeKey` in the body."""
    key: object
    header = request.headers.get("authorization", "")
    scheme, _, credentials_text = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials_text.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise UnauthorizedError("malformed Basic credentials") from exc
        key = decoded.partition(":")[0]
    else:
        key = body.get("writeKey")
    if not isinstance(key, str) or not key:
        raise UnauthorizedError(
            "a write key is required: send it as the HTTP Basic user name or as writeKey"
        )
    return key


async def _authenticate(uow: UnitOfWork, key: str) -> None:
    try:
        await credentials.authenticate_write_key(uow, key)
    except AuthenticationError as exc:
        raise UnauthorizedError("invalid write key") from exc


async def _store(uow: UnitOfWork, key: str, messages: list[Message]) -> None:
    try:
        workspace_id = credentials.write_key_workspace(key)
        await uow.select_workspace(workspace_id)
        # The key is checked at the head of ingest's first round trip.
        await ingest(uow, messages, require=credentials.write_key_requirement(workspace_id, key))
        await uow.commit()
    except AuthenticationError as exc:
        raise UnauthorizedError("invalid write key") from exc
    except ValidationError as exc:
        where = exc.field or ingest_messages.MESSAGE_FIELD
        raise RequestRejectedError(400, [FieldError(None, where, exc.message)]) from exc
    except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled) as exc:
        raise StoreUnavailableError(_BUSY) from exc


_BUSY = "the events could not be stored in time (the database is busy); none were kept, retry"


def writer(state: AppState) -> GroupCommit[Message]:
    """Stores accepted messages, grouping the requests of a key that arrive together.

    One transaction of a key runs at a time in each server process, and the
    requests that arrive meanwhile wait to form the next group, so that a
    transaction's fixed cost is paid once per group. A second transaction at
    once only made groups smaller; run a server process more than there are
    cores instead, to use the time a process waits for PostgreSQL. A group
    holds up to 1,000 messages, ten requests of the SDKs' usual batch (measured
    in bench/README.md).
    """

    timeout = state.settings.ingest_timeout

    async def store(key: str, messages: list[Message]) -> None:
        try:
            async with asyncio.timeout(timeout), state.uow() as uow:
                await _store(uow, key, messages)
        except TimeoutError as exc:
            raise StoreUnavailableError(_BUSY) from exc

    # A transaction that waits for more than a second (a lock another holds, a
    # database that stopped answering) lets the key's next requests start
    # transactions of their own beside it.
    return GroupCommit(
        store,
        concurrency=1,
        max_items=1_000,
        shared_errors=(UnauthorizedError,),
        stall_after=1.0,
        max_concurrency=4,
    )


async def _accept(request: Request, parse: Parser, limit: int, too_large_status: int) -> Response:
    try:
        await _handle(request, parse, limit, too_large_status)
    except RequestRejectedError as exc:
        return _rejected(exc)
    except UnauthorizedError as exc:
        return _unauthorized(exc)
    except StoreUnavailableError as exc:
        return _unavailable(exc)
    return Response(_SUCCESS, media_type="application/json")


async def _handle(request: Request, parse: Parser, limit: int, too_large_status: int) -> None:
    state = request.app.state.cdp
    received_at = state.clock.now()
    too_large = RequestRejectedError.body(
        too_large_status, f"the body is larger than {limit // 1024} KB"
    )
    raw = await _read(request, limit, too_large)
    body = _parsed(_decoded(request, raw, limit, too_large))
    key = _write_key(request, body)
    outcome = _validated(parse, body, received_at)
    if isinstance(outcome, list) and outcome:
        await request.app.state.tracking_writer.submit(key, outcome)
        return
    async with state.uow() as uow:
        # The key is checked before validation errors are told, so that an
        # unauthenticated caller learns nothing but 401.
        await _authenticate(uow, key)
        if isinstance(outcome, RequestRejectedError):
            raise outcome


def _validated(
    parse: Parser, body: dict[str, Any], received_at: datetime
) -> list[Message] | RequestRejectedError:
    """Parsed outside the transaction; the error is raised only once the key is known good."""
    try:
        return parse(body, received_at)
    except ingest_messages.MessageInputError as exc:
        return RequestRejectedError(400, exc.errors)


def _single(kind: MessageType) -> Callable[[Request], Awaitable[Response]]:
    def parse(body: dict[str, Any], received_at: datetime) -> list[Message]:
        return [ingest_messages.parse_single(body, kind, received_at=received_at)]

    async def endpoint(request: Request) -> Response:
        # A single call has the 32 KB limit of one message, refused with a 400.
        return await _accept(request, parse, ingest_messages.MAX_MESSAGE_BYTES, 400)

    return endpoint


def _parse_batch(body: dict[str, Any], received_at: datetime) -> list[Message]:
    return ingest_messages.parse_batch(body, received_at=received_at)


async def batch(request: Request) -> Response:
    return await _accept(request, _parse_batch, ingest_messages.MAX_BATCH_BYTES, 413)


routes: list[Route] = [
    *(
        Route(f"/v1/{kind}", _single(kind), methods=["POST"], name=f"tracking_{kind}")
        for kind in MESSAGE_TYPES
    ),
    Route("/v1/batch", batch, methods=["POST"], name="tracking_batch"),
    Route("/v1/import", batch, methods=["POST"], name="tracking_import"),
]
