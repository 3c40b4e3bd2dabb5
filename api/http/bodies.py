"""Request bodies read under a hard size cap."""

from starlette.requests import Request


class BodyTooLargeError(Exception):
    pass


async def read_capped(request: Request, limit: int) -> bytes:
    """The raw body, refused (BodyTooLargeError) as soon as it passes `limit` bytes.

    A declared length over the limit is refused before anything is read, and
    a body that lies about its length is cut off as it streams, so a large
    body never sits in memory.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > limit:
            raise BodyTooLargeError
    return bytes(received)
