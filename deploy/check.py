"""Offline checks of the deploy files: Dockerfile, compose.yaml, k8s manifests, .dockerignore.

Docker and cluster tools do not run where `make lint` runs, so this reads the files with
pyyaml and tomllib, compares them with the code (`modelregistry.config.Settings`,
`[project.scripts]`, the dev pins in pyproject.toml) and prints one line per problem. The
generic checks are left to tools made for them, all offline and pinned in the `dev` extra:
kubernetes-validate (the manifests against the Kubernetes API schemas, strictly, so an unknown
field is an error), hadolint (Dockerfile lint) and pathspec (.dockerignore matching).

    python deploy/check.py [REPO_ROOT]      # exit 0 when clean, 1 otherwise

`check(repo_root)` returns the problems as a list, for tests.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes_validate
import pathspec
import yaml

# Settings a container cannot run without (they have no usable default).
SERVE_REQUIRED = ("database_url", "s3_endpoint", "s3_access_key", "s3_secret_key")
MIGRATE_REQUIRED = ("database_url",)
# Proto toolchain the image's build stage must pin exactly as pyproject.toml does.
PROTO_TOOLS = ("grpcio-tools", "mypy-protobuf")
PINNED_PACKAGES = (*PROTO_TOOLS, "googleapis-common-protos")
# Paths that must never reach the build context (local state and generated code).
MUST_IGNORE = (".venv/bin/python", ".modelreg/pg/PG_VERSION", "third_party/google/api/x.proto")
PLACEHOLDER = "REPLACE_ME"
ENV_NAME = re.compile(r"\bMODELREG_[A-Z0-9_]+\b")
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")
# The oldest and newest Kubernetes whose API schemas the pinned kubernetes-validate holds.
KUBERNETES_VERSIONS = ("1.25", "1.37")

Report = Callable[[str], None]


def _reporter(problems: list[str], where: str) -> Report:
    def report(message: str) -> None:
        problems.append(f"{where}: {message}")

    return report


# --------------------------------------------------------------------------- project facts


@dataclass
class Project:
    root: Path
    settings: dict[str, str]  # MODELREG_X -> field name
    scripts: set[str]
    pins: dict[str, str]  # normalised package name -> pinned version
    python_minor: str | None
    proto_outputs: list[str]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def load_settings(root: Path) -> dict[str, str]:
    try:
        from modelregistry.config import Settings
    except ImportError:
        sys.path.insert(0, str(root / "src"))
        from modelregistry.config import Settings
    return {"MODELREG_" + f.name.upper(): f.name for f in dataclasses.fields(Settings)}


def load_project(root: Path) -> Project:
    data = tomllib.loads((root / "pyproject.toml").read_text())
    project = data.get("project", {})
    requirements: list[str] = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        requirements.extend(extra)
    pins: dict[str, str] = {}
    for req in requirements:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*==\s*([^\s;,]+)\s*", req)
        if m:
            pins[_norm(m.group(1))] = m.group(2)
    m = re.search(r">=\s*(\d+\.\d+)", project.get("requires-python", ""))
    outputs = []
    for proto in sorted((root / "protos").rglob("*.proto")):
        rel = proto.relative_to(root / "protos").with_suffix("")
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi"):
            outputs.append(f"src/{rel}{suffix}")
    return Project(
        root=root,
        settings=load_settings(root),
        scripts=set(project.get("scripts", {})),
        pins=pins,
        python_minor=m.group(1) if m else None,
        proto_outputs=outputs,
    )


def env_name(field_name: str) -> str:
    return "MODELREG_" + field_name.upper()


# --------------------------------------------------------------------------- ignore files


def dockerignore_spec(text: str) -> pathspec.PathSpec:
    """Docker's .dockerignore rules: Go filepath.Match with `**`, each pattern matched from the
    context root (unlike git, where a pattern without `/` matches at any depth), the last
    matching pattern winning and excluding a directory's contents too."""
    patterns = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = "!" if line.startswith("!") else ""
        patterns.append(f"{negate}/{line.lstrip('!').lstrip('/')}")
    return pathspec.GitIgnoreSpec.from_lines(patterns)


