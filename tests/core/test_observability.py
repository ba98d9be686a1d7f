"""Request ids on every answer, and Prometheus metrics per family and status."""

from __future__ import annotations

import httpx

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


async def test_a_server_error_is_answered_with_its_request_id_and_counted(
    make_client: ClientFactory,
) -> None:
    from tests.conftest import app_of

    client = await make_client(families=[])
    app = app_of(client)

    @app.get("/crash", include_in_schema=False)
    async def crash() -> None:
        raise RuntimeError("boom")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as raw:
        answer = await raw.get("/crash", headers={"X-Request-ID": "crash-1"})
    assert (answer.status_code, answer.text) == (500, "Internal Server Error")
    assert answer.headers["x-request-id"] == "crash-1"
    text = (await client.get("/metrics")).text
    assert 'cloudlet_http_requests_total{family="core",method="GET",status="500"} 1.0' in text


async def test_device_calls_carry_request_ids_and_count_under_their_family(
    make_client: ClientFactory,
) -> None:
    client = await make_client("ota")
    answer = await client.get("/ota/south/check", headers={"X-Request-ID": "dev-1"})
    assert answer.headers["x-request-id"] == "dev-1"
    # First, so that OneNET clients still find Content-Range last (core.observability).
    assert answer.headers.raw[0] == (b"x-request-id", b"dev-1")
    text = (await client.get("/metrics")).text
    status = answer.status_code
    assert f'requests_total{{family="ota",method="GET",status="{status}"}} 1.0' in text
