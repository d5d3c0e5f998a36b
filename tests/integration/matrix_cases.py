"""The authorization table: every RPC the server registers, who may call it, what it needs to
exist first, and for a change the audit event it must write.

Shared by test_authorization_matrix.py (every RPC x every kind of caller) and
test_audit_completeness.py (every change writes exactly one event; a failure writes none).

A case is one row: an RPC (a method of `modelregistry.server.SERVICE_DESCRIPTORS`), the role it
needs and where (everywhere, or on the model the call touches), a setup that makes what the
call needs through an admin channel, the request, and for a change the audit action and
resource plus a variant of the call that fails. Each setup works on a model of its own
(`Run.model`), so cases and repeated runs of one case never touch each other's data.

Roles are taken from the contract (the .proto comments) and from the `ctx.require` calls in
src/modelregistry/service/; where the two disagree the table says which it follows.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import itertools
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message
from integration import helpers
from support.server import authenticated_channel, running_server
from support.stores import StoreEndpoints, unique_name
from support.stubs import (
    ArtifactServiceAsyncStub,
    CollaborationServiceAsyncStub,
    PolicyServiceAsyncStub,
    RegistryServiceAsyncStub,
)

from modelregistry.domain.access import Role
from modelregistry.server import GRPC_OPTIONS, SERVICE_DESCRIPTORS
from modelregistry.service.auth import issue_token, revoke_token
from modelregistry.storage.database import Database
from modelregistry.v1 import access_pb2, audit_pb2, model_pb2, policy_pb2
from modelregistry.v1 import access_service_pb2 as access_pb
from modelregistry.v1 import artifact_service_pb2 as art_pb
from modelregistry.v1 import audit_service_pb2 as audit_pb
from modelregistry.v1 import collaboration_pb2 as co
from modelregistry.v1 import collaboration_service_pb2 as collab_pb
from modelregistry.v1 import model_version_pb2 as mv
from modelregistry.v1 import policy_service_pb2 as policy_pb
from modelregistry.v1 import registry_service_pb2 as reg_pb

CALL_TIMEOUT_S = 15.0
# A server stream that is allowed must deliver its first message within this.
STREAM_FIRST_MESSAGE_S = 5.0
OK = grpc.StatusCode.OK
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
PERMISSION_DENIED = grpc.StatusCode.PERMISSION_DENIED
NOT_FOUND = grpc.StatusCode.NOT_FOUND
FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
ALREADY_EXISTS = grpc.StatusCode.ALREADY_EXISTS
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT

# RPC names that change something: a case of one of these must say which audit event it
# writes. A method named otherwise may still be a change (the table decides).
MUTATING_VERBS = (
    "Create", "Update", "Delete", "Set", "Transition", "Start", "Abort", "Write", "Revoke",
    "Resolve",
)  # fmt: skip

# Bookkeeping that no RPC writes.
UNSNAPSHOTTED_TABLES = frozenset({"schema_migrations"})


# -- the RPCs the server registers -----------------------------------------------------------


def rpc_key(method: MethodDescriptor) -> str:
    return f"{method.containing_service.name}/{method.name}"


# "RegistryService/CreateModel" -> its descriptor, for every service the server registers.
METHODS: dict[str, MethodDescriptor] = {
    rpc_key(method): method for service in SERVICE_DESCRIPTORS for method in service.methods
}


# -- callers ------------------------------------------------------------------------------


class Kind(enum.Enum):
    """Who calls: no token, three kinds of dead token, and live tokens of each role."""

    NONE = "no token"
    BAD = "bad token"
    EXPIRED = "expired token"
    REVOKED = "revoked token"
    VIEWER = "viewer"
    EDITOR = "editor"
    APPROVER = "approver"
    ADMIN = "admin"
    # A viewer everywhere that is an editor on another model only.
    EDITOR_ELSEWHERE = "editor on another model only"
    # A viewer everywhere that holds the case's required role on the target model only:
    # allowed where the role is needed on the model, refused where it is needed everywhere.
    GRANTED_ON_MODEL = "required role on this model only"


KINDS = tuple(Kind)
DEAD_KINDS = frozenset({Kind.NONE, Kind.BAD, Kind.EXPIRED, Kind.REVOKED})
# Each live kind's role everywhere.
GLOBAL_ROLE = {
    Kind.VIEWER: Role.VIEWER,
    Kind.EDITOR: Role.EDITOR,
    Kind.APPROVER: Role.APPROVER,
    Kind.ADMIN: Role.ADMIN,
    Kind.EDITOR_ELSEWHERE: Role.VIEWER,
    Kind.GRANTED_ON_MODEL: Role.VIEWER,
}
PRINCIPALS = {
    Kind.VIEWER: "matrix-viewer",
    Kind.EDITOR: "matrix-editor",
    Kind.APPROVER: "matrix-approver",
    Kind.ADMIN: "matrix-admin",
    Kind.EDITOR_ELSEWHERE: "matrix-editor-elsewhere",
    # Admins, so that only their being dead refuses them.
    Kind.EXPIRED: "matrix-expired",
    Kind.REVOKED: "matrix-revoked",
}
ELSEWHERE_MODEL = "matrix-elsewhere"
# Comments under test are written by this kind: their author.
AUTHOR = Kind.VIEWER


class Scope(enum.Enum):
    EVERYWHERE = "everywhere"
    MODEL = "on the model"


@dataclass(frozen=True)
class Need:
    """What a call needs: a role everywhere or on the model it touches (a grant there counts),
    or, for a comment, being its author or an admin on its model."""

    role: Role
    scope: Scope
    author_or_admin: bool = False

    def __str__(self) -> str:
        if self.author_or_admin:
            return "the author, or admin on the model"
        return f"{self.role.label} {self.scope.value}"

    def granted_on_model(self) -> Role:
        """The role a GRANTED_ON_MODEL caller holds on the target model."""
        return Role.ADMIN if self.author_or_admin else self.role

    def role_of(self, kind: Kind) -> Role:
        role = GLOBAL_ROLE[kind]
        if kind is Kind.GRANTED_ON_MODEL and self.scope is Scope.MODEL:
            role = max(role, self.granted_on_model())
        return role

    def permits(self, kind: Kind) -> bool:
        if kind in DEAD_KINDS:
            return False
        if self.author_or_admin:
            return kind is AUTHOR or self.role_of(kind) >= Role.ADMIN
        return self.role_of(kind) >= self.role

    def expected_code(self, kind: Kind) -> grpc.StatusCode:
        if kind in DEAD_KINDS:
            return UNAUTHENTICATED
        return OK if self.permits(kind) else PERMISSION_DENIED

    def least_kind(self) -> Kind:
        """The permitted live kind with the lowest role everywhere."""
        for kind in (Kind.VIEWER, Kind.EDITOR, Kind.APPROVER, Kind.ADMIN):
            if self.permits(kind):
                return kind
        raise AssertionError(f"nobody may call with need {self}")


ANYONE = Need(Role.VIEWER, Scope.EVERYWHERE)  # any valid token: every principal is a viewer
VIEWER_ON_MODEL = Need(Role.VIEWER, Scope.MODEL)
EDITOR_ON_MODEL = Need(Role.EDITOR, Scope.MODEL)
APPROVER_ON_MODEL = Need(Role.APPROVER, Scope.MODEL)
ADMIN_ON_MODEL = Need(Role.ADMIN, Scope.MODEL)
ADMIN_EVERYWHERE = Need(Role.ADMIN, Scope.EVERYWHERE)
AUTHOR_OR_ADMIN = Need(Role.VIEWER, Scope.MODEL, author_or_admin=True)


# -- what one setup made ----------------------------------------------------------------------


@dataclass
class Run:
    """The world one setup made for one call: a model of its own and what lives under it."""

    model: str
    version: str = ""
    upload_id: str = ""
    artifact: str = ""
    data: bytes = b""
    comment: str = ""
    flag: str = ""
    deployment: str = ""
    token: str = ""  # tokens/{id}
    principal: str = ""  # a principal the case grants to or makes tokens for

    @property
    def model_name(self) -> str:
        return f"models/{self.model}"

    @property
    def missing_model(self) -> str:
        return f"models/{self.model}-missing"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


Setup = Callable[["Harness", Run], Awaitable[None]]
Request = Callable[[Run], Any]


@dataclass(frozen=True)
class Audited:
    """The one audit event a successful call writes."""

    action: str
    # The canonical name of the resource changed, from the run and the call's response.
    resource: Callable[[Run, Any], str]


@dataclass(frozen=True)
class Failing:
    """A variant of the call that fails (run after the successful call, on the same run)."""

    request: Request
    code: grpc.StatusCode


@dataclass(frozen=True)
class Case:
    rpc: str  # "Service/Method"
    need: Need
    request: Request
    setup: Setup | None = None
    audited: Audited | None = None
    failing: Failing | None = None
    variant: str = ""
    # Server streams: how many messages to read before cancelling (None: to the end).
    take: int | None = None

    @property
    def id(self) -> str:
        return f"{self.rpc}({self.variant})" if self.variant else self.rpc

    @property
    def method(self) -> str:
        return self.rpc.split("/", 1)[1]

    @property
    def mutating(self) -> bool:
        return self.audited is not None

    def run_prefix(self) -> str:
        short = (self.method + self.variant).lower()
        return "".join(c for c in short if c.isalnum())[:40]


# -- setups (through the admin channel) --------------------------------------------------------


async def model(h: Harness, run: Run) -> None:
    await h.registry.CreateModel(
        reg_pb.CreateModelRequest(model_id=run.model, model=model_pb2.Model(owner="matrix"))
    )


async def version(h: Harness, run: Run) -> None:
    """The model with version 1 in DEVELOPMENT."""
    await model(h, run)
    created = await h.registry.CreateModelVersion(
        reg_pb.CreateModelVersionRequest(
            parent=run.model_name,
            model_version=mv.ModelVersion(description="v1", metrics={"accuracy": 0.9}),
        )
    )
    run.version = created.name


async def staging_version(h: Harness, run: Run) -> None:
    await version(h, run)
    await h.registry.TransitionModelVersionStage(
        reg_pb.TransitionModelVersionStageRequest(name=run.version, stage=mv.STAGE_STAGING)
    )


async def production_version(h: Harness, run: Run) -> None:
    await staging_version(h, run)
    await h.registry.TransitionModelVersionStage(
        reg_pb.TransitionModelVersionStageRequest(name=run.version, stage=mv.STAGE_PRODUCTION)
    )


async def two_versions(h: Harness, run: Run) -> None:
    await version(h, run)
    await h.registry.CreateModelVersion(
        reg_pb.CreateModelVersionRequest(
            parent=run.model_name,
            model_version=mv.ModelVersion(description="v2", metrics={"accuracy": 0.95}),
        )
    )


async def aliased_version(h: Harness, run: Run) -> None:
    await staging_version(h, run)
    await h.registry.SetModelVersionAlias(
        reg_pb.SetModelVersionAliasRequest(name=run.version, alias="champion")
    )


PROTECTED_ALIAS = "production"


async def protected_alias_policy(h: Harness, run: Run) -> None:
    """A STAGING version of a model whose policy protects the alias `production` (and asks
    nothing else of a version)."""
    await staging_version(h, run)
    await PolicyServiceAsyncStub(h.admin).UpdatePromotionPolicy(
        policy_pb.UpdatePromotionPolicyRequest(
            promotion_policy=policy_pb2.PromotionPolicy(
                name=policy_name(run), protected_aliases=[PROTECTED_ALIAS]
            )
        )
    )


async def protected_alias_held(h: Harness, run: Run) -> None:
    await protected_alias_policy(h, run)
    await h.registry.SetModelVersionAlias(
        reg_pb.SetModelVersionAliasRequest(name=run.version, alias=PROTECTED_ALIAS)
    )


async def open_upload(h: Harness, run: Run) -> None:
    """Version 1 with an ACTIVE upload session of `run.data` (declared size and digest)."""
    await version(h, run)
    run.data = os.urandom(1024)  # fresh bytes: a known digest would skip the transfer
    session = await h.artifacts.StartUpload(start_upload_request(run))
    run.upload_id = session.upload_id
    run.artifact = session.artifact


async def artifact(h: Harness, run: Run) -> None:
    """Version 1 (DEVELOPMENT) holding one committed artifact."""
    await open_upload(h, run)
    response = await h.artifacts.Write(iter(write_requests(run)))
    run.artifact = response.artifact.name
    await h.settle()


async def comment_by_author(h: Harness, run: Run) -> None:
    await version(h, run)
    created = await h.collaboration_as(AUTHOR).CreateComment(
        collab_pb.CreateCommentRequest(parent=run.version, comment=co.Comment(body="first"))
    )
    run.comment = created.name


async def flag(h: Harness, run: Run) -> None:
    await version(h, run)
    raised = await h.collaboration.CreateFlag(
        collab_pb.CreateFlagRequest(
            parent=run.version,
            flag=co.Flag(severity=co.FLAG_SEVERITY_HIGH, reason="drifts on Mondays"),
        )
    )
    run.flag = raised.name


async def deployment(h: Harness, run: Run) -> None:
    await version(h, run)
    recorded = await h.collaboration.CreateDeployment(
        collab_pb.CreateDeploymentRequest(
            parent=run.version,
            deployment=co.Deployment(environment="prod", endpoint="https://serving.example/m"),
        )
    )
    run.deployment = recorded.name


async def principal_with_token(h: Harness, run: Run) -> None:
    """A principal of this run (a viewer everywhere) holding one live token."""
    run.principal = f"{run.model}-user"
    issued = await issue_token(h.db, run.principal, Role.VIEWER)
    run.token = f"tokens/{issued.token_id}"


async def principal_with_grant(h: Harness, run: Run) -> None:
    """A principal of this run that is an editor on the run's model."""
    run.principal = f"{run.model}-user"
    issued = await issue_token(h.db, run.principal, Role.EDITOR, model=run.model)
    run.token = f"tokens/{issued.token_id}"


