"""Signed open and click tokens: round trips, tampering, workspaces, kinds, expiry, garbage."""

import base64
import hmac
import random
import struct
import tracemalloc
import zlib
from datetime import UTC, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from delivery.tracking import tokens as module
from delivery.tracking.tokens import (
    MAX_TOKEN_LENGTH,
    MAX_URL_BYTES,
    ExpiredTokenError,
    Kind,
    TokenError,
    Tokens,
    Tracked,
    is_trackable,
)

SECRET = "tracking-test-secret"
LIFETIME = timedelta(days=30)
WORKSPACE = UUID("0b9f6a5e-1a2b-4c3d-8e9f-0123456789ab")
OTHER_WORKSPACE = UUID("7d1c2b3a-4f5e-4a6b-9c8d-fedcba987654")
DELIVERY = UUID("c3d4e5f6-0718-4293-a4b5-c6d7e8f90a1b")
AT = datetime(2025, 3, 14, 15, 9, 26, 535897, tzinfo=UTC)
ISSUED = AT.replace(microsecond=0)
URL = "https://shop.example.com/sale?utm_source=newsletter&utm_medium=email&utm_campaign=march"


@pytest.fixture
def tokens() -> Tokens:
    return Tokens(SECRET, lifetime=LIFETIME)


def _raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _forge(
    payload: bytes, *, workspace: UUID = WORKSPACE, secret: str = SECRET, mac_bytes: int = 12
) -> str:
    """A token with a valid MAC over any payload, as the spec derives the key."""
    key = hmac.digest(secret.encode(), b"tracking:" + workspace.bytes, "sha256")
    return _encode(payload + hmac.digest(key, payload, "sha256")[:mac_bytes])


def _payload(
    *,
    version: int = 1,
    code: int = 2,
    workspace: UUID = WORKSPACE,
    link: int = 0,
    issued: int = int(ISSUED.timestamp()),
    url: bytes = b"",
) -> bytes:
    header = struct.pack(
        ">BB16s16sHI", version, code, workspace.bytes, DELIVERY.bytes, link, issued
    )
    return header + url


# Round trips


def test_click_round_trip(tokens: Tokens) -> None:
    token = tokens.click(WORKSPACE, DELIVERY, 7, URL, AT)
    assert tokens.read(token, Kind.CLICK, AT) == Tracked(
        kind=Kind.CLICK,
        workspace_id=WORKSPACE,
        delivery_id=DELIVERY,
        link=7,
        url=URL,
        issued=ISSUED,
    )


def test_open_round_trip(tokens: Tokens) -> None:
    token = tokens.open(WORKSPACE, DELIVERY, AT)
    assert tokens.read(token, Kind.OPEN, AT) == Tracked(
        kind=Kind.OPEN,
        workspace_id=WORKSPACE,
        delivery_id=DELIVERY,
        link=0,
        url=None,
        issued=ISSUED,
    )


def test_issued_is_stored_in_utc_whole_seconds(tokens: Tokens) -> None:
    berlin = AT.astimezone(ZoneInfo("Europe/Berlin"))
    tracked = tokens.read(tokens.open(WORKSPACE, DELIVERY, berlin), Kind.OPEN, AT)
    assert tracked.issued == ISSUED
    assert tracked.issued.utcoffset() == timedelta(0)


def test_tokens_are_url_safe_base64_without_padding(tokens: Tokens) -> None:
    for token in (
        tokens.open(WORKSPACE, DELIVERY, AT),
        tokens.click(WORKSPACE, DELIVERY, 1, URL, AT),
        tokens.click(WORKSPACE, DELIVERY, 2, "https://e.example/ü?q=" + "ä" * 300, AT),
    ):
        assert token.isascii()
        assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_open_token_is_compact(tokens: Tokens) -> None:
    # 40 header bytes and a 12-byte MAC.
    assert len(tokens.open(WORKSPACE, DELIVERY, AT)) == 70