def _read_ignore(path: Path, *, gitignore: bool = False) -> pathspec.PathSpec:
    text = path.read_text() if path.is_file() else ""
    return (
        pathspec.GitIgnoreSpec.from_lines(text.splitlines())
        if gitignore
        else dockerignore_spec(text)
    )


# --------------------------------------------------------------------------- Dockerfile


@dataclass
class Instruction:
    line: int
    keyword: str
    args: str

    def exec_form(self) -> list[str] | None:
        if self.args.startswith("["):
            try:
                value = json.loads(self.args)
            except json.JSONDecodeError:
                return None
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return value
        return None


@dataclass
class Stage:
    name: str | None
    base: str
    line: int
    body: list[Instruction] = field(default_factory=list)

    def of(self, keyword: str) -> list[Instruction]:
        return [i for i in self.body if i.keyword == keyword]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage], dict[str, str]]:
    """Returns (global ARG defaults, stages, every ARG default in the file)."""
    instructions: list[Instruction] = []
    buf: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction are dropped
        if not buf:
            start = number
        if stripped.endswith("\\"):
            buf.append(stripped[:-1])
            continue
        buf.append(stripped)
        joined = " ".join(part.strip() for part in buf if part.strip())
        buf = []
        keyword, _, args = joined.partition(" ")
        instructions.append(Instruction(start, keyword.upper(), args.strip()))
    global_args: dict[str, str] = {}
    all_args: dict[str, str] = {}
    stages: list[Stage] = []
    for ins in instructions:
        if ins.keyword == "ARG":
            name, _, default = ins.args.partition("=")
            all_args[name.strip()] = default.strip().strip("\"'")
            if not stages:
                global_args[name.strip()] = default.strip().strip("\"'")
                continue
        if ins.keyword == "FROM":
            words = [w for w in ins.args.split() if not w.startswith("--")]
            alias = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            stages.append(Stage(alias, words[0] if words else "", ins.line))
        elif stages:
            stages[-1].body.append(ins)
    return global_args, stages, all_args


def substitute(text: str, values: Mapping[str, str]) -> str:
    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(3)
        if name in values:
            return values[name]
        return m.group(2) or ""

    return re.sub(r"\$\{(\w+)(?::?[-=]([^}]*))?\}|\$(\w+)", repl, text)


def image_tag_problem(image: str) -> str | None:
    """Why `image` is not pinned to a tag or digest, or None."""
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"image {image!r} has no tag (it means :latest); pin a version"
    if last.rsplit(":", 1)[1] == "latest":
        return f"image {image!r} uses :latest; pin a version"
    return None


def parse_env_instruction(args: str) -> dict[str, str]:
    tokens = shlex.split(args)
    if len(tokens) >= 2 and "=" not in tokens[0]:  # legacy `ENV KEY value`
        return {tokens[0]: " ".join(tokens[1:])}
    return dict(token.split("=", 1) for token in tokens if "=" in token)


@dataclass
class ImageFacts:
    """What the runtime image gives every container started from it."""

    env: dict[str, str] = field(default_factory=dict)
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    exposed: set[int] = field(default_factory=set)