async def version_with_data(h: Harness, run: Run) -> None:
    await version(h, run)
    run.data = os.urandom(1024)


def start_upload_request(run: Run) -> art_pb.StartUploadRequest:
    return art_pb.StartUploadRequest(
        parent=run.version, path="weights.bin", size_bytes=len(run.data), sha256=run.sha256
    )


def write_requests(run: Run) -> list[art_pb.WriteRequest]:
    return [art_pb.WriteRequest(upload_id=run.upload_id, offset=0, data=run.data, finish=True)]


def policy_name(run: Run) -> str:
    return f"{run.model_name}/promotionPolicy"


DESCRIPTION_ONLY = FieldMask(paths=["description"])


def missing_version(run: Run) -> str:
    return f"{run.model_name}/versions/999"


def name_of(_: Run, response: Any) -> str:
    return str(response.name)


# -- the table ---------------------------------------------------------------------------------

R, A, C = "RegistryService", "ArtifactService", "CollaborationService"
AC, AU, P = "AccessService", "AuditService", "PolicyService"

REGISTRY_CASES = [
    Case(
        f"{R}/CreateModel",
        EDITOR_ON_MODEL,  # a grant on a model that does not exist yet lets a team create it
        lambda r: reg_pb.CreateModelRequest(model_id=r.model, model=model_pb2.Model(owner="m")),
        audited=Audited("CreateModel", lambda r, _: r.model_name),
        failing=Failing(lambda r: reg_pb.CreateModelRequest(model_id=r.model), ALREADY_EXISTS),
    ),
    Case(f"{R}/GetModel", ANYONE, lambda r: reg_pb.GetModelRequest(name=r.model_name), model),
    Case(f"{R}/ListModels", ANYONE, lambda r: reg_pb.ListModelsRequest(), model),
    Case(
        f"{R}/UpdateModel",
        EDITOR_ON_MODEL,
        lambda r: reg_pb.UpdateModelRequest(
            model=model_pb2.Model(name=r.model_name, description="changed"),
            update_mask=DESCRIPTION_ONLY,
        ),
        model,
        Audited("UpdateModel", lambda r, _: r.model_name),
        Failing(
            lambda r: reg_pb.UpdateModelRequest(
                model=model_pb2.Model(name=r.missing_model, description="changed"),
                update_mask=DESCRIPTION_ONLY,
            ),
            NOT_FOUND,
        ),
    ),
    Case(
        f"{R}/DeleteModel",
        ADMIN_ON_MODEL,
        lambda r: reg_pb.DeleteModelRequest(name=r.model_name),
        model,
        Audited("DeleteModel", lambda r, _: r.model_name),
        Failing(lambda r: reg_pb.DeleteModelRequest(name=r.model_name), NOT_FOUND),
    ),
    Case(
        f"{R}/CreateModelVersion",
        EDITOR_ON_MODEL,
        lambda r: reg_pb.CreateModelVersionRequest(parent=r.model_name),
        model,
        Audited("CreateModelVersion", name_of),
        Failing(lambda r: reg_pb.CreateModelVersionRequest(parent=r.missing_model), NOT_FOUND),
    ),
    Case(
        f"{R}/GetModelVersion",
        ANYONE,
        lambda r: reg_pb.GetModelVersionRequest(name=r.version),
        version,
    ),
    Case(
        f"{R}/ListModelVersions",
        ANYONE,
        lambda r: reg_pb.ListModelVersionsRequest(parent=r.model_name),
        version,
    ),
    Case(
        f"{R}/UpdateModelVersion",
        EDITOR_ON_MODEL,
        lambda r: reg_pb.UpdateModelVersionRequest(
            model_version=mv.ModelVersion(name=r.version, description="changed"),
            update_mask=DESCRIPTION_ONLY,
        ),
        version,
        Audited("UpdateModelVersion", lambda r, _: r.version),
        Failing(
            lambda r: reg_pb.UpdateModelVersionRequest(
                model_version=mv.ModelVersion(name=missing_version(r), description="changed"),
                update_mask=DESCRIPTION_ONLY,
            ),
            NOT_FOUND,
        ),
    ),
    Case(
        f"{R}/DeleteModelVersion",
        ADMIN_ON_MODEL,
        lambda r: reg_pb.DeleteModelVersionRequest(name=r.version),
        version,
        Audited("DeleteModelVersion", lambda r, _: r.version),
        Failing(lambda r: reg_pb.DeleteModelVersionRequest(name=r.version), NOT_FOUND),
    ),
    Case(
        f"{R}/TransitionModelVersionStage",
        EDITOR_ON_MODEL,  # a move other than to PRODUCTION
        lambda r: reg_pb.TransitionModelVersionStageRequest(name=r.version, stage=mv.STAGE_STAGING),
        version,
        Audited("TransitionModelVersionStage", lambda r, _: r.version),
        # Already in STAGING after the successful call.
        Failing(
            lambda r: reg_pb.TransitionModelVersionStageRequest(
                name=r.version, stage=mv.STAGE_STAGING
            ),
            FAILED_PRECONDITION,
        ),
        variant="to STAGING",
    ),
    Case(
        f"{R}/TransitionModelVersionStage",
        APPROVER_ON_MODEL,
        lambda r: reg_pb.TransitionModelVersionStageRequest(
            name=r.version, stage=mv.STAGE_PRODUCTION
        ),
        staging_version,
        Audited("TransitionModelVersionStage", lambda r, _: r.version),
        Failing(
            lambda r: reg_pb.TransitionModelVersionStageRequest(
                name=r.version, stage=mv.STAGE_PRODUCTION
            ),
            FAILED_PRECONDITION,
        ),
        variant="to PRODUCTION",
    ),
    Case(
        f"{R}/TransitionModelVersionStage",
        # Taking a version out of PRODUCTION is as consequential as putting one there.
        APPROVER_ON_MODEL,
        lambda r: reg_pb.TransitionModelVersionStageRequest(
            name=r.version, stage=mv.STAGE_ARCHIVED
        ),
        production_version,
        Audited("TransitionModelVersionStage", lambda r, _: r.version),
        Failing(
            lambda r: reg_pb.TransitionModelVersionStageRequest(
                name=r.version, stage=mv.STAGE_ARCHIVED
            ),
            FAILED_PRECONDITION,
        ),
        variant="out of PRODUCTION",
    ),
    Case(
        f"{R}/ListStageTransitions",
        ANYONE,
        lambda r: reg_pb.ListStageTransitionsRequest(parent=f"{r.model_name}/versions/-"),
        staging_version,
    ),
    Case(
        f"{R}/SetModelVersionAlias",
        EDITOR_ON_MODEL,
        lambda r: reg_pb.SetModelVersionAliasRequest(name=r.version, alias="champion"),
        version,
        # service/versions.py names the version that now holds the alias.
        Audited("SetModelVersionAlias", lambda r, _: r.version),
        Failing(
            lambda r: reg_pb.SetModelVersionAliasRequest(name=missing_version(r), alias="other"),
            NOT_FOUND,
        ),
    ),
    Case(
        f"{R}/DeleteModelVersionAlias",
        EDITOR_ON_MODEL,
        lambda r: reg_pb.DeleteModelVersionAliasRequest(model=r.model_name, alias="champion"),
        aliased_version,
        # service/versions.py names the version that lost the alias.
        Audited("DeleteModelVersionAlias", lambda r, _: r.version),
        Failing(
            lambda r: reg_pb.DeleteModelVersionAliasRequest(model=r.model_name, alias="champion"),
            NOT_FOUND,
        ),
    ),
    Case(
        f"{R}/SetModelVersionAlias",
        APPROVER_ON_MODEL,  # policy_service.proto: protected aliases need an approver
        lambda r: reg_pb.SetModelVersionAliasRequest(name=r.version, alias=PROTECTED_ALIAS),
        protected_alias_policy,
        Audited("SetModelVersionAlias", lambda r, _: r.version),
        Failing(
            lambda r: reg_pb.SetModelVersionAliasRequest(
                name=missing_version(r), alias=PROTECTED_ALIAS
            ),
            NOT_FOUND,
        ),
        variant="protected alias",
    ),
    Case(
        f"{R}/DeleteModelVersionAlias",
        APPROVER_ON_MODEL,
        lambda r: reg_pb.DeleteModelVersionAliasRequest(model=r.model_name, alias=PROTECTED_ALIAS),
        protected_alias_held,
        Audited("DeleteModelVersionAlias", lambda r, _: r.version),
        Failing(
            lambda r: reg_pb.DeleteModelVersionAliasRequest(
                model=r.model_name, alias=PROTECTED_ALIAS
            ),
            NOT_FOUND,
        ),
        variant="protected alias",
    ),
    Case(
        f"{R}/ListAliasChanges",
        ANYONE,
        lambda r: reg_pb.ListAliasChangesRequest(parent=r.model_name),
        aliased_version,
    ),
    Case(
        f"{R}/CompareModelVersions",
        ANYONE,
        lambda r: reg_pb.CompareModelVersionsRequest(
            names=[f"{r.model_name}/versions/1", f"{r.model_name}/versions/2"]
        ),
        two_versions,
    ),
    Case(
        f"{R}/ListModelHistory",
        ANYONE,
        lambda r: reg_pb.ListModelHistoryRequest(parent=r.model_name),
        aliased_version,
    ),
]

