"""The port through which SNS signing certificates (and SubscribeURLs) are fetched.

Tests replace `CertificateSource` with certificates of their own. In
production `HttpCertificateSource` fetches over HTTPS with httpx, which
checks the server's TLS certificate; that check, together with the URL rules
in `sns.py` (an https URL on an `sns.<region>.amazonaws.com` host), is what
makes a certificate Amazon's. `CachingCertificateSource` keeps a few
certificates by URL, since SNS signs with the same one for months.
"""

from collections import OrderedDict
from typing import Protocol

import httpx

_MAX_BYTES = 64 * 1024


class CertificateSource(Protocol):
    async def fetch(self, url: str) -> bytes: ...


class HttpCertificateSource:
    def __init__(self, client: httpx.AsyncClient, timeout: float = 10.0) -> None:
        self._client = client
        self._timeout = timeout

    async def fetch(self, url: str) -> bytes:
        response = await self._client.get(url, timeout=self._timeout, follow_redirects=False)
        response.raise_for_status()
        if len(response.content) > _MAX_BYTES:
            raise ValueError("response too large for a certificate")
        return response.content


class CachingCertificateSource:
    """Keeps the last `size` successful fetches by URL; failures are not kept."""

    def __init__(self, inner: CertificateSource, size: int = 32) -> None:
        self._inner = inner
        self._size = size
        self._cache: OrderedDict[str, bytes] = OrderedDict()

    async def fetch(self, url: str) -> bytes:
        cached = self._cache.get(url)
        if cached is not None:
            self._cache.move_to_end(url)
            return cached
        data = await self._inner.fetch(url)
        self._cache[url] = data
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return data
