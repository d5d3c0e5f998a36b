"""Running MLflow's own client against the test's server.

The client is synchronous (requests) and the server runs in the test's event loop, so every
client call runs in a worker thread. Its credentials come from MLFLOW_TRACKING_TOKEN, as in
users' environments.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import mlflow.tracking._model_registry.utils
import mlflow.tracking._tracking_service.utils
import pytest

T = TypeVar("T")

# MLflow's client knobs: no retry storm against a refusal, no waiting on slow backoff.
MLFLOW_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    # The tracking side of these tests is a local file store (the registry is the server).
    "MLFLOW_ALLOW_FILE_STORE": "true",
}


@pytest.fixture(autouse=True)
def mlflow_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for key, value in MLFLOW_ENV.items():
        monkeypatch.setenv(key, value)
    # A tracking store of its own per test (runs for register_model live there, not here).
    tracking = tmp_path_factory.mktemp("mlruns") / "store"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.as_uri())
    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(key, raising=False)
    # mlflow.set_registry_uri/set_tracking_uri keep the URI in a module global that outranks
    # the environment; a test's call must not point the next test at a server that is gone.
    monkeypatch.setattr(mlflow.tracking._model_registry.utils, "_registry_uri", None)
    monkeypatch.setattr(mlflow.tracking._tracking_service.utils, "_tracking_uri", None)


@contextmanager
def token_env(token: str) -> Iterator[None]:
    """MLFLOW_TRACKING_TOKEN for the calls inside (the client reads it on every request);
    none for an empty token."""
    previous = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        os.environ["MLFLOW_TRACKING_TOKEN"] = token
    else:
        os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
        else:
            os.environ["MLFLOW_TRACKING_TOKEN"] = previous


async def in_thread(token: str, work: Callable[[], T]) -> T:
    """Run `work` (MLflow client calls) in a thread with `token` as the caller's token."""

    def run() -> T:
        with token_env(token):
            return work()

    return await asyncio.to_thread(run)
