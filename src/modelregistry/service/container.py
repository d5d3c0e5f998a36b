"""Every use case of one server process, built once and handed to each edge (gRPC and HTTP),
so both call the same objects: same caches, same upload limits, same audit watchers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from modelregistry.service.access import AccessService
from modelregistry.service.artifacts import MAX_DOWNLOAD_URL_LIFETIME, ArtifactService
from modelregistry.service.audit import AuditService
from modelregistry.service.auth import Authenticator
from modelregistry.service.collaboration import CollaborationService
from modelregistry.service.history import HistoryService
from modelregistry.service.listing import ListingService
from modelregistry.service.models import ModelService
from modelregistry.service.oci import OciService
from modelregistry.service.policy import PolicyService
from modelregistry.service.ui_sessions import SessionService
from modelregistry.service.versions import VersionService
from modelregistry.storage.database import Database
from modelregistry.storage.object_store import ObjectStore


@dataclass
class StoreHealth:
    """Whether PostgreSQL and S3 answered the last probe; the server's monitor keeps it."""

    serving: bool = False
    # Type name of the last failure, for logs and the readiness probe (never a message: a
    # driver's message may carry a DSN).
    cause: str | None = "not checked yet"


@dataclass(frozen=True)
class Services:
    models: ModelService
    versions: VersionService
    listing: ListingService
    history: HistoryService
    artifacts: ArtifactService
    collaboration: CollaborationService
    access: AccessService
    audit: AuditService
    policy: PolicyService
    authenticator: Authenticator
    oci: OciService
    # Web UI sign-ins (the HTTP edge's ui/ surface).
    sessions: SessionService
    store_health: StoreHealth = field(default_factory=StoreHealth)


def build_services(
    db: Database,
    store: ObjectStore,
    page_key: bytes,
    *,
    max_concurrent_uploads: int,
    download_url_max_lifetime: timedelta = MAX_DOWNLOAD_URL_LIFETIME,
) -> Services:
    authenticator = Authenticator(db)
    versions = VersionService(db)
    return Services(
        models=ModelService(db),
        versions=versions,
        listing=ListingService(db, page_key),
        history=HistoryService(db, page_key),
        artifacts=ArtifactService(
            db, store, versions, page_key, max_concurrent_uploads, download_url_max_lifetime
        ),
        collaboration=CollaborationService(db, page_key),
        access=AccessService(db, page_key, on_change=authenticator.forget),
        audit=AuditService(db, page_key),
        policy=PolicyService(db, page_key),
        authenticator=authenticator,
        oci=OciService(db, store, versions, authenticator, page_key),
        sessions=SessionService(db, authenticator),
    )
