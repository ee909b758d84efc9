"""Health, readiness, metrics, request ids and the OpenAPI document."""

from __future__ import annotations

import json
import logging

from fastapi.testclient import TestClient

from .support import Api, srs_event


def test_health_and_readiness(client: TestClient, redis_server) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ok", "database": "ok", "redis": "ok"}
    redis_server.stop()
    degraded = client.get("/ready")
    assert degraded.status_code == 200
    assert degraded.json() == {"status": "degraded", "database": "ok", "redis": "failed"}


def test_not_ready_without_the_database(settings) -> None:
    from streamr_coordinator.app import create_app

    unreachable = type(settings)(
        **{**settings.model_dump(), "database_url": "postgresql+psycopg://nobody@127.0.0.1:1/x"}
    )
    with TestClient(create_app(unreachable)) as client:
        response = client.get("/ready")
    assert response.status_code == 503
    assert response.json()["status"] == "failed"


def test_metrics_count_requests_by_route_template(api: Api) -> None:
    admin = api.account("admin")
    api.client.get("/api/v1/streams/12345", headers=admin.auth)
    text = api.client.get("/metrics", headers=admin.auth).text
    assert 'route="/api/v1/streams/{stream_id}"' in text
    assert "streamr_http_request_seconds_bucket" in text


def test_request_id_is_echoed_or_made_and_secrets_stay_out_of_logs(api: Api, caplog) -> None:
    given = api.client.get("/health", headers={"X-Request-ID": "trace-123"})
    assert given.headers["x-request-id"] == "trace-123"
    assert len(api.client.get("/health").headers["x-request-id"]) == 32
    with caplog.at_level(logging.INFO, logger="streamr.access"):
        api.hook("on_connect", srs_event("on_connect", "anything"))
    logged = [record for record in caplog.records if record.name == "streamr.access"]
    assert logged and all(api.hook_secret not in record.getMessage() for record in logged)
    from streamr_coordinator.observability import JsonFormatter

    line = json.loads(JsonFormatter().format(logged[-1]))
    assert line["path"] == "/hooks/srs/on_connect" and line["status"] == 200
    assert api.hook_secret not in json.dumps(line)


def test_openapi_documents_responses_and_errors(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            success = [code for code in responses if code.startswith("2")]
            assert success, f"{method} {path} documents no success response"
            if path.startswith("/api/v1/") and operation.get("security"):
                assert {"401", "403"} <= set(responses), f"{method} {path} lacks auth errors"
            if "422" in responses:  # as the handler answers it: one plain `detail`
                schema = responses["422"]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorOut"}, (method, path)
    schemas = document["components"]["schemas"]
    assert "stream_key" in schemas["StreamWithKey"]["properties"]
    assert "stream_key" not in schemas["StreamOut"]["properties"]
    assert schemas["StreamIn"]["properties"]["name"]["pattern"]
