"""deploy/check.py passes on the real deploy files and catches each kind of breakage."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
CHECK_PY = REPO / "deploy" / "check.py"


def _load_checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_check", CHECK_PY)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


checker = _load_checker()


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """The files the checker reads, copied so a test can break them."""
    root = tmp_path / "repo"
    shutil.copytree(
        REPO,
        root,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", ".modelreg", "third_party", "__pycache__", "*.egg-info", ".*_cache"
        ),
    )
    return root


def _edit(root: Path, rel: str, old: str, new: str) -> None:
    path = root / rel
    text = path.read_text()
    assert old in text, f"the mutation no longer applies: {old!r} is not in {rel}"
    path.write_text(text.replace(old, new, 1))


def test_real_deploy_files_pass() -> None:
    assert checker.check(REPO) == []


def test_unmodified_copy_passes(repo_copy: Path) -> None:
    assert checker.check(repo_copy) == []


BROKEN = [
    pytest.param(
        "deploy/compose.yaml",
        "MODELREG_S3_ENDPOINT: minio:9000",
        "MODELREG_S3_ENDPONT: minio:9000",
        "MODELREG_S3_ENDPONT is not a Settings field",
        id="compose-unknown-variable",
    ),
    pytest.param(
        "deploy/compose.yaml",
        "      MODELREG_S3_SECRET_KEY: ${MINIO_ROOT_PASSWORD:-modelreg-dev-password}\n",
        "",
        "MODELREG_S3_SECRET_KEY is not provided",
        id="compose-missing-required-setting",
    ),
    pytest.param(
        "deploy/compose.yaml",
        "      migrate:\n        condition: service_completed_successfully",
        "      migrate:\n        condition: service_started",
        "one-shot migrate",
        id="compose-serve-does-not-wait-for-migrate",
    ),
    pytest.param(
        "deploy/compose.yaml",
        "postgresql://${POSTGRES_USER",
        "mysql://${POSTGRES_USER",
        "must start with postgresql://",
        id="compose-settings-do-not-validate",
    ),
    pytest.param(
        "deploy/compose.yaml",
        "minio/mc:RELEASE.2025-04-16T18-13-26Z",
        "minio/mc",
        "has no tag",
        id="compose-unpinned-image",
    ),
    pytest.param(
        "deploy/k8s/configmap.yaml",
        'MODELREG_LOG_LEVEL: "info"',
        'MODELREG_VERBOSITY: "info"',
        "MODELREG_VERBOSITY is not a Settings field",
        id="k8s-unknown-variable",
    ),
    pytest.param(
        "deploy/k8s/deployment.yaml",
        "  selector:\n    matchLabels:\n      app.kubernetes.io/name: modelregistry",
        "  selector:\n    matchLabels:\n      app.kubernetes.io/name: model-registry",
        "selector app.kubernetes.io/name=model-registry does not match",
        id="k8s-selector-mismatch",
    ),
    pytest.param(
        "deploy/k8s/deployment.yaml",
        "          readinessProbe:\n            grpc:\n              port: 50051",
        "          readinessProbe:\n            grpc:\n              port: 50052",
        "readinessProbe: port 50052 is not one of the container's ports",
        id="k8s-probe-port-mismatch",
    ),
    pytest.param(
        "deploy/k8s/deployment.yaml",
        "                  key: MODELREG_S3_SECRET_KEY",
        "                  key: S3_SECRET_KEY",
        "has no key 'S3_SECRET_KEY'",
        id="k8s-secret-key-missing",
    ),
    pytest.param(
        "deploy/k8s/deployment.yaml",
        "terminationGracePeriodSeconds: 40",
        "terminationGracePeriodSeconds: 20",
        "terminationGracePeriodSeconds 20 must exceed",
        id="k8s-grace-shorter-than-shutdown",
    ),
    pytest.param(
        "deploy/k8s/service.yaml",
        "      targetPort: grpc",
        "      targetPort: http",
        "targetPort 'http' is not a port",
        id="k8s-service-target-port",
    ),
    pytest.param(
        "deploy/k8s/pdb.yaml",
        "minAvailable: 1",
        "minAvailable: 2",
        "node drains would never finish",
        id="k8s-pdb-blocks-drains",
    ),
    pytest.param(
        "deploy/k8s/secret.example.yaml",
        '"REPLACE_ME_SECRET_KEY"',
        '"hunter2"',
        "is not a REPLACE_ME placeholder",
        id="k8s-secret-with-real-value",
    ),
    pytest.param(
        "deploy/k8s/pdb.yaml",
        "kind: PodDisruptionBudget\nmetadata:\n  name: modelregistry",
        "kind: PodDisruptionBudget\nmetadata:\n  labels2: {}",
        "lacks metadata.name",
        id="k8s-missing-name",
    ),
    pytest.param(
        "deploy/k8s/service.yaml",
        "  type: ClusterIP",
        "  type: [ClusterIP",
        "not valid YAML",
        id="k8s-invalid-yaml",
    ),
    pytest.param(
        "deploy/Dockerfile",
        "ARG PYTHON_IMAGE=python:3.11-slim",
        "ARG PYTHON_IMAGE=python:latest",
        "uses :latest",
        id="dockerfile-from-latest",
    ),
    pytest.param(
        "deploy/Dockerfile",
        "ARG PYTHON_IMAGE=python:3.11-slim",
        "ARG PYTHON_IMAGE=python:3.12-slim",
        "pyproject requires Python 3.11",
        id="dockerfile-wrong-python",
    ),
    pytest.param(
        "deploy/Dockerfile",
        "USER 10001:10001\n",
        "",
        "sets no USER",
        id="dockerfile-runs-as-root",
    ),
    pytest.param(
        "deploy/Dockerfile",
        "RUN make -o .venv/.installed proto \\\n    && ",
        "RUN ",
        "generates the gRPC code",
        id="dockerfile-no-proto-generation",
    ),
    pytest.param(
        "deploy/Dockerfile",
        "COPY protos ./protos",
        "COPY proto ./protos",
        "COPY source 'proto' does not exist",
        id="dockerfile-copy-missing-source",
    ),
    pytest.param(
        "deploy/Dockerfile",
        "ARG GRPCIO_TOOLS_VERSION=1.85.1",
        "ARG GRPCIO_TOOLS_VERSION=1.80.0",
        "grpcio-tools==1.80.0 differs from pyproject.toml's ==1.85.1",
        id="dockerfile-pin-drift",
    ),
    pytest.param(
        "deploy/Dockerfile",
        'ENTRYPOINT ["modelreg"]',
        'ENTRYPOINT ["modelregistry"]',
        "is not a [project.scripts] command",
        id="dockerfile-wrong-entrypoint",
    ),
    pytest.param(
        "deploy/Dockerfile",
        "EXPOSE 50051 9090",
        "EXPOSE 50051",
        "MODELREG_METRICS_PORT port 9090 is not EXPOSEd",
        id="dockerfile-metrics-port-not-exposed",
    ),
    pytest.param(
        "deploy/Dockerfile",
        "--find-links=/wheels modelregistry ",
        "--find-links=/wheels 'modelregistry[embedded]' ",
        "installs build/dev/embedded packages",
        id="dockerfile-runtime-installs-extras",
    ),
    pytest.param(
        ".dockerignore",
        "\n.venv\n",
        "\n",
        ".dockerignore: does not exclude .venv/bin/python",
        id="dockerignore-keeps-venv",
    ),
    pytest.param(
        ".dockerignore",
        "src/modelregistry/v1/.generated\n",
        "",
        "does not exclude src/modelregistry/v1/.generated",
        id="dockerignore-keeps-proto-stamp",
    ),
    pytest.param(
        ".dockerignore",
        "tests\n",
        "tests\nsrc/modelregistry/storage\n",
        "but .dockerignore excludes it",
        id="dockerignore-excludes-needed-source",
    ),
    pytest.param(
        "deploy/k8s/deployment.yaml",
        "livenessProbe:",
        "livenessProbee:",
        "Additional properties are not allowed ('livenessProbee' was unexpected)",
        id="k8s-misspelt-field",
    ),
    pytest.param(
        "deploy/k8s/deployment.yaml",
        "replicas: 2",
        'replicas: "2"',
        "schema: spec.replicas: '2' is not of type 'integer'",
        id="k8s-wrong-type",
    ),
    pytest.param(
        "deploy/Dockerfile",
        "# hadolint ignore=DL3008\n",
        "",
        "deploy/Dockerfile:23: hadolint DL3008",
        id="dockerfile-lint",
    ),
]


@pytest.mark.parametrize(("rel", "old", "new", "expected"), BROKEN)
def test_broken_copy_fails(repo_copy: Path, rel: str, old: str, new: str, expected: str) -> None:
    _edit(repo_copy, rel, old, new)
    problems = checker.check(repo_copy)
    assert any(expected in p for p in problems), problems


def test_command_line_exits_nonzero_with_one_line_per_problem(repo_copy: Path) -> None:
    _edit(repo_copy, "deploy/compose.yaml", "MODELREG_LOG_FORMAT: json", "MODELREG_LOGFMT: json")
    _edit(repo_copy, "deploy/Dockerfile", "USER 10001:10001\n", "")
    result = subprocess.run(
        [sys.executable, str(CHECK_PY), str(repo_copy)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert any("deploy/compose.yaml:" in line and "MODELREG_LOGFMT" in line for line in lines)
    assert any("deploy/Dockerfile:" in line and "USER" in line for line in lines)
    assert lines[-1] == "deploy/check.py: 2 problem(s)"


def test_dockerignore_matches_like_docker() -> None:
    rules = checker.dockerignore_spec("**/__pycache__\nsrc/*/v1/*_pb2*.py\n.venv\n!keep.txt\n*.txt")
    assert rules.match_file("src/modelregistry/__pycache__/x.pyc")
    assert rules.match_file("src/modelregistry/v1/model_pb2_grpc.py")
    assert not rules.match_file("src/modelregistry/v1/__init__.py")
    assert rules.match_file(".venv/lib/python3.11/site.py")
    assert not rules.match_file("src/.venv-notes")
    assert rules.match_file("keep.txt")  # the later `*.txt` wins, as in Docker
    assert not rules.match_file("docs/notes.txt")  # Docker matches from the context root