def test_long_urls_are_deflated_and_short_ones_kept_plain(tokens: Tokens) -> None:
    long_url = tokens.click(WORKSPACE, DELIVERY, 0, URL, AT)
    assert len(_raw(long_url)) < 40 + len(URL) + 12
    short = "https://a.example/x"
    assert _raw(tokens.click(WORKSPACE, DELIVERY, 0, short, AT))[40:-12] == short.encode()


def test_link_index_is_signed_and_kept(tokens: Tokens) -> None:
    for link in (0, 1, 255, 256, 65535):
        token = tokens.click(WORKSPACE, DELIVERY, link, URL, AT)
        assert tokens.read(token, Kind.CLICK, AT).link == link


@pytest.mark.parametrize(
    "url",
    [
        "https://例え.jp/パス?q=ü&emoji=🎉#frag",
        "http://example.com/a%20b?x=1&y=%C3%BC",
        "HTTPS://EXAMPLE.COM/UPPER",
        "https://example.com/?" + "&".join(f"p{i}=value-{i}-ä" for i in range(100)),
        "https://example.com/" + "z" * (MAX_URL_BYTES - len("https://example.com/")),
        "https://example.com/" + "€" * ((MAX_URL_BYTES - 20) // 3),
        "https://example.com/"
        + base64.urlsafe_b64encode(random.Random(0).randbytes(1500)).decode()[: MAX_URL_BYTES - 20],
    ],
)
def test_unicode_and_long_urls_round_trip(tokens: Tokens, url: str) -> None:
    token = tokens.click(WORKSPACE, DELIVERY, 3, url, AT)
    assert len(token) <= MAX_TOKEN_LENGTH
    assert tokens.read(token, Kind.CLICK, AT).url == url


@settings(max_examples=300, deadline=None)
@given(
    path=st.text(st.characters(blacklist_categories=["Cc", "Cs"]), max_size=400),
    link=st.integers(0, 65535),
)
def test_any_http_url_round_trips(path: str, link: int) -> None:
    tokens = Tokens(SECRET, lifetime=LIFETIME)
    url = "https://example.com/" + path
    token = tokens.click(WORKSPACE, DELIVERY, link, url, AT)
    tracked = tokens.read(token, Kind.CLICK, AT)
    assert (tracked.url, tracked.link) == (url, link)


# Tampering, workspaces and kinds


@pytest.mark.parametrize("kind", [Kind.OPEN, Kind.CLICK])
def test_flipping_any_bit_of_any_byte_fails(tokens: Tokens, kind: Kind) -> None:
    if kind is Kind.OPEN:
        token = tokens.open(WORKSPACE, DELIVERY, AT)
    else:
        token = tokens.click(WORKSPACE, DELIVERY, 4, URL, AT)
    raw = _raw(token)
    for index in range(len(raw)):
        for bit in (0x01, 0x80):
            tampered = bytearray(raw)
            tampered[index] ^= bit
            with pytest.raises(TokenError):
                tokens.read(_encode(bytes(tampered)), kind, AT)


def test_changing_any_character_fails(tokens: Tokens) -> None:
    token = tokens.click(WORKSPACE, DELIVERY, 4, "https://a.example/b", AT)
    for index, char in enumerate(token):
        for other in {"A", "B", "-", "_"} - {char}:
            with pytest.raises(TokenError):
                tokens.read(token[:index] + other + token[index + 1 :], Kind.CLICK, AT)


def test_non_canonical_last_character_fails(tokens: Tokens) -> None:
    token = tokens.open(WORKSPACE, DELIVERY, AT)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # 52 bytes leave 4 unused bits in the last character; setting one keeps the bytes the same.
    twin = token[:-1] + alphabet[alphabet.index(token[-1]) ^ 1]
    assert _raw(twin) == _raw(token)
    with pytest.raises(TokenError):
        tokens.read(twin, Kind.OPEN, AT)


def test_truncated_and_extended_tokens_fail(tokens: Tokens) -> None:
    token = tokens.click(WORKSPACE, DELIVERY, 4, URL, AT)
    for end in range(len(token)):
        with pytest.raises(TokenError):
            tokens.read(token[:end], Kind.CLICK, AT)
    for extra in ("A", "AA", "AAAA", "=", "=="):
        with pytest.raises(TokenError):
            tokens.read(token + extra, Kind.CLICK, AT)


def test_another_secret_fails(tokens: Tokens) -> None:
    token = Tokens("another-secret", lifetime=LIFETIME).open(WORKSPACE, DELIVERY, AT)
    with pytest.raises(TokenError):
        tokens.read(token, Kind.OPEN, AT)


def test_token_moved_to_another_workspace_fails(tokens: Tokens) -> None:
    raw = bytearray(_raw(tokens.click(WORKSPACE, DELIVERY, 1, URL, AT)))
    raw[2:18] = OTHER_WORKSPACE.bytes
    with pytest.raises(TokenError):
        tokens.read(_encode(bytes(raw)), Kind.CLICK, AT)


def test_mac_keyed_for_one_workspace_does_not_pass_for_another(tokens: Tokens) -> None:
    payload = _payload(code=1, workspace=OTHER_WORKSPACE)
    with pytest.raises(TokenError):
        tokens.read(_forge(payload, workspace=WORKSPACE), Kind.OPEN, AT)
    # The same payload with the other workspace's own key is valid: the key is per workspace.
    assert tokens.read(_forge(payload, workspace=OTHER_WORKSPACE), Kind.OPEN, AT).workspace_id == (
        OTHER_WORKSPACE
    )


def test_mac_is_at_least_ten_bytes(tokens: Tokens) -> None:
    payload = _payload(code=1)
    assert tokens.read(_forge(payload), Kind.OPEN, AT).delivery_id == DELIVERY
    with pytest.raises(TokenError):
        tokens.read(_forge(payload, mac_bytes=10), Kind.OPEN, AT)


def test_click_token_is_not_an_open_token(tokens: Tokens) -> None:
    with pytest.raises(TokenError):
        tokens.read(tokens.click(WORKSPACE, DELIVERY, 0, URL, AT), Kind.OPEN, AT)


def test_open_token_is_not_a_click_token(tokens: Tokens) -> None:
    with pytest.raises(TokenError):
        tokens.read(tokens.open(WORKSPACE, DELIVERY, AT), Kind.CLICK, AT)


@pytest.mark.parametrize(
    ("kind", "url", "right", "wrong"),
    [(Kind.CLICK, b"https://a.example/", 2, 1), (Kind.OPEN, b"", 1, 2)],
    ids=["open-as-click", "click-as-open"],
)
def test_signed_token_of_the_other_kind_fails_even_when_its_fields_fit(
    tokens: Tokens, kind: Kind, url: bytes, right: int, wrong: int
) -> None:
    assert tokens.read(_forge(_payload(code=right, url=url)), kind, AT).kind is kind
    with pytest.raises(TokenError):
        tokens.read(_forge(_payload(code=wrong, url=url)), kind, AT)


def test_unknown_version_fails_even_when_signed(tokens: Tokens) -> None:
    assert tokens.read(_forge(_payload(code=1)), Kind.OPEN, AT).kind is Kind.OPEN
    with pytest.raises(TokenError):
        tokens.read(_forge(_payload(version=2, code=1)), Kind.OPEN, AT)


@pytest.mark.parametrize(
    ("code", "link", "url"),
    [(1, 0, b"https://a.example/"), (1, 3, b""), (0x81, 0, b"")],
    ids=["url", "link", "deflated"],
)
def test_signed_open_with_click_fields_fails(
    tokens: Tokens, code: int, link: int, url: bytes
) -> None:
    with pytest.raises(TokenError):
        tokens.read(_forge(_payload(code=code, link=link, url=url)), Kind.OPEN, AT)


@pytest.mark.parametrize(
    "url",
    [
        b"javascript:alert(1)",
        b"//evil.example/",
        b"ftp://example.com/",
        b"https://",
        b"https://a.example/\r\nSet-Cookie: x=1",
        b"",
        b"https://a.example/\xff\xfe",
        b"https://a.example/\xed\xa0\x80",
    ],
)
def test_signed_click_with_a_bad_url_fails(tokens: Tokens, url: bytes) -> None:
    assert tokens.read(_forge(_payload(url=b"https://a.example/")), Kind.CLICK, AT).url
    with pytest.raises(TokenError):
        tokens.read(_forge(_payload(url=url)), Kind.CLICK, AT)


def test_signed_deflate_bomb_fails(tokens: Tokens) -> None:
    inflated = b"https://a.example/" + b"a" * 1_000_000
    packer = zlib.compressobj(9, zlib.DEFLATED, -9, 9, zlib.Z_DEFAULT_STRATEGY, module._URL_WORDS)
    bomb = packer.compress(inflated) + packer.flush()
    token = _forge(_payload(code=0x82, url=bomb))
    assert len(token) <= MAX_TOKEN_LENGTH
    tracemalloc.start()
    try:
        with pytest.raises(TokenError):
            tokens.read(token, Kind.CLICK, AT)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024


@pytest.mark.parametrize("url", [b"\x00not deflate", b"\x03\x00", b""])
def test_signed_corrupt_deflate_fails(tokens: Tokens, url: bytes) -> None:
    with pytest.raises(TokenError):
        tokens.read(_forge(_payload(code=0x82, url=url)), Kind.CLICK, AT)


def test_deflated_url_with_trailing_bytes_fails(tokens: Tokens) -> None:
    stored = _raw(tokens.click(WORKSPACE, DELIVERY, 0, URL, AT))[40:-12]
    assert tokens.read(_forge(_payload(code=0x82, url=stored)), Kind.CLICK, AT).url == URL
    with pytest.raises(TokenError):
        tokens.read(_forge(_payload(code=0x82, url=stored + b"x")), Kind.CLICK, AT)


# Expiry


def test_token_is_valid_through_its_lifetime(tokens: Tokens) -> None:
    token = tokens.click(WORKSPACE, DELIVERY, 2, URL, AT)
    assert tokens.read(token, Kind.CLICK, ISSUED + LIFETIME).link == 2


def test_expired_token_raises_with_its_payload(tokens: Tokens) -> None:
    token = tokens.click(WORKSPACE, DELIVERY, 2, URL, AT)
    with pytest.raises(ExpiredTokenError) as raised:
        tokens.read(token, Kind.CLICK, ISSUED + LIFETIME + timedelta(seconds=1))
    assert raised.value.tracked == Tracked(
        kind=Kind.CLICK,
        workspace_id=WORKSPACE,
        delivery_id=DELIVERY,
        link=2,
        url=URL,
        issued=ISSUED,
    )
    assert isinstance(raised.value, TokenError)


def test_expired_open_token_raises(tokens: Tokens) -> None:
    token = tokens.open(WORKSPACE, DELIVERY, AT)
    with pytest.raises(ExpiredTokenError) as raised:
        tokens.read(token, Kind.OPEN, AT + timedelta(days=365))
    assert raised.value.tracked.kind is Kind.OPEN


def test_tampered_expired_token_is_not_reported_as_expired(tokens: Tokens) -> None:
    raw = bytearray(_raw(tokens.open(WORKSPACE, DELIVERY, AT)))
    raw[-1] ^= 1
    with pytest.raises(TokenError) as raised:
        tokens.read(_encode(bytes(raw)), Kind.OPEN, AT + timedelta(days=365))
    assert not isinstance(raised.value, ExpiredTokenError)


# Garbage never raises anything but TokenError


@pytest.mark.parametrize(
    "token",
    [
        "",
        "=",
        "A",
        "AA==",
        "====",
        " ",
        "\x00",
        "é" * 80,
        "🎉",
        "A" * 69,
        "A" * 70,
        "A" * 10_000,
        "A" * (MAX_TOKEN_LENGTH + 4),
        "AQ" + "\u0660" * 68,  # Arabic-Indic digits are digits, not base64
        "AQ+/" * 18,
        "AQ\n" * 25,
    ],
)
def test_garbage_is_a_token_error(tokens: Tokens, token: str) -> None:
    with pytest.raises(TokenError):
        tokens.read(token, Kind.CLICK, AT)


def test_standard_alphabet_and_whitespace_are_rejected(tokens: Tokens) -> None:
    token = tokens.click(WORKSPACE, DELIVERY, 0, URL, AT)
    for variant in (
        token.replace("-", "+").replace("_", "/"),
        f" {token}",
        f"{token}\n",
        token[:10] + " " + token[10:],
        token + "=" * (-len(token) % 4 or 4),
    ):
        if variant != token:
            with pytest.raises(TokenError):
                tokens.read(variant, Kind.CLICK, AT)


def test_non_string_is_a_token_error(tokens: Tokens) -> None:
    token = tokens.open(WORKSPACE, DELIVERY, AT)
    for value in (token.encode(), None, 42):
        with pytest.raises(TokenError):
            tokens.read(value, Kind.OPEN, AT)  # type: ignore[arg-type]


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_any_string_is_a_token_error(token: str) -> None:
    tokens = Tokens(SECRET, lifetime=LIFETIME)
    for kind in Kind:
        with pytest.raises(TokenError):
            tokens.read(token, kind, AT)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
def test_any_well_encoded_bytes_are_a_token_error(raw: bytes) -> None:
    tokens = Tokens(SECRET, lifetime=LIFETIME)
    for kind in Kind:
        with pytest.raises(TokenError):
            tokens.read(_encode(raw), kind, AT)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_random_edits_of_a_real_token_are_token_errors(data: st.DataObject) -> None:
    tokens = Tokens(SECRET, lifetime=LIFETIME)
    token = tokens.click(WORKSPACE, DELIVERY, 9, URL, AT)
    index = data.draw(st.integers(0, len(token)))
    cut = data.draw(st.integers(0, 3))
    insert = data.draw(st.text(max_size=3))
    edited = token[:index] + insert + token[index + cut :]
    if edited == token:
        return
    with pytest.raises(TokenError):
        tokens.read(edited, Kind.CLICK, AT)


# Signing rules


@pytest.mark.parametrize(
    "url",
    [
        "mailto:a@example.com",
        "javascript:alert(1)",
        "/relative",
        "//host.example/x",
        "https://",
        "https:///path",
        "https://a.example/\nx",
        "https://a.example/" + "x" * MAX_URL_BYTES,
        "https://a.example/\ud800",
    ],
)
def test_untrackable_urls_cannot_be_signed(tokens: Tokens, url: str) -> None:
    assert not is_trackable(url)
    with pytest.raises(ValueError, match="http"):
        tokens.click(WORKSPACE, DELIVERY, 0, url, AT)


@pytest.mark.parametrize("link", [-1, 65536])
def test_link_index_out_of_range_cannot_be_signed(tokens: Tokens, link: int) -> None:
    with pytest.raises(ValueError, match="link"):
        tokens.click(WORKSPACE, DELIVERY, link, URL, AT)


def test_naive_times_are_refused(tokens: Tokens) -> None:
    naive = AT.replace(tzinfo=None)
    with pytest.raises(ValueError, match="timezone"):
        tokens.open(WORKSPACE, DELIVERY, naive)
    with pytest.raises(ValueError, match="timezone"):
        tokens.read(tokens.open(WORKSPACE, DELIVERY, AT), Kind.OPEN, naive)


@pytest.mark.parametrize(
    ("secret", "lifetime"), [("", LIFETIME), (SECRET, timedelta(0)), (SECRET, -LIFETIME)]
)
def test_bad_configuration_is_refused(secret: str, lifetime: timedelta) -> None:
    with pytest.raises(ValueError, match=r"secret|lifetime"):
        Tokens(secret, lifetime=lifetime)


def test_derived_keys_are_cached_within_a_bound(
    tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(module, "_KEY_CACHE_SIZE", 8)
    workspaces = [UUID(int=n) for n in range(1, 30)]
    issued = {workspace: tokens.open(workspace, DELIVERY, AT) for workspace in workspaces}
    assert 0 < len(tokens._keys) <= 8
    for workspace, token in issued.items():
        assert tokens.read(token, Kind.OPEN, AT).workspace_id == workspace
    assert len(tokens._keys) <= 8