def check_dockerfile(project: Project, problems: list[str]) -> ImageFacts:
    root = project.root
    rel = "deploy/Dockerfile"
    path = root / rel
    facts = ImageFacts()
    if not path.is_file():
        problems.append(f"{rel}: missing")
        return facts

    def bad(line: int, message: str) -> None:
        problems.append(f"{rel}:{line}: {message}")

    global_args, stages, all_args = parse_dockerfile(path.read_text())
    if len(stages) < 2:
        bad(1, "expected a multi-stage build (a build stage and a runtime stage)")
    if not stages:
        return facts
    names = {s.name for s in stages if s.name}
    for stage in stages:
        image = substitute(stage.base, global_args)
        if image in names:
            continue
        if problem := image_tag_problem(image):
            bad(stage.line, f"FROM: {problem}")
        repo, _, tag = image.partition(":")
        if (
            repo.endswith("python")
            and project.python_minor
            and not tag.startswith(project.python_minor)
        ):
            bad(stage.line, f"FROM {image}: pyproject requires Python {project.python_minor}")

    dockerignore = _read_ignore(root / ".dockerignore")
    gitignore = _read_ignore(root / ".gitignore", gitignore=True)
    for stage in stages:
        for ins in stage.of("COPY") + stage.of("ADD"):
            _check_copy(ins, root, dockerignore, gitignore, bad)

    runs = [(s, i) for s in stages for i in s.of("RUN")]
    run_text = {id(i): substitute(i.args, all_args) for _, i in runs}
    proto = [
        (s, i)
        for s, i in runs
        if re.search(r"\bmake\b[^;&|]*\bproto\b|grpc_tools\.protoc", run_text[id(i)])
    ]
    wheel = [(s, i) for s, i in runs if re.search(r"pip\s+wheel|-m\s+build\b", run_text[id(i)])]
    if not proto:
        bad(
            1,
            "no RUN generates the gRPC code (`make proto`); the image would lack modelregistry.v1",
        )
    if not wheel:
        bad(1, "no RUN builds the wheel (`pip wheel` or `python -m build`)")
    if proto and wheel and (proto[0][1].line > wheel[0][1].line or proto[0][0] is not wheel[0][0]):
        bad(wheel[0][1].line, "the wheel is built before (or apart from) the proto generation")

    all_runs = " ".join(run_text.values())
    for package in PINNED_PACKAGES:
        found = re.findall(rf"(?i)\b{re.escape(package)}==([A-Za-z0-9_.+!-]+)", all_runs)
        want = project.pins.get(package)
        if not found and package in PROTO_TOOLS:
            bad(1, f"{package} is not installed with a pinned version (pyproject has =={want})")
        for version in found:
            if want and version != want:
                bad(1, f"{package}=={version} differs from pyproject.toml's =={want}")

    final = stages[-1]
    for ins in final.of("RUN"):
        text = run_text[id(ins)]
        if re.search(r"\[[^\]]*\b(embedded|dev)\b[^\]]*\]", text) or re.search(
            r"grpcio-tools|mypy-protobuf|\bbuf\b", text
        ):
            bad(ins.line, "the runtime stage installs build/dev/embedded packages")
    users = final.of("USER")
    if not users:
        bad(final.line, "the runtime stage sets no USER: the server would run as root")
    elif users[-1].args.split(":")[0] in ("root", "0"):
        bad(users[-1].line, "the runtime stage runs as root")

    for ins in final.of("ENV"):
        facts.env.update(parse_env_instruction(ins.args))
    for ins in final.of("EXPOSE"):
        for exposed in ins.args.split():
            facts.exposed.add(int(exposed.split("/")[0]))
    entry = final.of("ENTRYPOINT")
    if not entry or entry[-1].exec_form() is None:
        bad(final.line, 'the runtime stage needs an exec-form ENTRYPOINT, e.g. ["modelreg"]')
    else:
        facts.entrypoint = entry[-1].exec_form() or []
        if not facts.entrypoint or facts.entrypoint[0] not in project.scripts:
            bad(
                entry[-1].line,
                f"ENTRYPOINT {facts.entrypoint} is not a [project.scripts] command "
                f"({', '.join(sorted(project.scripts))})",
            )
    cmd = final.of("CMD")
    if cmd:
        facts.cmd = cmd[-1].exec_form() or shlex.split(cmd[-1].args)
    health = final.of("HEALTHCHECK")
    if not health or health[-1].args.upper().startswith("NONE"):
        bad(final.line, "the runtime stage has no HEALTHCHECK")
    elif "grpc_health" not in health[-1].args:
        bad(health[-1].line, "HEALTHCHECK should call grpc.health.v1 (grpc_health)")

    listen = facts.env.get(env_name("listen"))
    ports = {
        "MODELREG_LISTEN": _listen_port(listen) if listen else None,
        "MODELREG_METRICS_PORT": _int(facts.env.get(env_name("metrics_port"))),
    }
    for var, port in ports.items():
        if port is None:
            bad(final.line, f"the runtime stage does not set {var}")
        elif port and port not in facts.exposed:
            bad(final.line, f"{var} port {port} is not EXPOSEd")
    if listen and _listen_host(listen) in ("127.0.0.1", "localhost", "::1", "[::1]"):
        bad(final.line, f"MODELREG_LISTEN={listen} is unreachable from outside the container")
    return facts


