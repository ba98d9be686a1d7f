"""Request ids on every answer, and Prometheus metrics per family and status."""

from __future__ import annotations

from tests.conftest import ClientFactory


async def test_request_id_is_kept_or_made(make_client: ClientFactory) -> None:
    client = await make_client(families=[])
    kept = await client.get("/healthz", headers={"X-Request-ID": "abc123"})
    assert kept.headers["x-request-id"] == "abc123"
    made = await client.get("/healthz")
    assert len(made.headers["x-request-id"]) == 32


async def test_metrics_count_requests_by_family_and_status(make_client: ClientFactory) -> None:
    client = await make_client(families=[])
    await client.get("/healthz")
    await client.get("/nowhere")
    text = (await client.get("/metrics")).text
    assert 'cloudlet_http_requests_total{family="core",method="GET",status="200"} 1.0' in text
    assert 'cloudlet_http_requests_total{family="core",method="GET",status="404' in text
    assert "cloudlet_http_request_duration_seconds_bucket" in text
    assert 'cloudlet_db_pool_connections{state="checked_out"}' in text


def test_url_secrets_are_redacted() -> None:
    from cloudlet.core.observability import redact_url_secrets

    line = "GET /ota/download/ota_abc123?x=1 and /ota/south/report?dev_id=5&token=tok9 HTTP/1.1"
    assert redact_url_secrets(line) == (
        "GET /ota/download/***?x=1 and /ota/south/report?dev_id=5&token=*** HTTP/1.1"
    )
