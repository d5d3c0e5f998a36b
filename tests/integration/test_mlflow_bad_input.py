"""Bad input on the MLflow surface (sent raw with httpx: MLflow's client would refuse to send
most of it): every case gets MLflow's error shape with a 4xx, never a 500, and changes
nothing."""

from __future__ import annotations

from typing import Any

import httpx
from integration.helpers import snapshot

API = "/api/2.0/mlflow"

CASES: list[tuple[str, str, str, dict[str, Any]]] = [
    # (label, method, path, request kwargs)
    ("broken-json", "POST", "/registered-models/create", {"content": b'{"name": "x"'}),
    ("json-not-object", "POST", "/registered-models/create", {"json": ["x"]}),
    ("unknown-field", "POST", "/registered-models/create", {"json": {"name": "x", "nme": 1}}),
    ("wrong-type-name", "POST", "/registered-models/create", {"json": {"name": 5}}),
    ("wrong-type-tags", "POST", "/registered-models/create", {"json": {"name": "x", "tags": {}}}),
    ("tag-without-key", "POST", "/registered-models/create",
     {"json": {"name": "x", "tags": [{"value": "v"}]}}),
    ("missing-name", "POST", "/registered-models/create", {"json": {}}),
    ("huge-name", "POST", "/registered-models/create", {"json": {"name": "n" * 100_000}}),
    ("long-name", "POST", "/registered-models/create", {"json": {"name": "n" * 257}}),
    ("nul-name", "POST", "/registered-models/create", {"json": {"name": "a\x00b"}}),
    ("nul-in-query", "GET", "/registered-models/get", {"params": {"name": "a\x00b"}}),
    ("surrogate", "POST", "/registered-models/create", {"content": b'{"name": "\\ud800"}'}),
    ("tag-key-with-space", "POST", "/registered-models/create",
     {"json": {"name": "x", "tags": [{"key": "a b", "value": "v"}]}}),
    ("tag-value-too-long", "POST", "/registered-models/create",
     {"json": {"name": "x", "tags": [{"key": "k", "value": "v" * 5001}]}}),
    ("body-too-large", "POST", "/registered-models/create", {"content": b" " * (2 << 20)}),
    ("version-not-number", "GET", "/model-versions/get", {"params": {"name": "m", "version": "x"}}),
    ("max-results-not-int", "GET", "/registered-models/search", {"params": {"max_results": "x"}}),
    ("max-results-zero", "GET", "/registered-models/search", {"params": {"max_results": "0"}}),
    ("bad-filter", "GET", "/registered-models/search", {"params": {"filter": "name ~ 'x'"}}),
    ("bad-order", "GET", "/registered-models/search", {"params": {"order_by": "nope"}}),
    ("bad-page-token", "GET", "/registered-models/search", {"params": {"page_token": "x"}}),
    ("bad-stage", "POST", "/model-versions/transition-stage",
     {"json": {"name": "m", "version": "1", "stage": "Prod"}}),
    ("bool-as-string", "POST", "/model-versions/transition-stage",
     {"json": {"name": "m", "version": "1", "stage": "Staging",
               "archive_existing_versions": "yes"}}),
    ("bad-alias", "POST", "/registered-models/alias",
     {"json": {"name": "m", "alias": "Not Valid", "version": "1"}}),
    ("unknown-endpoint", "GET", "/registered-models/list", {}),
    ("wrong-method", "DELETE", "/registered-models/get", {}),
    ("artifact-path-outside", "PUT", "-artifacts/artifacts/../etc/passwd", {"content": b"x"}),
]  # fmt: skip


async def test_bad_input_gets_a_clean_mlflow_error_and_changes_nothing(
    http_base_url: str, admin_token: str, migrated_database_url: str
) -> None:
    headers = {"authorization": f"Bearer {admin_token}"}
    async with httpx.AsyncClient(base_url=http_base_url, headers=headers, timeout=30) as http:
        created = await http.post(f"{API}/registered-models/create", json={"name": "m"})
        assert created.status_code == 200
        before = await snapshot(migrated_database_url)
        for label, method, path, kwargs in CASES:
            response = await http.request(method, f"{API}{path}", **kwargs)
            assert 400 <= response.status_code < 500, (label, response.status_code, response.text)
            body = response.json()
            assert set(body) == {"error_code", "message"}, label
            assert body["error_code"] in (
                "INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST", "ENDPOINT_NOT_FOUND",
            ), label  # fmt: skip
            assert "Traceback" not in body["message"], label
    assert await snapshot(migrated_database_url) == before
