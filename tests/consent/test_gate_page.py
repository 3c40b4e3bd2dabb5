"""The contact gate and consent over a page of profiles: right per profile, and batched."""

import uuid

from tests.conftest import gql
from tests.consent.support import ok, profile_by_email, record_consent, track_batch

ONE_CLICK = {"List-Unsubscribe": "One-Click"}

PAGE = """query($first: Int!) { profiles(first: $first) { edges { node {
  identities { value }
  contactable(channel: "email", purpose: "newsletter") { allowed reason }
  transactional: contactable(channel: "email", purpose: "transactional") { allowed }
  consents { status }
  early: consentAt(purpose: "newsletter", channel: "email", at: "2001-01-01T00:00:00Z") { status }
} } } }"""


def _person(client, workspace, state: str) -> str:
    email = f"{state}.{uuid.uuid4().hex[:8]}@example.com"
    track_batch(client, workspace.write_key, [{"type": "identify", "userId": email,
                                                 "traits": {"email": email}}])  # fmt: skip
    if state in {"granted", "unsubscribed"}:
        ok(record_consent(client, workspace.api_token, email, "GRANTED"), "recordConsent")
    if state == "withdrawn":
        ok(record_consent(client, workspace.api_token, email, "WITHDRAWN"), "recordConsent")
    if state == "unsubscribed":
        url = profile_by_email(
            client, workspace.api_token, email,
            'unsubscribeUrl(channel: "email", purpose: "newsletter")',
        )["unsubscribeUrl"]  # fmt: skip
        path = "/" + url.split("://", 1)[1].split("/", 1)[1]
        assert client.post(path, data=ONE_CLICK).status_code == 200
    return email


def _page(client, workspace, first: int) -> dict[str, dict]:
    body = gql(client, PAGE, {"first": first}, workspace.api_token)
    assert "errors" not in body, body
    return {
        e["node"]["identities"][0]["value"]: e["node"] for e in body["data"]["profiles"]["edges"]
    }


def test_each_profile_of_a_page_gets_its_own_answer(client, workspace):
    people = {state: _person(client, workspace, state)
              for state in ("granted", "withdrawn", "unsubscribed", "unknown")}  # fmt: skip
    page = _page(client, workspace, 50)
    answers = {state: page[email] for state, email in people.items()}
    assert {s: a["contactable"]["allowed"] for s, a in answers.items()} == {
        "granted": True, "withdrawn": False, "unsubscribed": False, "unknown": False,
    }  # fmt: skip
    reasons = {state: a["contactable"]["reason"] for state, a in answers.items()}
    assert reasons["unsubscribed"] == "suppressed: unsubscribed (source: one-click-unsubscribe)"
    # A withdrawal suppresses too, in the name of where it was recorded.
    assert reasons["withdrawn"] == "suppressed: unsubscribed (source: signup-form)"
    assert reasons["unknown"] == "no consent recorded"
    assert reasons["granted"] == "consent granted (newsletter, source: signup-form)"
    assert all(a["transactional"]["allowed"] for s, a in answers.items() if s != "unsubscribed")
    assert answers["unsubscribed"]["consents"] == [{"status": "WITHDRAWN"}]
    assert answers["granted"]["consents"] == [{"status": "GRANTED"}]
    assert answers["withdrawn"]["consents"] == [{"status": "WITHDRAWN"}]
    assert answers["unknown"]["consents"] == []
    assert all(a["early"] is None for a in answers.values())


def test_the_gate_over_a_page_costs_the_same_statements_whatever_its_size(
    client, workspace, sql_counter
):
    for i in range(12):
        _person(client, workspace, ("granted", "withdrawn", "unsubscribed")[i % 3])
    sql_counter.statements.clear()
    small = _page(client, workspace, 2)
    small_count = sql_counter.count
    sql_counter.statements.clear()
    big = _page(client, workspace, 12)
    big_count = sql_counter.count
    assert len(small) == 2
    assert len(big) == 12
    assert big_count == small_count, sql_counter.statements
