"""The data a run seeds and the four calls it measures, each as `await op(worker)`.

Every call is built so that it always succeeds, at any concurrency, for as long as it runs:

* GetModelVersion: a random version (1..N) of the seeded model.
* CreateModelVersion: a version with the seeded shape on one shared model (every client
  contends for the same per-model counter row, as concurrent pipelines of one model do), each
  with a fresh request_id as AIP-155 advises.
* CreateModelVersion on own models: the same, but each client on a model of its own, as many
  teams' pipelines are; nothing is shared but the database (and the audit log's counter).
* ListModelVersions: the first page of 50 of the seeded model, filter
  `metrics.accuracy >= 0.5` (about half of the versions match, so every page is full).
* TransitionModelVersionStage: each worker owns its own versions of a separate model and
  moves them STAGING -> ARCHIVED -> STAGING ... (their first move is DEVELOPMENT -> STAGING).
  Owned, so no two clients race for a row; never PRODUCTION, which holds one version per model.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc

from modelregistry.v1 import (
    model_pb2,
    model_version_pb2,
    registry_service_pb2,
    registry_service_pb2_grpc,
)

Op = Callable[[int], Awaitable[None]]

LIST_MODEL = "bench-list"
CREATE_MODEL = "bench-create"
STAGE_MODEL = "bench-stage"
LIST_FILTER = "metrics.accuracy >= 0.5"
LIST_PAGE_SIZE = 50
TIMEOUT_S = 30.0

_STAGING = model_version_pb2.STAGE_STAGING
_ARCHIVED = model_version_pb2.STAGE_ARCHIVED


@dataclass(frozen=True)
class SeedPlan:
    versions: int = 300  # of LIST_MODEL, read by Get and List
    stage_versions_per_worker: int = 4  # of STAGE_MODEL, per transition worker
    max_workers: int = 8
    seed: int = 7


def version_payload(rng: random.Random, index: int) -> model_version_pb2.ModelVersion:
    """A version as a training pipeline registers one: lineage, parameters, metrics, labels."""
    accuracy = rng.random()
    return model_version_pb2.ModelVersion(
        description=f"nightly fine-tune #{index}",
        lineage=model_version_pb2.Lineage(
            run_id=f"run-{index:06d}",
            source=model_version_pb2.SourceCode(
                repository_uri="https://git.example.com/ml/llm.git",
                commit=f"{rng.getrandbits(160):040x}",
                entry_point="train.py",
            ),
        ),
        parameters={
            "learning_rate": f"{rng.choice((1e-5, 3e-5, 1e-4)):g}",
            "batch_size": str(rng.choice((16, 32, 64))),
            "epochs": str(rng.randint(1, 5)),
            "optimizer": "adamw",
            "seed": str(index),
        },
        metrics={
            "accuracy": accuracy,
            "f1": max(0.0, accuracy - rng.random() * 0.1),
            "loss": rng.uniform(0.05, 2.0),
            "latency_ms": rng.uniform(5, 50),
        },
        labels={"team": "nlp", "dataset": rng.choice(("v1", "v2", "v3"))},
    )


async def seed(stub: registry_service_pb2_grpc.RegistryServiceAsyncStub, plan: SeedPlan) -> None:
    """Create the models and the versions Get, List and Transition use."""
    rng = random.Random(plan.seed)
    own_models = [own_create_model(worker) for worker in range(plan.max_workers)]
    for model_id in (LIST_MODEL, CREATE_MODEL, STAGE_MODEL, *own_models):
        await stub.CreateModel(
            registry_service_pb2.CreateModelRequest(
                model_id=model_id,
                model=model_pb2.Model(description="benchmark", owner="bench"),
            ),
            timeout=TIMEOUT_S,
        )
    stage_count = plan.stage_versions_per_worker * plan.max_workers
    payloads = [(LIST_MODEL, version_payload(rng, i)) for i in range(plan.versions)]
    payloads += [(STAGE_MODEL, version_payload(rng, i)) for i in range(stage_count)]
    queue = iter(payloads)

    async def creator() -> None:
        # Numbers follow commit order, not list order; only the counts per model matter here.
        for model_id, payload in queue:
            await stub.CreateModelVersion(
                registry_service_pb2.CreateModelVersionRequest(
                    parent=f"models/{model_id}", model_version=payload
                ),
                timeout=TIMEOUT_S,
            )

    await asyncio.gather(*(creator() for _ in range(plan.max_workers)))


def own_create_model(worker: int) -> str:
    return f"{CREATE_MODEL}-{worker}"


@dataclass
class Workloads:
    stub: registry_service_pb2_grpc.RegistryServiceAsyncStub
    plan: SeedPlan
    rng: random.Random = field(default_factory=lambda: random.Random(11))
    # Per transition worker: its versions' current stages, and which one moves next.
    _stages: dict[int, int] = field(default_factory=dict)
    _turn: dict[int, int] = field(default_factory=dict)
    _create_index: int = 0

    def ops(self) -> dict[str, Op]:
        return {
            "GetModelVersion": self.get_version,
            "CreateModelVersion": self.create_version,
            "CreateModelVersion on own models": self.create_version_on_own_model,
            "ListModelVersions": self.list_versions,
            "TransitionModelVersionStage": self.transition,
        }

    async def get_version(self, worker: int) -> None:
        number = self.rng.randint(1, self.plan.versions)
        await self.stub.GetModelVersion(
            registry_service_pb2.GetModelVersionRequest(
                name=f"models/{LIST_MODEL}/versions/{number}"
            ),
            timeout=TIMEOUT_S,
        )

    async def create_version(self, worker: int) -> None:
        self._create_index += 1
        # Building the payload is timed with the call: any caller pays it, and it is small.
        await self.stub.CreateModelVersion(
            registry_service_pb2.CreateModelVersionRequest(
                parent=f"models/{CREATE_MODEL}",
                model_version=version_payload(self.rng, self._create_index),
                request_id=str(uuid.uuid4()),
            ),
            timeout=TIMEOUT_S,
        )

    async def create_version_on_own_model(self, worker: int) -> None:
        self._create_index += 1
        await self.stub.CreateModelVersion(
            registry_service_pb2.CreateModelVersionRequest(
                parent=f"models/{own_create_model(worker)}",
                model_version=version_payload(self.rng, self._create_index),
                request_id=str(uuid.uuid4()),
            ),
            timeout=TIMEOUT_S,
        )

    async def list_versions(self, worker: int) -> None:
        response = await self.stub.ListModelVersions(
            registry_service_pb2.ListModelVersionsRequest(
                parent=f"models/{LIST_MODEL}", page_size=LIST_PAGE_SIZE, filter=LIST_FILTER
            ),
            timeout=TIMEOUT_S,
        )
        if len(response.model_versions) != LIST_PAGE_SIZE:
            raise AssertionError(
                f"expected a full page of {LIST_PAGE_SIZE}, got {len(response.model_versions)}"
            )

    async def transition(self, worker: int) -> None:
        per_worker = self.plan.stage_versions_per_worker
        turn = self._turn.get(worker, 0)
        self._turn[worker] = turn + 1
        number = worker * per_worker + turn % per_worker + 1
        target = _ARCHIVED if self._stages.get(number) == _STAGING else _STAGING
        name = f"models/{STAGE_MODEL}/versions/{number}"
        try:
            response = await self.stub.TransitionModelVersionStage(
                registry_service_pb2.TransitionModelVersionStageRequest(
                    name=name, stage=target, reason="benchmark"
                ),
                timeout=TIMEOUT_S,
            )
        except grpc.aio.AioRpcError:
            # The move may or may not have happened (a deadline): learn the stage, then fail.
            current = await self.stub.GetModelVersion(
                registry_service_pb2.GetModelVersionRequest(name=name), timeout=TIMEOUT_S
            )
            self._stages[number] = current.stage
            raise
        self._stages[number] = response.model_version.stage