ARTIFACT_CASES = [
    Case(
        f"{A}/StartUpload",
        EDITOR_ON_MODEL,
        start_upload_request,
        version_with_data,
        Audited("StartUpload", lambda r, _: f"{r.version}/artifacts/weights.bin"),
        # An upload of that path is open now.
        Failing(start_upload_request, ALREADY_EXISTS),
    ),
    Case(
        f"{A}/Write",
        EDITOR_ON_MODEL,
        write_requests,
        open_upload,
        Audited("Write", lambda r, _: r.artifact),
        # The session is COMMITTED now.
        Failing(write_requests, FAILED_PRECONDITION),
    ),
    Case(
        f"{A}/QueryUpload",
        ANYONE,
        lambda r: art_pb.QueryUploadRequest(upload_id=r.upload_id),
        open_upload,
    ),
    Case(
        f"{A}/AbortUpload",
        EDITOR_ON_MODEL,
        lambda r: art_pb.AbortUploadRequest(upload_id=r.upload_id),
        open_upload,
        Audited("AbortUpload", lambda r, _: r.artifact),
        Failing(
            lambda r: art_pb.AbortUploadRequest(upload_id="00000000-0000-4000-8000-000000000000"),
            NOT_FOUND,
        ),
    ),
    Case(f"{A}/Download", ANYONE, lambda r: art_pb.DownloadRequest(name=r.artifact), artifact),
    Case(
        f"{A}/GetArtifact", ANYONE, lambda r: art_pb.GetArtifactRequest(name=r.artifact), artifact
    ),
    Case(
        f"{A}/GetArtifactDownloadUrl",
        # service/artifacts.py: viewer on the model (which every principal is, everywhere).
        VIEWER_ON_MODEL,
        lambda r: art_pb.GetArtifactDownloadUrlRequest(name=r.artifact),
        artifact,
    ),
    Case(
        f"{A}/ListArtifacts",
        ANYONE,
        lambda r: art_pb.ListArtifactsRequest(parent=r.version),
        artifact,
    ),
    Case(
        f"{A}/DeleteArtifact",
        # service/artifacts.py: editor on the model (the Role enum gives "deletes" to admin;
        # artifact_service.proto names no role: see the report).
        EDITOR_ON_MODEL,
        lambda r: art_pb.DeleteArtifactRequest(name=r.artifact),
        artifact,
        Audited("DeleteArtifact", lambda r, _: r.artifact),
        Failing(lambda r: art_pb.DeleteArtifactRequest(name=r.artifact), NOT_FOUND),
    ),
]


