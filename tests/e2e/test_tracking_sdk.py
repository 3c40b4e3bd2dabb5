"""The official segment-analytics-python SDK, unchanged, pointed at this server."""

import uuid

import httpx
import pytest
from segment.analytics.client import Client
from segment.analytics.request import APIError

from tests.support.server import serving

PROFILE = """query($kind: String!, $value: String!) {
  profile(identifier: {kind: $kind, value: $value}) {
    id traits identities { kind value }
    events(first: 20) { edges { node { type name properties context } } }
  }
}"""


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_sdk_calls_land_and_read_back(settings, database_url, workspace, gzip):
    user = f"sdk-{uuid.uuid4().hex[:8]}"
    anon = f"anon-{uuid.uuid4().hex[:8]}"
    errors: list[Exception] = []
    with serving(settings, database_url) as base:
        sdk = Client(
            workspace.write_key,
            host=base,
            sync_mode=True,
            gzip=gzip,
            max_retries=1,
            on_error=lambda e, batch: errors.append(e),
        )
        sdk.page(
            anonymous_id=anon, category="Docs", name="Pricing", properties={"path": "/pricing"}
        )
        sdk.identify(user, {"email": f"{user}@example.com", "name": "Sam"}, anonymous_id=anon)
        sdk.track(user, "Product Viewed", {"product_id": "sku-1", "price": 12.5})
        sdk.group(user, "acme", {"plan": "enterprise"})
        sdk.screen(user, name="Home")
        sdk.alias(anon + "-old", user)
        sdk.flush()
        assert errors == []
        body = httpx.post(
            f"{base}/graphql",
            json={"query": PROFILE, "variables": {"kind": "user_id", "value": user}},
            headers={"Authorization": f"Bearer {workspace.api_token}"},
        ).json()
    profile = body["data"]["profile"]
    assert profile["traits"] == {"email": f"{user}@example.com", "name": "Sam"}
    kinds = {(i["kind"], i["value"]) for i in profile["identities"]}
    assert {("user_id", user), ("anonymous_id", anon), ("email", f"{user}@example.com")} <= kinds
    assert ("anonymous_id", anon + "-old") in kinds
    events = [e["node"] for e in profile["events"]["edges"]]
    assert sorted(e["type"] for e in events) == [
        "alias",
        "group",
        "identify",
        "page",
        "screen",
        "track",
    ]
    track = next(e for e in events if e["type"] == "track")
    assert track["name"] == "Product Viewed"
    assert track["properties"]["product_id"] == "sku-1"
    assert track["context"]["library"]["name"] == "analytics-python"
    page = next(e for e in events if e["type"] == "page")
    assert page["name"] == "Pricing"


def test_sdk_reports_a_bad_write_key(settings, database_url):
    with serving(settings, database_url) as base:
        sdk = Client("cdp_wk_" + "0" * 32 + "_nope", host=base, sync_mode=True, max_retries=1)
        # In sync mode the SDK raises what the server answered.
        with pytest.raises(APIError, match="401"):
            sdk.track("someone", "Nothing")