def _check_copy(
    ins: Instruction,
    root: Path,
    dockerignore: pathspec.PathSpec,
    gitignore: pathspec.PathSpec,
    bad: Callable[[int, str], None],
) -> None:
    words = ins.exec_form() or shlex.split(ins.args)
    if any(w.startswith("--from") for w in words):
        return
    sources = [w for w in words if not w.startswith("--")][:-1]
    for source in sources:
        if "://" in source:
            continue
        matches = list(root.glob(source.lstrip("/"))) if source not in (".", "./") else [root]
        if not matches:
            bad(ins.line, f"{ins.keyword} source {source!r} does not exist in the repository")
            continue
        for match in matches:
            for file in _files(match):
                relative = file.relative_to(root).as_posix()
                if dockerignore.match_file(relative) and not gitignore.match_file(relative):
                    bad(ins.line, f"{ins.keyword} needs {relative}, but .dockerignore excludes it")
                    return


def _files(path: Path) -> Iterator[Path]:
    if path.is_file():
        yield path
    elif path.is_dir():
        yield from (p for p in sorted(path.rglob("*")) if p.is_file())


def check_dockerignore(project: Project, problems: list[str]) -> None:
    path = project.root / ".dockerignore"
    if not path.is_file():
        problems.append(
            ".dockerignore: missing: the build context would include .venv and generated code"
        )
        return
    rules = dockerignore_spec(path.read_text())
    samples = [*MUST_IGNORE, *project.proto_outputs]
    samples += sorted({str(Path(o).parent / ".generated") for o in project.proto_outputs})
    for sample in samples:
        if not rules.match_file(sample):
            problems.append(f".dockerignore: does not exclude {sample}")


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _listen_port(listen: str) -> int | None:
    return _int(listen.rsplit(":", 1)[1]) if ":" in listen else None


def _listen_host(listen: str) -> str:
    return listen.rsplit(":", 1)[0]


# --------------------------------------------------------------------------- settings


def check_settings(
    env: Mapping[str, str], required: Iterable[str], project: Project, report: Report
) -> None:
    """The container's effective env has every required setting and passes validation."""
    for name in required:
        var = env_name(name)
        if var not in project.settings:
            report(
                f"required setting {name!r} is no longer a Settings field; update deploy/check.py"
            )
        elif not env.get(var):
            report(f"{var} is not provided (required)")
    from modelregistry.config import ConfigError, Settings

    known = {k: v for k, v in env.items() if k in project.settings}
    try:
        Settings.from_env(known)
    except ConfigError as exc:
        report(f"settings do not validate: {exc}")


def check_unknown_names(project: Project, files: Iterable[Path], problems: list[str]) -> None:
    for path in files:
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for name in ENV_NAME.findall(line):
                if name not in project.settings:
                    problems.append(
                        f"{path.relative_to(project.root).as_posix()}:{number}: "
                        f"{name} is not a Settings field in modelregistry/config.py"
                    )


# --------------------------------------------------------------------------- YAML


def load_yaml(path: Path, root: Path, problems: list[str]) -> list[Any]:
    rel = path.relative_to(root).as_posix()
    try:
        return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problems.append(f"{rel}{where}: not valid YAML: {getattr(exc, 'problem', exc)}")
        return []


def compose_value(text: Any) -> str:
    """A compose string with `${VAR:-default}` replaced by its default and `$$` by `$`."""
    value = str(text).replace("$$", "\0")
    value = re.sub(r"\$\{(\w+)(?::?[-?]([^}]*))?\}", lambda m: m.group(2) or "", value)
    return value.replace("\0", "$")


