"""Optional bearer auth: model endpoints need the token, health and monitoring stay open."""
from __future__ import annotations

import pytest

from app_server import Server

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def guarded(entry):
    running = Server(entry, env={"AUTH_TOKEN": TOKEN})
    yield running
    running.stop()


@pytest.mark.parametrize("method,path", [
    ("POST", "/v1/models/model:predict"), ("GET", "/v1/models/model/metadata"), ("GET", "/v2"),
    ("POST", "/v2/models/model/infer"), ("GET", "/v2/models/model"), ("GET", "/v2/models/model/ready"),
])
def test_model_endpoints_need_the_token(guarded, method, path):
    for headers, reason in (({}, "missing"), ({"authorization": "Bearer wrong"}, "invalid"),
                            ({"authorization": TOKEN}, "invalid")):
        answer = guarded.client.request(method, path, headers=headers, json={"instances": [[0.0] * 64]})
        assert answer.status_code == 401, (path, headers)
        assert answer.headers["www-authenticate"] == "Bearer"
        assert answer.json()["error"].startswith(f"{reason} bearer token")


def test_the_token_opens_them(guarded):
    headers = {"authorization": f"Bearer {TOKEN}"}
    answer = guarded.client.post("/v1/models/model:predict", headers=headers, json={"instances": [[0.0] * 64]})
    assert answer.status_code == 200 and len(answer.json()["predictions"][0]) == 10
    assert guarded.client.get("/v2/models/model", headers=headers).status_code == 200


@pytest.mark.parametrize("path", ["/v2/health/live", "/v2/health/ready", "/metrics", "/openapi.json"])
def test_health_and_monitoring_stay_open(guarded, path):
    assert guarded.client.get(path).status_code == 200


def test_openapi_declares_the_scheme(guarded):
    doc = guarded.client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    assert doc["paths"]["/v2/models/{name}/infer"]["post"]["security"] == [{"bearer": []}]
    assert "security" not in doc["paths"]["/v2/health/ready"]["get"]
