"""Journeys through GraphQL: create with path-named errors, recipes, lifecycle, stats, usage."""

from typing import Any

import jsonschema
import pytest

from delivery.journeys.recipes import RECIPES
from tests.conftest import gql

FIELDS = "id name status version definition stats { entered active completed exited converted messages { recipients sent } }"
CREATE = (
    f"mutation($i: JourneyInput!) {{ createJourney(input: $i) {{ journey {{ {FIELDS} }} "
    "errors { field code message } } }"
)
RECIPE = (
    "mutation($r: JourneyRecipe!) { createJourneyFromRecipe(recipe: $r, fromEmail: "
    f'"hello@shop.example") {{ journey {{ {FIELDS} }} errors {{ field code message }} }} }}'
)


def _payload(body: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in body, body
    payload: dict[str, Any] = next(iter(body["data"].values()))
    return payload


def _domain(client: Any, token: str) -> None:
    _payload(gql(client, 'mutation { addSendingDomain(domain: "shop.example") { errors { message } } }',
                 token=token))  # fmt: skip


def _act(client: Any, token: str, action: str, journey_id: str) -> dict[str, Any]:
    return _payload(gql(client, f"mutation($id: ID!) {{ {action}(id: $id) {{ journey {{ id status }} "
                                "errors { field code message } } }", {"id": journey_id},
                        token=token))  # fmt: skip


def test_a_bad_definition_is_refused_with_the_path_of_each_problem(client, workspace):
    token = workspace.api_token
    bad = {"trigger": {"event": "Product Added", "where": [{"property": "price", "op": "bigger",
                                                            "value": 3}]},
           "steps": [{"wait": {"hours": -1}}, {"send": {"templateId": "nope"}}]}  # fmt: skip
    errors = _payload(gql(client, CREATE, {"i": {"name": "bad", "definition": bad}},
                          token=token))["errors"]  # fmt: skip
    fields = {e["field"] for e in errors}
    assert "definition.trigger.where[0].op" in fields
    assert any(f.startswith("definition.steps[0].wait") for f in fields)
    assert any(f.startswith("definition.steps[1].send") for f in fields)
    assert all(e["code"] == "INVALID" and e["message"] for e in errors)


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_each_recipe_makes_a_valid_draft_journey_with_its_starter_templates(
    client, workspace, recipe
):
    token = workspace.api_token
    _domain(client, token)
    journey = _payload(gql(client, RECIPE, {"r": recipe}, token=token))["journey"]
    assert journey["status"] == "DRAFT"
    schema = _payload(gql(client, "{ journeyDefinitionSchema }", token=token))
    jsonschema.Draft202012Validator(schema).validate(journey["definition"])
    assert all("id" in step for step in journey["definition"]["steps"])
    templates = gql(client, "{ templates(first: 20) { edges { node { name } } } }", token=token)
    assert len(templates["data"]["templates"]["edges"]) >= 1
    again = _payload(gql(client, RECIPE, {"r": recipe}, token=token))["journey"]
    assert again["name"] == journey["name"] + " (2)", "a second one gets a name of its own"


def test_a_recipe_needs_a_sender_on_a_sending_domain(client, workspace):
    errors = _payload(gql(client, RECIPE, {"r": "WELCOME"}, token=workspace.api_token))["errors"]
    assert [e["code"] for e in errors] == ["INVALID"]
    assert "sending domain" in errors[0]["message"]


def test_lifecycle_through_graphql_and_a_used_template_cannot_be_deleted(client, workspace):
    token = workspace.api_token
    _domain(client, token)
    journey = _payload(gql(client, RECIPE, {"r": "ABANDONED_CART"}, token=token))["journey"]
    jid = journey["id"]
    assert _act(client, token, "pauseJourney", jid)["errors"][0]["code"] == "CONFLICT"
    assert _act(client, token, "activateJourney", jid)["journey"]["status"] == "ACTIVE"
    assert _act(client, token, "pauseJourney", jid)["journey"]["status"] == "PAUSED"
    assert _act(client, token, "activateJourney", jid)["journey"]["status"] == "ACTIVE"

    template_id = journey["definition"]["steps"][1]["send"]["templateId"]
    [error] = _payload(gql(client, "mutation($id: ID!) { deleteTemplate(id: $id) { errors { code message } } }",
                           {"id": template_id}, token=token))["errors"]  # fmt: skip
    assert error["code"] == "IN_USE"
    assert 'journey "Abandoned cart"' in error["message"]
    campaigns = gql(client, "{ campaigns(first: 10) { edges { node { id } } } }", token=token)
    assert campaigns["data"]["campaigns"]["edges"] == [], "a journey's steps are not campaigns"

    read = gql(client, f"query($id: ID!) {{ journey(id: $id) {{ {FIELDS} steps {{ stepId kind entered "
                       "active completed exited converted messages { recipients } } "
                       "enrollments(first: 5) { edges { node { id } } } } }",
               {"id": jid}, token=token)  # fmt: skip
    found = read["data"]["journey"]
    assert found["stats"]["entered"] == 0
    assert [s["kind"] for s in found["steps"]] == ["wait", "send", "wait", "send", "wait", "send"]
    assert found["steps"][1]["messages"] == {"recipients": 0}
    assert (found["steps"][1]["converted"], found["steps"][0]["converted"]) == (0, None)
    assert found["steps"][0]["messages"] is None
    assert {(s["entered"], s["completed"], s["exited"]) for s in found["steps"]} == {(0, 0, 0)}

    assert _act(client, token, "archiveJourney", jid)["journey"]["status"] == "ARCHIVED"
    assert _act(client, token, "activateJourney", jid)["errors"][0]["code"] == "CONFLICT"
    listed = gql(client, "{ journeys(first: 10) { edges { node { id status } } } }", token=token)
    assert listed["data"]["journeys"]["edges"] == [{"node": {"id": jid, "status": "ARCHIVED"}}]


def test_a_profile_lists_its_journeys_through_graphql(client, workspace, database_url):
    from delivery.journeys import actors
    from tests.consent.support import track_batch
    from tests.support.jobs import as_worker

    token = workspace.api_token
    _domain(client, token)
    jid = _payload(gql(client, RECIPE, {"r": "ABANDONED_CART"}, token=token))["journey"]["id"]
    _act(client, token, "activateJourney", jid)
    track_batch(client, workspace.write_key, [
        {"type": "track", "userId": "pj-1", "event": "Product Added", "messageId": "m-pj-1"}])  # fmt: skip
    as_worker(database_url, lambda: actors.run_inbox(workspace.workspace.id))
    body = gql(client, '{ profile(identifier: {kind: "user_id", value: "pj-1"}) { journeys { '
                       "version state step journey { id name } } } }", token=token)  # fmt: skip
    assert body["data"]["profile"]["journeys"] == [
        {"version": 1, "state": "ACTIVE", "step": "s1",
         "journey": {"id": jid, "name": "Abandoned cart"}}
    ]  # fmt: skip
