"""Campaigns through GraphQL: refused before anything is queued when they cannot go out; stats."""

import base64
from typing import Any
from uuid import UUID

from tests.cdp.segments.support import recompute_pending
from tests.conftest import gql
from tests.support import factories

MJML = (
    "<mjml><mj-body><mj-section><mj-column><mj-text>Hi {{ profile.traits.first_name }} "
    '{{ workspace.postal_address }} <a href="{{ unsubscribe_url }}">Unsubscribe</a>'
    "</mj-text></mj-column></mj-section></mj-body></mjml>"
)
CREATE = (
    "mutation($i: CampaignInput!) { createCampaign(input: $i) { campaign { id status name } "
    "errors { field code message } } }"
)
SEND = (
    "mutation($id: ID!) { sendCampaign(id: $id) { campaign { id status } "
    "errors { field code message } } }"
)


def _first(body: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in body, body
    payload: dict[str, Any] = next(iter(body["data"].values()))
    return payload


def _setup(client, token: str, definition: dict[str, Any]) -> dict[str, str]:
    segment = _first(gql(
        client,
        "mutation($i: SegmentInput!) { createSegment(input: $i) { segment { id } errors { message } } }",
        {"i": {"name": "audience", "definition": definition}}, token=token,
    ))["segment"]["id"]  # fmt: skip
    template = _first(gql(
        client,
        "mutation($i: TemplateInput!) { createTemplate(input: $i) { template { id } errors { message } } }",
        {"i": {"name": "hello", "subject": "Hello", "mjml": MJML}}, token=token,
    ))["template"]["id"]  # fmt: skip
    _first(gql(client, 'mutation { addSendingDomain(domain: "shop.example") { errors { message } } }',
               token=token))  # fmt: skip
    return {"segmentId": segment, "templateId": template}


def _input(ids: dict[str, str], **changes: Any) -> dict[str, Any]:
    return {"name": "spring", "purpose": "newsletter", "fromEmail": "news@shop.example",
            **ids, **changes}  # fmt: skip


def test_a_campaign_is_refused_with_a_typed_error_when_it_cannot_go_out(client, workspace):
    token = workspace.api_token
    ids = _setup(client, token, {"trait": "plan", "op": "eq", "value": "nobody has this"})
    [error] = _first(gql(client, CREATE, {"i": _input(ids, fromEmail="news@other.example")},
                         token=token))["errors"]  # fmt: skip
    assert (error["field"], error["code"]) == ("fromEmail", "INVALID")
    assert "not a sending domain" in error["message"]
    missing = base64.b64encode(b"Template:01a23675-e969-7ead-b2e7-a26d962ad17f").decode()
    [error] = _first(gql(client, CREATE, {"i": _input(ids, templateId=missing)},
                         token=token))["errors"]  # fmt: skip
    assert (error["field"], error["code"]) == ("templateId", "NOT_FOUND")

    created = _first(gql(client, CREATE, {"i": _input(ids)}, token=token))
    assert created["errors"] == []
    assert created["campaign"]["status"] == "DRAFT"
    [error] = _first(gql(client, SEND, {"id": created["campaign"]["id"]}, token=token))["errors"]
    assert (error["field"], error["code"]) == ("segmentId", "INVALID")
    assert "no members" in error["message"]
    body = gql(client, "query($id: ID!) { campaign(id: $id) { status stats { recipients } } }",
               {"id": created["campaign"]["id"]}, token=token)  # fmt: skip
    assert body["data"]["campaign"] == {"status": "DRAFT", "stats": {"recipients": 0}}


def test_a_sent_campaign_is_sending_and_can_be_paused_and_cancelled(
    client, workspace, database_url
):
    token, ws = workspace.api_token, workspace.workspace.id
    with factories.seeding(database_url) as db:
        for i in range(3):
            factories.profile(db, ws, traits={"plan": "pro"},
                              identifiers=[("email", f"c{i}@example.org")])  # fmt: skip
        db.commit()
    ids = _setup(client, token, {"trait": "plan", "op": "eq", "value": "pro"})
    recompute_pending(database_url, ws)
    campaign_id = _first(gql(client, CREATE, {"i": _input(ids, name="go")}, token=token))[
        "campaign"
    ]["id"]
    sent = _first(gql(client, SEND, {"id": campaign_id}, token=token))
    assert sent["errors"] == []
    assert sent["campaign"]["status"] == "SENDING"
    again = _first(gql(client, SEND, {"id": campaign_id}, token=token))
    assert again["errors"][0]["code"] == "CONFLICT"
    pause = "mutation($id: ID!) { pauseCampaign(id: $id) { campaign { status } errors { code } } }"
    assert _first(gql(client, pause, {"id": campaign_id}, token=token))["campaign"] == {
        "status": "PAUSED"
    }
    cancel = (
        "mutation($id: ID!) { cancelCampaign(id: $id) { campaign { status } errors { code } } }"
    )
    assert _first(gql(client, cancel, {"id": campaign_id}, token=token))["campaign"] == {
        "status": "CANCELLED"
    }
    with factories.seeding(database_url) as db:
        jobs = db.execute(
            "SELECT count(*) FROM outbox WHERE actor_name = 'start_campaign' AND args->>1 = %s",
            (str(UUID(base64.b64decode(campaign_id).decode().split(":")[1])),),
        ).fetchone()
    assert jobs is not None
    assert jobs[0] == 1


def test_a_send_policy_is_set_and_a_bad_one_refused_with_its_field(client, workspace):
    token = workspace.api_token
    mutation = (
        "mutation($i: SendPolicyInput!) { setSendPolicy(input: $i) { policy { frequencyCap "
        "frequencyHours quietHoursStart quietHoursEnd defaultTimezone } errors { field code } } }"
    )
    good = {"frequencyCap": 2, "frequencyHours": 24, "quietHoursStart": "21:00",
            "quietHoursEnd": "08:00", "defaultTimezone": "Europe/Berlin"}  # fmt: skip
    assert _first(gql(client, mutation, {"i": good}, token=token))["policy"] == good
    [error] = _first(gql(client, mutation, {"i": {**good, "defaultTimezone": "Mars/Base"}},
                         token=token))["errors"]  # fmt: skip
    assert (error["field"], error["code"]) == ("defaultTimezone", "INVALID")


def test_a_template_a_campaign_sends_cannot_be_deleted(client, workspace):
    token = workspace.api_token
    ids = _setup(client, token, {"trait": "plan", "op": "eq", "value": "x"})
    _first(gql(client, CREATE, {"i": _input(ids, name="uses it")}, token=token))
    delete = "mutation($id: ID!) { deleteTemplate(id: $id) { deletedId errors { code message } } }"
    [error] = _first(gql(client, delete, {"id": ids["templateId"]}, token=token))["errors"]
    assert error["code"] == "IN_USE"
    assert '"uses it"' in error["message"]


def test_a_segment_a_campaign_sends_to_cannot_be_deleted(client, workspace):
    token = workspace.api_token
    ids = _setup(client, token, {"trait": "plan", "op": "eq", "value": "y"})
    _first(gql(client, CREATE, {"i": _input(ids, name="needs it")}, token=token))
    delete = "mutation($id: ID!) { deleteSegment(id: $id) { deletedId errors { code message } } }"
    [error] = _first(gql(client, delete, {"id": ids["segmentId"]}, token=token))["errors"]
    assert error["code"] == "IN_USE"
    assert 'campaign "needs it"' in error["message"]