COLLABORATION_CASES = [
    Case(
        f"{C}/CreateComment",
        VIEWER_ON_MODEL,
        lambda r: collab_pb.CreateCommentRequest(parent=r.version, comment=co.Comment(body="hi")),
        version,
        Audited("CreateComment", name_of),
        Failing(
            lambda r: collab_pb.CreateCommentRequest(
                parent=missing_version(r), comment=co.Comment(body="hi")
            ),
            NOT_FOUND,
        ),
    ),
    Case(
        f"{C}/ListComments",
        ANYONE,
        lambda r: collab_pb.ListCommentsRequest(parent=r.version),
        comment_by_author,
    ),
    Case(
        f"{C}/DeleteComment",
        AUTHOR_OR_ADMIN,
        lambda r: collab_pb.DeleteCommentRequest(name=r.comment),
        comment_by_author,
        Audited("DeleteComment", lambda r, _: r.comment),
        Failing(lambda r: collab_pb.DeleteCommentRequest(name=r.comment), NOT_FOUND),
    ),
    Case(
        f"{C}/UpdateComment",
        AUTHOR_OR_ADMIN,
        lambda r: collab_pb.UpdateCommentRequest(comment=co.Comment(name=r.comment, body="edit")),
        comment_by_author,
        Audited("UpdateComment", lambda r, _: r.comment),
        Failing(
            lambda r: collab_pb.UpdateCommentRequest(
                comment=co.Comment(name=f"{r.version}/comments/999999", body="edit")
            ),
            NOT_FOUND,
        ),
    ),
    Case(
        f"{C}/CreateFlag",
        VIEWER_ON_MODEL,
        lambda r: collab_pb.CreateFlagRequest(
            parent=r.version, flag=co.Flag(severity=co.FLAG_SEVERITY_LOW, reason="odd")
        ),
        version,
        Audited("CreateFlag", name_of),
        Failing(
            lambda r: collab_pb.CreateFlagRequest(
                parent=missing_version(r),
                flag=co.Flag(severity=co.FLAG_SEVERITY_LOW, reason="odd"),
            ),
            NOT_FOUND,
        ),
    ),
    Case(f"{C}/ListFlags", ANYONE, lambda r: collab_pb.ListFlagsRequest(parent=r.version), flag),
    Case(
        f"{C}/ResolveFlag",
        EDITOR_ON_MODEL,
        lambda r: collab_pb.ResolveFlagRequest(name=r.flag, resolution="fixed"),
        flag,
        Audited("ResolveFlag", lambda r, _: r.flag),
        # Already RESOLVED.
        Failing(
            lambda r: collab_pb.ResolveFlagRequest(name=r.flag, resolution="again"),
            FAILED_PRECONDITION,
        ),
    ),
    Case(
        f"{C}/CreateDeployment",
        EDITOR_ON_MODEL,
        lambda r: collab_pb.CreateDeploymentRequest(
            parent=r.version,
            deployment=co.Deployment(environment="prod", endpoint="https://serving.example/m"),
        ),
        version,
        Audited("CreateDeployment", name_of),
        Failing(
            lambda r: collab_pb.CreateDeploymentRequest(
                parent=missing_version(r),
                deployment=co.Deployment(environment="prod", endpoint="https://serving.example"),
            ),
            NOT_FOUND,
        ),
    ),
    Case(
        f"{C}/ListDeployments",
        ANYONE,
        lambda r: collab_pb.ListDeploymentsRequest(parent=r.version),
        deployment,
    ),
    Case(
        f"{C}/UpdateDeploymentStatus",
        EDITOR_ON_MODEL,
        lambda r: collab_pb.UpdateDeploymentStatusRequest(
            name=r.deployment, status=co.DEPLOYMENT_STATUS_ACTIVE
        ),
        deployment,
        Audited("UpdateDeploymentStatus", lambda r, _: r.deployment),
        # Already ACTIVE.
        Failing(
            lambda r: collab_pb.UpdateDeploymentStatusRequest(
                name=r.deployment, status=co.DEPLOYMENT_STATUS_ACTIVE
            ),
            FAILED_PRECONDITION,
        ),
    ),
]


