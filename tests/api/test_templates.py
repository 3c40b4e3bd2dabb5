"""Templates through GraphQL: save versions, refuse bad input with its line, lint, preview, delete."""

import base64
from email import message_from_bytes
from email.message import Message
from email.policy import default
from pathlib import Path
from typing import Any
from uuid import UUID

from aiosmtpd.controller import Controller
from starlette.testclient import TestClient

from api.app import create_app
from tests.conftest import gql
from tests.support import factories
from tests.support.proxy import free_port

STARTER = (
    Path(__file__).parents[2] / "delivery/templates/starters/abandoned_cart.mjml"
).read_text()
FIELDS = "id name version subject preheader warnings { code line message }"
ERRORS = "errors { field code line message }"
SUBJECT = '{{ profile.traits.first_name | default: "Hello" }}, your cart is waiting'


def _gid(kind: str, key: UUID) -> str:
    return base64.b64encode(f"{kind}:{key}".encode()).decode()


def _save(client, token: str, data: dict[str, Any], template_id: str | None = None) -> dict:
    if template_id is None:
        mutation = "mutation($i: TemplateInput!) { createTemplate(input: $i) {"
        variables: dict[str, Any] = {"i": data}
    else:
        mutation = "mutation($id: ID!, $i: TemplateInput!) { updateTemplate(id: $id, input: $i) {"
        variables = {"i": data, "id": template_id}
    body = gql(client, f"{mutation} template {{ {FIELDS} }} {ERRORS} }} }}", variables, token=token)
    assert "errors" not in body, body
    payload: dict[str, Any] = next(iter(body["data"].values()))
    return payload


def _template(name: str = "Cart", **changes: str) -> dict[str, Any]:
    return {"name": name, "subject": SUBJECT, "preheader": "Saved for you", "mjml": STARTER,
            **changes}  # fmt: skip


def _preview(client, token: str, template_id: str, args: str, variables: dict) -> dict:
    declared = "".join(f", ${k}: {'ID' if k == 'p' else 'JSON'}" for k in variables)
    body = gql(
        client,
        f"query($id: ID!{declared}) {{ template(id: $id) {{ preview({args}) "
        "{ subject preheader html text } } }",
        {"id": template_id, **variables},
        token=token,
    )
    assert "errors" not in body, body
    found: dict[str, Any] = body["data"]["template"]["preview"]
    return found


def test_a_saved_template_previews_for_each_profile_as_it_would_be_sent(
    client, workspace, database_url
):
    token, ws = workspace.api_token, workspace.workspace.id
    address = gql(
        client,
        'mutation { setPostalAddress(postalAddress: "1 Quay St, Hamburg") { postalAddress } }',
        token=token,
    )
    assert address["data"]["setPostalAddress"]["postalAddress"] == "1 Quay St, Hamburg"
    saved = _save(client, token, _template())
    assert saved["errors"] == []
    template = saved["template"]
    assert template["version"] == 1
    assert template["warnings"] == []
    cart = {"items": [{"name": "Trail shoe", "price": "€89.00", "quantity": 2,
                       "url": "https://shop.example/p/1", "image_url": "https://shop.example/1.jpg"}]}  # fmt: skip
    with factories.seeding(database_url) as db:
        ann = factories.profile(
            db, ws, traits={"first_name": "<b>Ann</b>", "plan": "pro"}, computed={"cart": cart}
        )
        bo = factories.profile(db, ws, traits={})
        db.commit()

    mine = _preview(client, token, template["id"], "profileId: $p", {"p": _gid("Profile", ann)})
    assert mine["subject"] == "<b>Ann</b>, your cart is waiting"
    assert "Hi &lt;b&gt;Ann&lt;/b&gt;, you left something behind" in mine["html"]
    assert "Trail shoe" in mine["html"]
    assert "shipping on this order is on us" in mine["html"]
    assert "1 Quay St, Hamburg" in mine["html"]
    assert "/unsubscribe/" in mine["html"]
    assert "Hi <b>Ann</b>, you left something behind" in mine["text"]

    other = _preview(client, token, template["id"], "profileId: $p", {"p": _gid("Profile", bo)})
    assert other["subject"] == "Hello, your cart is waiting"
    assert "Hi there, you left something behind" in other["html"]
    assert "shipping on this order is on us" not in other["html"]
    assert "Trail shoe" not in other["html"]

    sample = _preview(
        client, token, template["id"], "data: $d",
        {"d": {"profile": {"traits": {"first_name": "Cy", "plan": "pro"}}}},
    )  # fmt: skip
    assert sample["subject"] == "Cy, your cart is waiting"
    assert "shipping on this order is on us" in sample["html"]


def test_an_update_is_a_new_version_and_the_old_one_stays(client, workspace):
    token = workspace.api_token
    first = _save(client, token, _template())["template"]
    second = _save(client, token, _template(subject="Still there?"), first["id"])
    assert second["errors"] == []
    assert second["template"]["version"] == 2
    assert second["template"]["subject"] == "Still there?"
    body = gql(
        client,
        "query($id: ID!) { template(id: $id) { versions { edges { node { version subject } } } } }",
        {"id": first["id"]},
        token=token,
    )
    versions = [e["node"] for e in body["data"]["template"]["versions"]["edges"]]
    assert versions == [
        {"version": 2, "subject": "Still there?"},
        {"version": 1, "subject": SUBJECT},
    ]


