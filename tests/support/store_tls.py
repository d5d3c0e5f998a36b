"""A SeaweedFS that also speaks S3 over https, for tests of the server's TLS to its store.

The certificate comes from a CA made for the test module by bench/certificates.py, the same
throwaway CA `make bench` uses.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from minio import Minio

from modelregistry.embedded.seaweed import EmbeddedSeaweed, SeaweedPorts, SeaweedTls
from support.bench_modules import load_bench_module
from support.stores import StoreEndpoints, free_port_block, unique_name


@dataclass(frozen=True)
class HttpsStore:
    endpoints: StoreEndpoints  # s3_endpoint is the https one
    ca_file: Path  # the CA that signed the store's certificate
    seaweed: EmbeddedSeaweed

    def new_bucket(self) -> str:
        """A fresh bucket, made over the store's plain http port (same buckets)."""
        name = unique_name("tls", separator="-")
        Minio(
            self.seaweed.endpoint,
            access_key=self.endpoints.s3_access_key,
            secret_key=self.endpoints.s3_secret_key,
            secure=False,
        ).make_bucket(name)
        return name


@contextlib.contextmanager
def https_store(work_dir: Path, admin_database_url: str) -> Iterator[HttpsStore]:
    certificates = load_bench_module("certificates").make_store_certificates(work_dir / "tls")
    base = free_port_block(size=5)
    seaweed = EmbeddedSeaweed(
        work_dir / "seaweedfs",
        ports=SeaweedPorts(s3=base, master=base + 1, volume=base + 2, filer=base + 3),
        tls=SeaweedTls(base + 4, certificates.cert_file, certificates.key_file),
        stop_timeout_s=1.0,
    )
    with seaweed:
        https_endpoint = seaweed.https_endpoint
        assert https_endpoint is not None
        credentials = seaweed.credentials
        yield HttpsStore(
            endpoints=StoreEndpoints(
                admin_database_url=admin_database_url,
                s3_endpoint=https_endpoint,
                s3_access_key=credentials.access_key,
                s3_secret_key=credentials.secret_key,
                seaweed=seaweed,
            ),
            ca_file=certificates.ca_file,
            seaweed=seaweed,
        )