def new_principal(run: Run) -> str:
    return f"{run.model}-new"


def grant_resource(run: Run, _: Any) -> str:
    return f"principals/{run.principal}"


# access_service.proto: "Every method except GetCaller needs the admin role everywhere".
ACCESS_CASES = [
    Case(
        f"{AC}/CreateToken",
        ADMIN_EVERYWHERE,
        lambda r: access_pb.CreateTokenRequest(
            token=access_pb2.Token(principal=new_principal(r), description="matrix")
        ),
        audited=Audited("CreateToken", lambda _, response: str(response.token.name)),
        failing=Failing(
            lambda r: access_pb.CreateTokenRequest(token=access_pb2.Token(principal="not a name!")),
            INVALID_ARGUMENT,
        ),
    ),
    Case(f"{AC}/ListTokens", ADMIN_EVERYWHERE, lambda r: access_pb.ListTokensRequest()),
    Case(
        f"{AC}/RevokeToken",
        ADMIN_EVERYWHERE,
        lambda r: access_pb.RevokeTokenRequest(name=r.token),
        principal_with_token,
        Audited("RevokeToken", lambda r, _: r.token),
        # Already revoked.
        Failing(lambda r: access_pb.RevokeTokenRequest(name=r.token), FAILED_PRECONDITION),
    ),
    Case(
        f"{AC}/SetGrant",
        ADMIN_EVERYWHERE,
        lambda r: access_pb.SetGrantRequest(
            grant=access_pb2.Grant(
                principal=r.principal, model=r.model_name, role=access_pb2.ROLE_EDITOR
            )
        ),
        principal_with_token,
        Audited("SetGrant", grant_resource),
        # A principal without a token is unknown.
        Failing(
            lambda r: access_pb.SetGrantRequest(
                grant=access_pb2.Grant(
                    principal=new_principal(r), model=r.model_name, role=access_pb2.ROLE_EDITOR
                )
            ),
            NOT_FOUND,
        ),
    ),
    Case(
        f"{AC}/DeleteGrant",
        ADMIN_EVERYWHERE,
        lambda r: access_pb.DeleteGrantRequest(principal=r.principal, model=r.model_name),
        principal_with_grant,
        Audited("DeleteGrant", grant_resource),
        # The grant is gone now.
        Failing(
            lambda r: access_pb.DeleteGrantRequest(principal=r.principal, model=r.model_name),
            NOT_FOUND,
        ),
    ),
    Case(f"{AC}/ListGrants", ADMIN_EVERYWHERE, lambda r: access_pb.ListGrantsRequest()),
    Case(f"{AC}/GetCaller", ANYONE, lambda r: access_pb.GetCallerRequest()),
]

