"""Deadlines: the calendar-month rule, extensions and refusals (no worker runs here)."""

from datetime import UTC, datetime

from consent.dsr.model import due_at
from tests.conftest import gql
from tests.consent.test_dsr import DSR_FIELDS, _request


def test_due_dates_follow_the_calendar_month_rule():
    assert due_at(datetime(2026, 1, 31, 10, tzinfo=UTC)).date().isoformat() == "2026-02-28"
    assert due_at(datetime(2028, 1, 31, tzinfo=UTC)).date().isoformat() == "2028-02-29"
    assert due_at(datetime(2026, 3, 15, tzinfo=UTC)).date().isoformat() == "2026-04-15"
    assert due_at(datetime(2026, 1, 31, tzinfo=UTC), 2).date().isoformat() == "2026-04-30"


def test_extend_and_reject(client, workspace):
    token = workspace.api_token
    created = _request(client, token, "email", "someone@example.com", "ACCESS")
    extend = (
        "mutation($id: ID!, $m: Int!) { extendDataSubjectRequest(id: $id, months: $m, "
        f'reason: "complex") {{ dataSubjectRequest {{ {DSR_FIELDS} }} errors {{ field }} }} }}'
    )
    once = gql(client, extend, {"id": created["id"], "m": 2}, token)["data"][
        "extendDataSubjectRequest"
    ]
    request = once["dataSubjectRequest"]
    received = datetime.fromisoformat(request["receivedAt"])
    assert datetime.fromisoformat(request["dueAt"]) == due_at(received, 2)
    too_long = gql(client, extend, {"id": created["id"], "m": 1}, token)["data"][
        "extendDataSubjectRequest"
    ]
    assert too_long["errors"] == [{"field": "months"}]
    body = gql(
        client,
        "mutation($input: DataSubjectRequestInput!) { createDataSubjectRequest(input: $input) "
        "{ errors { field } } }",
        {
            "input": {
                "identifier": {"kind": "email", "value": "x@example.com"},
                "type": "RECTIFICATION",
            }
        },
        token,
    )
    assert body["data"]["createDataSubjectRequest"]["errors"] == [{"field": "corrections"}]
    rejected = gql(
        client,
        'mutation($id: ID!) { rejectDataSubjectRequest(id: $id, reason: "duplicate of another") '
        "{ dataSubjectRequest { status rejectionReason completedAt } errors { field } } }",
        {"id": created["id"]},
        token,
    )["data"]["rejectDataSubjectRequest"]
    assert rejected["dataSubjectRequest"]["status"] == "REJECTED"
    assert rejected["dataSubjectRequest"]["rejectionReason"] == "duplicate of another"
    closed = gql(client, extend, {"id": created["id"], "m": 1}, token)
    assert closed["data"]["extendDataSubjectRequest"]["errors"] == [{"field": "id"}]


def test_a_bad_identifier_is_refused_and_files_nothing(client, workspace):
    token = workspace.api_token
    count = "{ dataSubjectRequests(first: 100) { edges { node { id } } } }"
    before = len(gql(client, count, token=token)["data"]["dataSubjectRequests"]["edges"])
    body = gql(
        client,
        "mutation($input: DataSubjectRequestInput!) { createDataSubjectRequest(input: $input) "
        "{ dataSubjectRequest { id } errors { field code } } }",
        {"input": {"identifier": {"kind": "email", "value": "not-an-address"}, "type": "ACCESS"}},
        token,
    )["data"]["createDataSubjectRequest"]
    assert body == {
        "dataSubjectRequest": None,
        "errors": [{"field": "identifier", "code": "INVALID"}],
    }
    after = len(gql(client, count, token=token)["data"]["dataSubjectRequests"]["edges"])
    assert after == before
