"""The generated service stubs, typed for the grpc.aio channels the tests talk over.

grpc's generated Python has one stub class per service, for either kind of channel;
mypy-protobuf's type stubs split it into `XServiceStub` (synchronous) and
`XServiceAsyncStub` (grpc.aio, awaitable calls), the second for type checking only.
Here the async name is the type mypy sees and the one class at run time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelregistry.v1.access_service_pb2_grpc import AccessServiceAsyncStub
    from modelregistry.v1.artifact_service_pb2_grpc import ArtifactServiceAsyncStub
    from modelregistry.v1.audit_service_pb2_grpc import AuditServiceAsyncStub
    from modelregistry.v1.collaboration_service_pb2_grpc import CollaborationServiceAsyncStub
    from modelregistry.v1.policy_service_pb2_grpc import PolicyServiceAsyncStub
    from modelregistry.v1.registry_service_pb2_grpc import RegistryServiceAsyncStub
else:
    from modelregistry.v1.access_service_pb2_grpc import AccessServiceStub as AccessServiceAsyncStub
    from modelregistry.v1.artifact_service_pb2_grpc import (
        ArtifactServiceStub as ArtifactServiceAsyncStub,
    )
    from modelregistry.v1.audit_service_pb2_grpc import AuditServiceStub as AuditServiceAsyncStub
    from modelregistry.v1.collaboration_service_pb2_grpc import (
        CollaborationServiceStub as CollaborationServiceAsyncStub,
    )
    from modelregistry.v1.policy_service_pb2_grpc import PolicyServiceStub as PolicyServiceAsyncStub
    from modelregistry.v1.registry_service_pb2_grpc import (
        RegistryServiceStub as RegistryServiceAsyncStub,
    )

__all__ = [
    "AccessServiceAsyncStub",
    "ArtifactServiceAsyncStub",
    "AuditServiceAsyncStub",
    "CollaborationServiceAsyncStub",
    "PolicyServiceAsyncStub",
    "RegistryServiceAsyncStub",
]