# audit_service.proto: "No method changes it. Any valid token may read."
AUDIT_CASES = [
    Case(
        f"{AU}/ListAuditEvents",
        ANYONE,
        lambda r: audit_pb.ListAuditEventsRequest(
            filter=audit_pb2.AuditEventFilter(resource=r.model_name)
        ),
        model,
    ),
    Case(
        f"{AU}/WatchEvents",
        ANYONE,
        # The setup's CreateModel is in the log already: the first message comes at once.
        lambda r: audit_pb.WatchEventsRequest(
            filter=audit_pb2.AuditEventFilter(resource=r.model_name)
        ),
        model,
        take=1,
    ),
]


POLICY_CASES = [
    Case(
        f"{P}/GetPromotionPolicy",
        ANYONE,
        lambda r: policy_pb.GetPromotionPolicyRequest(name=policy_name(r)),
        model,
    ),
    Case(
        f"{P}/UpdatePromotionPolicy",
        ADMIN_ON_MODEL,
        lambda r: policy_pb.UpdatePromotionPolicyRequest(
            promotion_policy=policy_pb2.PromotionPolicy(
                name=policy_name(r), required_approvals=1, protected_aliases=["production"]
            )
        ),
        model,
        Audited("UpdatePromotionPolicy", lambda r, _: policy_name(r)),
        Failing(
            lambda r: policy_pb.UpdatePromotionPolicyRequest(
                promotion_policy=policy_pb2.PromotionPolicy(
                    name=f"{r.missing_model}/promotionPolicy", required_approvals=1
                )
            ),
            NOT_FOUND,
        ),
    ),
    Case(
        f"{P}/CreateApproval",
        APPROVER_ON_MODEL,
        lambda r: policy_pb.CreateApprovalRequest(
            parent=r.version, approval=policy_pb2.Approval(comment="looks good")
        ),
        staging_version,
        Audited("CreateApproval", name_of),
        Failing(
            lambda r: policy_pb.CreateApprovalRequest(
                parent=missing_version(r), approval=policy_pb2.Approval(comment="looks good")
            ),
            NOT_FOUND,
        ),
    ),
    Case(
        f"{P}/ListApprovals",
        ANYONE,
        lambda r: policy_pb.ListApprovalsRequest(parent=r.version),
        staging_version,
    ),
]