def _compose_env(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(str(item).partition("=")[::2] for item in env)
    return {str(k): compose_value("" if v is None else v) for k, v in env.items()}


def check_compose(project: Project, facts: ImageFacts, problems: list[str]) -> None:
    rel = "deploy/compose.yaml"
    path = project.root / rel
    if not path.is_file():
        problems.append(f"{rel}: missing")
        return
    docs = load_yaml(path, project.root, problems)
    if not docs:
        return
    services = docs[0].get("services") if isinstance(docs[0], dict) else None
    if not isinstance(services, dict) or not services:
        problems.append(f"{rel}: no services")
        return
    ours: set[str] = set()
    our_images: set[str] = set()
    for name, service in services.items():
        build = service.get("build")
        if build is None:
            continue
        context = build if isinstance(build, str) else build.get("context", ".")
        dockerfile = (
            "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        )
        context_dir = (path.parent / context).resolve()
        if context_dir != project.root.resolve():
            problems.append(f"{rel}: {name}: build context must be the repository root")
        if (context_dir / dockerfile).resolve() == (project.root / "deploy/Dockerfile").resolve():
            ours.add(name)
            if "image" in service:
                our_images.add(compose_value(service["image"]))
    ours |= {n for n, s in services.items() if compose_value(s.get("image", "")) in our_images}

    for name, service in services.items():
        where = f"{rel}: service {name}"
        image = compose_value(service.get("image", ""))
        if image and name not in ours and (problem := image_tag_problem(image)):
            problems.append(f"{where}: {problem}")
        elif not image and "build" not in service:
            problems.append(f"{where}: has neither image nor build")
        _check_depends_on(name, service, services, problems, where)
        env = _compose_env(service)
        if name not in ours:
            continue
        command = service.get("command", facts.cmd)
        command = shlex.split(command) if isinstance(command, str) else [str(c) for c in command]
        effective = {**facts.env, **env}
        report = _reporter(problems, where)
        if command[:1] == ["serve"]:
            check_settings(effective, SERVE_REQUIRED, project, report)
            port = _listen_port(effective.get(env_name("listen"), ""))
            published = {str(p).rsplit(":", 1)[-1].split("/")[0] for p in service.get("ports", [])}
            if port is not None and str(port) not in published:
                report(f"gRPC port {port} (MODELREG_LISTEN) is not published")
        elif command[:1] == ["migrate"]:
            check_settings(effective, MIGRATE_REQUIRED, project, report)


def _check_depends_on(
    name: str,
    service: Mapping[str, Any],
    services: Mapping[str, Any],
    problems: list[str],
    where: str,
) -> None:
    depends = service.get("depends_on") or {}
    if isinstance(depends, list):
        depends = {d: {"condition": "service_started"} for d in depends}
    for dep, spec in depends.items():
        target = services.get(dep)
        if target is None:
            problems.append(f"{where}: depends_on unknown service {dep!r}")
            continue
        condition = (spec or {}).get("condition", "service_started")
        # `restart: no` marks a one-shot job (unquoted, YAML reads it as false).
        one_shot = target.get("restart") in ("no", False)
        healthcheck = target.get("healthcheck") or {}
        # A service built from deploy/Dockerfile inherits its HEALTHCHECK.
        has_health = not healthcheck.get("disable") and ("test" in healthcheck or "build" in target)
        if condition == "service_healthy" and not has_health:
            problems.append(f"{where}: waits for {dep} to be healthy, but {dep} has no healthcheck")
        elif one_shot and condition != "service_completed_successfully":
            problems.append(
                f"{where}: should wait for one-shot {dep} with service_completed_successfully"
            )
        elif not one_shot and has_health and condition != "service_healthy":
            problems.append(f"{where}: should wait for {dep} with condition service_healthy")


# --------------------------------------------------------------------------- Kubernetes


@dataclass
class K8sObject:
    file: str
    doc: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.doc.get("kind", ""))

    @property
    def name(self) -> str:
        return str((self.doc.get("metadata") or {}).get("name", ""))

    @property
    def where(self) -> str:
        return f"{self.file}: {self.kind}/{self.name}"


def pod_template(obj: K8sObject) -> dict[str, Any] | None:
    spec = obj.doc.get("spec") or {}
    if obj.kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    template = spec.get("template")
    return template if isinstance(template, dict) else None


def _labels_match(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_k8s(project: Project, facts: ImageFacts, problems: list[str]) -> None:
    folder = project.root / "deploy/k8s"
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    if not files:
        problems.append("deploy/k8s: no manifests")
        return
    objects: list[K8sObject] = []
    for path in files:
        rel = path.relative_to(project.root).as_posix()
        for doc in load_yaml(path, project.root, problems):
            if not isinstance(doc, dict):
                problems.append(f"{rel}: a document is not a mapping")
                continue
            obj = K8sObject(rel, doc)
            missing = [k for k in ("apiVersion", "kind") if not doc.get(k)]
            if not obj.name:
                missing.append("metadata.name")
            if missing:
                problems.append(f"{rel}: {obj.kind or 'object'} lacks {', '.join(missing)}")
                continue
            if (doc.get("metadata") or {}).get("namespace"):
                problems.append(
                    f"{obj.where}: sets metadata.namespace; keep manifests namespace-agnostic"
                )
            objects.append(obj)
    before = len(problems)
    for obj in objects:
        _check_schema(obj, problems)
    if len(problems) > before:
        return  # the checks below read fields as the API schema types them

    data: dict[tuple[str, str], dict[str, str]] = {}
    for obj in objects:
        if obj.kind in ("ConfigMap", "Secret"):
            values = {**(obj.doc.get("data") or {}), **(obj.doc.get("stringData") or {})}
            data[(obj.kind, obj.name)] = {str(k): str(v) for k, v in values.items()}
            if obj.kind == "Secret":
                for key, value in values.items():
                    if PLACEHOLDER not in str(value):
                        problems.append(
                            f"{obj.where}: {key} is not a {PLACEHOLDER} placeholder; "
                            "never commit real credentials"
                        )

    templates = [
        (obj, t) for obj in objects if obj.kind in WORKLOAD_KINDS if (t := pod_template(obj))
    ]
    for obj in objects:
        if obj.kind in WORKLOAD_KINDS and pod_template(obj) is None:
            problems.append(f"{obj.where}: has no pod template")
    for obj, template in templates:
        _check_workload(obj, template, data, facts, project, problems)
    for obj in objects:
        if obj.kind == "Service":
            _check_service(obj, templates, problems)
        elif obj.kind == "PodDisruptionBudget":
            _check_pdb(obj, templates, problems)


def _check_schema(obj: K8sObject, problems: list[str]) -> None:
    """The object against the API schema of each Kubernetes version, unknown fields refused."""
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(obj.doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            field_path = ".".join(str(part) for part in exc.absolute_path) or "(document)"
            problems.append(
                f"{obj.where}: Kubernetes {version} schema: {field_path}: {exc.message}"
            )
            return
        except kubernetes_validate.SchemaNotFoundError:
            api_version = obj.doc.get("apiVersion")
            problems.append(
                f"{obj.where}: Kubernetes {version} has no kind {obj.kind} in {api_version}"
            )
            return


def _check_workload(
    obj: K8sObject,
    template: dict[str, Any],
    data: Mapping[tuple[str, str], Mapping[str, str]],
    facts: ImageFacts,
    project: Project,
    problems: list[str],
) -> None:
    labels = (template.get("metadata") or {}).get("labels") or {}
    spec = obj.doc.get("spec") or {}
    if obj.kind in ("Deployment", "StatefulSet", "DaemonSet"):
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        if not selector:
            problems.append(f"{obj.where}: spec.selector.matchLabels is empty")
        for key, value in selector.items():
            if labels.get(key) != value:
                problems.append(
                    f"{obj.where}: selector {key}={value} does not match the pod template's labels"
                )
    pod = template.get("spec") or {}
    pod_security = pod.get("securityContext") or {}
    for container in pod.get("containers") or []:
        where = f"{obj.where}: container {container.get('name')}"
        report = _reporter(problems, where)
        if problem := image_tag_problem(str(container.get("image", ""))):
            report(problem)
        if not container.get("resources"):
            report("has no resources (requests/limits)")
        security = container.get("securityContext") or {}
        if not (security.get("runAsNonRoot") or pod_security.get("runAsNonRoot")):
            report("does not set securityContext.runAsNonRoot: true")
        ports = container.get("ports") or []
        numbers = {p.get("containerPort") for p in ports}
        names = {p.get("name") for p in ports if p.get("name")}
        for probe_name in ("startupProbe", "readinessProbe", "livenessProbe"):
            probe = container.get(probe_name)
            if probe:
                _check_probe(probe_name, probe, numbers, names, report)
        env = _container_env(container, data, report)
        args = [str(a) for a in (container.get("args") or container.get("command") or [])]
        if not args and str(container.get("image", "")).rsplit("/", 1)[-1].startswith(
            "modelregistry"
        ):
            args = facts.cmd
        effective = {**facts.env, **env}
        if args[:1] == ["serve"]:
            check_settings(effective, SERVE_REQUIRED, project, report)
            for var in ("listen", "metrics_port"):
                raw = effective.get(env_name(var), "")
                port = _listen_port(raw) if var == "listen" else _int(raw)
                if port and port not in numbers:
                    report(f"{env_name(var)} port {port} is not a containerPort")
            for probe_name in ("readinessProbe", "livenessProbe"):
                if not (container.get(probe_name) or {}).get("grpc"):
                    report(f"{probe_name} should be a native grpc probe")
            _check_grace(pod, container, effective, report)
        elif args[:1] == ["migrate"]:
            check_settings(effective, MIGRATE_REQUIRED, project, report)


def _check_probe(
    name: str, probe: Mapping[str, Any], numbers: set[Any], names: set[Any], report: Report
) -> None:
    for kind in ("grpc", "httpGet", "tcpSocket"):
        action = probe.get(kind)
        if not isinstance(action, dict):
            continue
        port = action.get("port")
        if kind == "grpc" and not isinstance(port, int):
            report(f"{name}: grpc probes need a numeric port, got {port!r}")
        elif port not in numbers and port not in names:
            report(f"{name}: port {port!r} is not one of the container's ports")


def _container_env(
    container: Mapping[str, Any], data: Mapping[tuple[str, str], Mapping[str, str]], report: Report
) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            ref = source.get(key)
            if ref is None:
                continue
            values = data.get((kind, str(ref.get("name"))))
            if values is None:
                if not ref.get("optional"):
                    report(f"envFrom {kind} {ref.get('name')!r} is not in deploy/k8s")
                continue
            env.update({f"{source.get('prefix', '')}{k}": v for k, v in values.items()})
    for item in container.get("env") or []:
        name = str(item.get("name"))
        if "value" in item:
            env[name] = str(item["value"])
            continue
        value_from = item.get("valueFrom") or {}
        for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
            ref = value_from.get(key)
            if ref is None:
                continue
            values = data.get((kind, str(ref.get("name"))))
            if values is None or str(ref.get("key")) not in values:
                if not ref.get("optional"):
                    report(f"{name}: {kind} {ref.get('name')!r} has no key {ref.get('key')!r}")
                continue
            env[name] = values[str(ref.get("key"))]
    return env


def _check_grace(
    pod: Mapping[str, Any], container: Mapping[str, Any], env: Mapping[str, str], report: Report
) -> None:
    grace = float(pod.get("terminationGracePeriodSeconds", 30))
    try:
        shutdown = float(env.get(env_name("shutdown_grace_s"), "10"))
    except ValueError:
        return
    pre_stop = (((container.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {}).get(
        "command"
    ) or []
    sleep = float(pre_stop[1]) if len(pre_stop) == 2 and pre_stop[0] == "sleep" else 0.0
    if grace <= shutdown + sleep:
        report(
            f"terminationGracePeriodSeconds {grace:g} must exceed the preStop sleep ({sleep:g}) "
            f"plus MODELREG_SHUTDOWN_GRACE_S ({shutdown:g}), or calls are cut off"
        )


def _check_service(
    obj: K8sObject, templates: list[tuple[K8sObject, dict[str, Any]]], problems: list[str]
) -> None:
    spec = obj.doc.get("spec") or {}
    selector = spec.get("selector") or {}
    matched = [
        t
        for _, t in templates
        if _labels_match(selector, (t.get("metadata") or {}).get("labels") or {})
    ]
    if not matched:
        problems.append(f"{obj.where}: selector {selector} matches no pod template in deploy/k8s")
        return
    ports: set[Any] = set()
    for template in matched:
        for container in (template.get("spec") or {}).get("containers") or []:
            for port in container.get("ports") or []:
                ports.update({port.get("containerPort"), port.get("name")})
    for port in spec.get("ports") or []:
        target = port.get("targetPort", port.get("port"))
        if target not in ports:
            problems.append(
                f"{obj.where}: targetPort {target!r} is not a port of the selected pods"
            )


def _check_pdb(
    obj: K8sObject, templates: list[tuple[K8sObject, dict[str, Any]]], problems: list[str]
) -> None:
    spec = obj.doc.get("spec") or {}
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    matched = [
        w
        for w, t in templates
        if _labels_match(selector, (t.get("metadata") or {}).get("labels") or {})
    ]
    if not matched:
        problems.append(f"{obj.where}: selector {selector} matches no pod template in deploy/k8s")
    for workload in matched:
        replicas = (workload.doc.get("spec") or {}).get("replicas", 1)
        minimum = spec.get("minAvailable")
        if isinstance(minimum, int) and minimum >= replicas:
            problems.append(
                f"{obj.where}: minAvailable {minimum} >= {workload.kind}/{workload.name} replicas "
                f"{replicas}: node drains would never finish"
            )


# --------------------------------------------------------------------------- Dockerfile lint


def lint_dockerfile(root: Path, problems: list[str]) -> None:
    """hadolint's findings on deploy/Dockerfile, one problem each."""
    dockerfile = root / "deploy" / "Dockerfile"
    beside_python = Path(sys.executable).parent / "hadolint"
    hadolint = str(beside_python) if beside_python.is_file() else shutil.which("hadolint")
    if hadolint is None:
        problems.append("deploy/Dockerfile: hadolint is not installed (the `dev` extra has it)")
        return
    result = subprocess.run(
        [hadolint, "--no-color", "--format", "json", str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        findings = json.loads(result.stdout or "[]")
    except json.JSONDecodeError:
        findings = None
    if not isinstance(findings, list) or (result.returncode != 0 and not findings):
        detail = (result.stderr or result.stdout).strip().splitlines()[:1]
        problems.append(
            f"deploy/Dockerfile: hadolint failed: {' '.join(detail) or result.returncode}"
        )
        return
    for finding in findings:
        problems.append(
            f"deploy/Dockerfile:{finding.get('line')}: hadolint {finding.get('code')} "
            f"({finding.get('level')}): {finding.get('message')}"
        )


# --------------------------------------------------------------------------- entry points


def check(repo_root: Path) -> list[str]:
    """Every problem found in the deploy files under `repo_root`, one line each."""
    root = repo_root.resolve()
    problems: list[str] = []
    project = load_project(root)
    check_dockerignore(project, problems)
    facts = check_dockerfile(project, problems)
    lint_dockerfile(root, problems)
    check_compose(project, facts, problems)
    check_k8s(project, facts, problems)
    deploy = root / "deploy"
    texts = [deploy / "Dockerfile", deploy / "README.md", *sorted(deploy.rglob("*.y*ml"))]
    check_unknown_names(project, texts, problems)
    return list(dict.fromkeys(problems))


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent
    problems = check(root)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"deploy/check.py: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print("deploy/check.py: deploy files ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
