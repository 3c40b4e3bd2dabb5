"""Liveness, readiness and metrics."""

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Sink
from starlette.testclient import TestClient

from api.app import create_app
from tests.conftest import make_settings
from tests.support.proxy import free_port


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"]


def test_request_id_is_echoed(client):
    response = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"


def test_readyz_when_everything_answers(database_url):
    port = free_port()
    relay = Controller(Sink(), hostname="127.0.0.1", port=port)
    relay.start()
    try:
        with TestClient(create_app(make_settings(database_url, smtp_port=port),
                                   database_url=database_url)) as up:  # fmt: skip
            response = up.get("/readyz")
    finally:
        relay.stop()
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "degraded": {}}


def test_readyz_serves_but_says_so_when_the_smtp_relay_does_not_answer(database_url):
    port = free_port()
    settings = make_settings(database_url, smtp_port=port)
    relay = Controller(Sink(), hostname="127.0.0.1", port=port)
    with TestClient(create_app(settings, database_url=database_url)) as app:
        response = app.get("/readyz")
        # The relay is asked again only after RELAY_CHECK_SECONDS: at once, the answer is kept.
        relay.start()
        try:
            kept = app.get("/readyz").json()
            app.app.state.relay_check = None  # as if the period had passed
            again = app.get("/readyz").json()
        finally:
            relay.stop()
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["degraded"]["relay"].startswith(f"127.0.0.1:{port}: ")
    assert kept["degraded"] == body["degraded"]
    assert again["degraded"] == {}


def test_readyz_when_the_broker_does_not_answer(database_url):
    settings = make_settings(database_url, broker_url=f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(settings, database_url=database_url)) as down:
        response = down.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert set(body["failing"]) == {"broker"}


def test_readyz_when_the_database_does_not_answer(database_url):
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    settings = make_settings(dead)
    with TestClient(create_app(settings, database_url=dead)) as down:
        response = down.get("/readyz")
    assert response.status_code == 503
    assert "database" in response.json()["failing"]


def test_metrics_are_prometheus_text(client):
    client.get("/healthz")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'cdp_http_requests_total{method="GET",route="/healthz",status="200"}' in response.text