CASES: tuple[Case, ...] = (
    *REGISTRY_CASES,
    *ARTIFACT_CASES,
    *COLLABORATION_CASES,
    *ACCESS_CASES,
    *AUDIT_CASES,
    *POLICY_CASES,
)
MUTATING_CASES = tuple(case for case in CASES if case.mutating)


def coverage_problems() -> list[str]:
    """RPCs the server registers without a case, and cases of RPCs it does not register."""
    problems = [
        f"{rpc} has no entry in the authorization table (tests/integration/matrix_cases.py)"
        for rpc in sorted(set(METHODS) - {case.rpc for case in CASES})
    ]
    problems += [
        f"{case.id} names an RPC the server does not register" for case in CASES
        if case.rpc not in METHODS
    ]  # fmt: skip
    ids = [case.id for case in CASES]
    problems += [f"{case_id} is in the table twice" for case_id in sorted(set(ids))
                 if ids.count(case_id) > 1]  # fmt: skip
    return problems


def audit_table_problems() -> list[str]:
    """Changes marked as reads, and changes without a failing variant."""
    problems = []
    for case in CASES:
        if case.method.startswith(MUTATING_VERBS) and not case.mutating:
            problems.append(
                f"{case.id} changes something (its name starts with a verb of change) but its "
                "entry is marked read-only: give it the audit event it writes"
            )
        if case.mutating and case.failing is None:
            problems.append(f"{case.id} changes something but its entry has no failing variant")
    return problems


# -- calling any RPC ---------------------------------------------------------------------------


@dataclass
class Outcome:
    code: grpc.StatusCode
    details: str = ""
    response: Any = None


def _serialize(message: Any) -> bytes:
    return bytes(message.SerializeToString())


async def invoke(channel: grpc.aio.Channel, case: Case, request: Any) -> Outcome:
    """Call the case's RPC on `channel` with `request` (a list of messages for a client
    stream); never raises for a status."""
    method = METHODS[case.rpc]
    path = f"/{method.containing_service.full_name}/{method.name}"
    response_class = message_factory.GetMessageClass(method.output_type)
    try:
        if method.server_streaming:
            return await _read_stream(
                channel.unary_stream(path, _serialize, response_class.FromString),
                request,
                case.take,
            )
        if method.client_streaming:
            streaming = channel.stream_unary(path, _serialize, response_class.FromString)
            response = await streaming(iter(request), timeout=CALL_TIMEOUT_S)
        else:
            unary = channel.unary_unary(path, _serialize, response_class.FromString)
            response = await unary(request, timeout=CALL_TIMEOUT_S)
    except grpc.aio.AioRpcError as error:
        return Outcome(error.code(), error.details() or "")
    return Outcome(OK, response=response)


async def _read_stream(
    multicallable: grpc.aio.UnaryStreamMultiCallable[Any, Message],
    request: Any,
    take: int | None,
) -> Outcome:
    call = multicallable(request, timeout=CALL_TIMEOUT_S)
    responses: list[Any] = []
    try:
        while take is None or len(responses) < take:
            try:
                message = await asyncio.wait_for(call.read(), STREAM_FIRST_MESSAGE_S)
            except TimeoutError:
                return Outcome(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    f"the stream sent no message within {STREAM_FIRST_MESSAGE_S} s",
                )
            if message is grpc.aio.EOF:
                break
            responses.append(message)
    finally:
        call.cancel()
    return Outcome(OK, response=responses)


# -- the server, its callers and its database ---------------------------------------------------


@dataclass(frozen=True)
class AuditEvent:
    sequence: int
    principal: str
    action: str
    resource: str

    def __str__(self) -> str:
        return f"#{self.sequence} {self.action} {self.resource} by {self.principal}"