def test_invalid_mjml_or_liquid_is_refused_with_its_line_and_nothing_is_stored(client, workspace):
    token = workspace.api_token
    broken_liquid = "<mjml><mj-body>\n<mj-section>\n{% if x %}\n</mj-section>\n</mj-body></mjml>"
    refused = _save(client, token, _template(mjml=broken_liquid))
    assert refused["template"] is None
    [error] = refused["errors"]
    assert (error["field"], error["code"], error["line"]) == ("mjml", "INVALID", 3)
    assert error["message"].startswith("line 3: invalid Liquid")
    broken_mjml = "<mjml><mj-body>\n<mj-section>\n<mj-column>\n</mj-section>\n</mj-body></mjml>"
    [error] = _save(client, token, _template(mjml=broken_mjml))["errors"]
    assert (error["field"], error["line"]) == ("mjml", 3)
    body = gql(client, "{ templates { edges { node { id } } } }", token=token)
    assert body["data"]["templates"]["edges"] == []


def test_each_lint_fires_on_a_template_made_to_trigger_it(client, workspace):
    token = workspace.api_token
    mjml = (
        "<mjml><mj-body><mj-section><mj-column>\n"
        '<mj-image src="https://x.example/a.png" />\n'
        "<mj-text>{{ profile.traits.name }} {{ coupon }}</mj-text>\n"
        "</mj-column></mj-section></mj-body></mjml>"
    )
    saved = _save(client, token, _template(mjml=mjml, subject="S" * 90))
    codes = {(w["code"], w["line"]) for w in saved["template"]["warnings"]}
    assert codes == {
        ("MISSING_UNSUBSCRIBE", None),
        ("MISSING_POSTAL_ADDRESS", None),
        ("SUBJECT_TOO_LONG", None),
        ("IMAGE_WITHOUT_ALT", 2),
        ("UNKNOWN_VARIABLE", 3),
    }
    big = (
        "<mjml><mj-body><mj-section><mj-column><mj-text>"
        + "Lorem ipsum dolor sit amet. " * 4000
        + "{{ unsubscribe_url }} {{ workspace.postal_address }}</mj-text>"
        "</mj-column></mj-section></mj-body></mjml>"
    )
    large = _save(client, token, _template(name="Big", mjml=big))
    assert [w["code"] for w in large["template"]["warnings"]] == ["HTML_TOO_LARGE"]


def test_a_deleted_template_is_gone_and_an_unknown_one_is_not_found(client, workspace):
    token = workspace.api_token
    template_id = _save(client, token, _template())["template"]["id"]
    delete = "mutation($id: ID!) { deleteTemplate(id: $id) { deletedId errors { code } } }"
    assert gql(client, delete, {"id": template_id}, token=token)["data"]["deleteTemplate"] == {
        "deletedId": template_id,
        "errors": [],
    }
    again = gql(client, delete, {"id": template_id}, token=token)["data"]["deleteTemplate"]
    assert again["errors"] == [{"code": "NOT_FOUND"}]
    body = gql(client, "query($id: ID!) { template(id: $id) { id } }", {"id": template_id},
               token=token)  # fmt: skip
    assert body["data"]["template"] is None


def test_names_are_unique_in_a_workspace(client, workspace):
    token = workspace.api_token
    _save(client, token, _template())
    [error] = _save(client, token, _template())["errors"]
    assert (error["field"], error["code"]) == ("name", "CONFLICT")


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(message_from_bytes(envelope.content, policy=default))
        return "250 Message accepted for delivery"


def test_a_test_email_arrives_with_html_and_text_parts_marked_as_a_test(
    settings, database_url, workspace
):
    inbox = _Inbox()
    port = free_port()
    server = Controller(inbox, hostname="127.0.0.1", port=port)
    server.start()
    try:
        relayed = settings.model_copy(
            update={"smtp_port": port, "mail_from": "Shop <shop@example.com>"}
        )
        with TestClient(create_app(relayed, database_url=database_url)) as client:
            token = workspace.api_token
            template_id = _save(client, token, _template())["template"]["id"]
            send = (
                "mutation($t: ID!, $to: String!) { sendTestEmail(templateId: $t, to: $to) "
                "{ sent messageId errors { field code message } } }"
            )
            body = gql(client, send, {"t": template_id, "to": "qa@example.org"}, token=token)
            payload = body["data"]["sendTestEmail"]
            assert payload["sent"] is True, payload
            refused = gql(client, send, {"t": template_id, "to": "not an address"}, token=token)
            [error] = refused["data"]["sendTestEmail"]["errors"]
            assert (error["field"], error["code"]) == ("to", "INVALID")
    finally:
        server.stop()
    [message] = inbox.messages
    assert message["To"] == "qa@example.org"
    assert message["Subject"] == "[Test] Hello, your cart is waiting"
    assert message["X-CDP-Test"] == "true"
    assert message["Message-ID"] == payload["messageId"]
    assert message.is_multipart()
    html = message.get_body(("html",))
    text = message.get_body(("plain",))
    assert html is not None
    assert "Hi there, you left something behind" in html.get_content()
    assert text is not None
    assert "Hi there, you left something behind" in text.get_content()