@dataclass
class Harness:
    """One server on one database for a test module, with a channel per kind of caller."""

    db: Database
    conn: asyncpg.Connection
    target: str
    channels: dict[Kind, grpc.aio.Channel]
    tables: tuple[str, ...]
    _counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def admin(self) -> grpc.aio.Channel:
        return self.channels[Kind.ADMIN]

    @property
    def registry(self) -> RegistryServiceAsyncStub:
        return RegistryServiceAsyncStub(self.admin)

    @property
    def artifacts(self) -> ArtifactServiceAsyncStub:
        return ArtifactServiceAsyncStub(self.admin)

    @property
    def collaboration(self) -> CollaborationServiceAsyncStub:
        return CollaborationServiceAsyncStub(self.admin)

    def collaboration_as(self, kind: Kind) -> CollaborationServiceAsyncStub:
        return CollaborationServiceAsyncStub(self.channels[kind])

    def new_run(self, case: Case) -> Run:
        return Run(model=f"{case.run_prefix()}-{next(self._counter)}")

    async def prepare(self, case: Case) -> Run:
        """A fresh run with the case's setup done and the database quiet."""
        run = self.new_run(case)
        if case.setup is not None:
            await case.setup(self, run)
        await self.settle()
        return run

    @contextlib.asynccontextmanager
    async def caller(
        self, case: Case, kind: Kind, run: Run
    ) -> AsyncIterator[tuple[str, grpc.aio.Channel]]:
        """(principal, channel) of `kind`; a GRANTED_ON_MODEL caller is made for this run,
        holding the case's required role on `run.model`."""
        if kind is not Kind.GRANTED_ON_MODEL:
            yield PRINCIPALS.get(kind, ""), self.channels[kind]
            return
        principal = f"{run.model}-granted"
        issued = await issue_token(
            self.db, principal, case.need.granted_on_model(), model=run.model
        )
        async with authenticated_channel(self.target, issued.token) as channel:
            yield principal, channel

    async def settle(self) -> None:
        """Wait for the work a Write leaves behind (releasing its claim on the session)."""
        for _ in range(200):
            busy = await self.conn.fetchval(
                "SELECT count(*) FROM upload_sessions WHERE writer IS NOT NULL"
            )
            if not busy:
                return
            await asyncio.sleep(0.025)
        raise AssertionError("an upload session stayed claimed for 5 s after its Write")

    async def snapshot(self) -> dict[str, tuple[int, str]]:
        """Row count and an md5 over every row, per table."""
        rows = await self.conn.fetch(_snapshot_sql(self.tables))
        return {row["t"]: (row["n"], row["d"]) for row in rows}

    async def last_sequence(self) -> int:
        return int(await self.conn.fetchval("SELECT coalesce(max(sequence), 0) FROM audit_events"))

    async def events_after(self, sequence: int) -> list[AuditEvent]:
        rows = await self.conn.fetch(
            """SELECT sequence, principal, action, resource FROM audit_events
               WHERE sequence > $1 ORDER BY sequence""",
            sequence,
        )
        return [AuditEvent(**dict(row)) for row in rows]


def _snapshot_sql(tables: tuple[str, ...]) -> str:
    return " UNION ALL ".join(
        f"SELECT '{table}' AS t, count(*) AS n, "  # noqa: S608  (names from pg_tables)
        f"md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) AS d "
        f'FROM "{table}" x'
        for table in tables
    )


def changed_tables(before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]]) -> str:
    changed = [
        f"{table} ({before[table][0]} -> {after.get(table, (0, ''))[0]} rows)"
        for table in sorted(before)
        if before[table] != after.get(table)
    ]
    return ", ".join(changed)


async def _tokens(db: Database) -> dict[Kind, str | None]:
    tokens: dict[Kind, str | None] = {Kind.NONE: None, Kind.BAD: "mrt_" + secrets.token_urlsafe(32)}
    for kind in (Kind.VIEWER, Kind.EDITOR, Kind.APPROVER, Kind.ADMIN):
        tokens[kind] = (await issue_token(db, PRINCIPALS[kind], GLOBAL_ROLE[kind])).token
    elsewhere = PRINCIPALS[Kind.EDITOR_ELSEWHERE]
    tokens[Kind.EDITOR_ELSEWHERE] = (
        await issue_token(db, elsewhere, Role.EDITOR, model=ELSEWHERE_MODEL)
    ).token
    # Dead before their first use, so the server's authentication cache never saw them alive.
    tokens[Kind.EXPIRED] = (
        await issue_token(
            db, PRINCIPALS[Kind.EXPIRED], Role.ADMIN, expires_in=timedelta(seconds=-1)
        )
    ).token
    revoked = await issue_token(db, PRINCIPALS[Kind.REVOKED], Role.ADMIN)
    assert await revoke_token(db, revoked.token_id)
    tokens[Kind.REVOKED] = revoked.token
    return tokens


@contextlib.asynccontextmanager
async def running_harness(endpoints: StoreEndpoints) -> AsyncIterator[Harness]:
    async with contextlib.AsyncExitStack() as stack:
        dsn = await stack.enter_async_context(helpers.fresh_database(endpoints))
        bucket = unique_name("matrix", separator="-")
        await asyncio.to_thread(endpoints.s3_client().make_bucket, bucket)
        db = await Database.connect(dsn, min_size=1, max_size=2)
        stack.push_async_callback(db.close)
        tokens = await _tokens(db)
        target = await stack.enter_async_context(running_server(dsn, endpoints, bucket))
        channels: dict[Kind, grpc.aio.Channel] = {}
        for kind, token in tokens.items():
            if token is None:
                channel = grpc.aio.insecure_channel(target, options=GRPC_OPTIONS)
            else:
                channel = authenticated_channel(target, token)
            channels[kind] = await stack.enter_async_context(channel)
        conn = await asyncpg.connect(dsn)
        stack.push_async_callback(conn.close)
        tables = tuple(
            row["tablename"]
            for row in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
            )
            if row["tablename"] not in UNSNAPSHOTTED_TABLES
        )
        yield Harness(db, conn, target, channels, tables)
