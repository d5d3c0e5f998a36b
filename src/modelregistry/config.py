"""Settings from MODELREG_* environment variables, validated once at start."""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Endpoints:
    """Where a started server answers (ports resolved, so a `:0` setting shows the real one)."""

    grpc: str  # host:port
    http_url: str | None = None  # http(s)://host:port of the HTTP edge, None when not served


@dataclass(frozen=True)
class Settings:
    # gRPC listen address of `modelreg serve`.
    listen: str = "127.0.0.1:50051"
    # PostgreSQL DSN, e.g. postgresql://user:pass@host:5432/modelregistry.
    database_url: str = ""
    database_pool_min: int = 2
    database_pool_max: int = 10
    # S3 endpoint as host:port, credentials and bucket.
    s3_endpoint: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_bucket: str = "modelregistry"
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    # Seconds any one call to S3 may take, waiting for a free thread included; past it (or
    # past the caller's own gRPC deadline, if sooner) the caller gets UNAVAILABLE.
    s3_deadline_s: float = 15.0
    # The S3 endpoint as clients outside the cluster reach it ([http[s]://]host:port), for
    # presigned URLs (OCI blob redirects, GetArtifactDownloadUrl); empty means
    # MODELREG_S3_ENDPOINT.
    s3_public_endpoint: str = ""
    # PEM bundle of the CAs trusted for the S3 endpoint's certificate (with S3_SECURE), in
    # place of the system's: for a store whose certificate a private CA signed.
    s3_ca_file: str = ""
    # Uploads streaming at once per replica; more get RESOURCE_EXHAUSTED. Each holds up to
    # BUFFERS (3, service/upload_writer.py) x part size of memory: 48 MiB with 16 MiB parts.
    max_concurrent_uploads: int = 8
    # The longest a presigned download URL may work (GetArtifactDownloadUrl's `lifetime`).
    download_url_max_lifetime_s: float = 3600.0
    # `modelreg gc` aborts upload sessions idle for longer than this.
    upload_idle_timeout_s: float = 86400.0
    # Prometheus metrics HTTP port on the listen host (0 disables).
    metrics_port: int = 0
    # Seconds in-flight calls get to finish on SIGTERM.
    shutdown_grace_s: float = 10.0
    # Seconds between health probes of PostgreSQL.
    health_interval_s: float = 1.0
    # Apply pending migrations at start (off when a release job runs `modelreg migrate`).
    migrate_on_start: bool = True
    # "json", "console", or "auto" (console on a terminal, JSON otherwise).
    log_format: str = "auto"
    log_level: str = "info"
    # TLS: PEM certificate chain and private key, both or neither. Set, the port speaks TLS only.
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # PEM bundle of the CAs that sign client certificates. Set, every client must present one
    # (mutual TLS); needs the certificate and key above.
    tls_client_ca_file: str = ""
    # host:port of a second, plaintext port serving only grpc.health.v1, for probes that
    # cannot speak TLS (Kubernetes' native gRPC probes); empty for none.
    health_listen: str = ""
    # host:port of the HTTP edge (web UI, MLflow REST, OCI distribution, /healthz, /readyz),
    # served by the same process; empty for none. HTTPS with the TLS settings above when set.
    http_listen: str = ""
    # OCI blob GETs answer with a redirect to a short-lived presigned store URL, so that the
    # bytes flow straight from the store (which clients must then be able to reach).
    oci_blob_redirect: bool = False
    # The HTTP edge's address as clients reach it (e.g. https://registry.example.com behind a
    # proxy); links handed to clients (MLflow's get-download-uri) start with it. Empty: the
    # scheme and Host of the request being answered.
    http_public_url: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            key = "MODELREG_" + f.name.upper()
            if key in env:
                values[f.name] = _parse(key, env[key], f.type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if not self.database_url:
            raise ConfigError(
                "MODELREG_DATABASE_URL is not set: give a PostgreSQL DSN such as "
                "postgresql://user@host:5432/modelregistry (or use `modelreg dev`)"
            )
        if not self.database_url.startswith(("postgres://", "postgresql://")):
            raise ConfigError("MODELREG_DATABASE_URL must start with postgresql://")
        if ":" not in self.listen:
            raise ConfigError(f"MODELREG_LISTEN must be host:port, got {self.listen!r}")
        if not 1 <= self.database_pool_min <= self.database_pool_max:
            raise ConfigError(
                "MODELREG_DATABASE_POOL_MIN must be >= 1 and <= MODELREG_DATABASE_POOL_MAX"
            )
        if self.log_format not in ("auto", "json", "console"):
            raise ConfigError("MODELREG_LOG_FORMAT must be auto, json or console")
        if self.log_level not in ("debug", "info", "warning", "error"):
            raise ConfigError("MODELREG_LOG_LEVEL must be debug, info, warning or error")
        if self.max_concurrent_uploads < 1 or self.upload_idle_timeout_s <= 0:
            raise ConfigError(
                "MODELREG_MAX_CONCURRENT_UPLOADS and MODELREG_UPLOAD_IDLE_TIMEOUT_S must be > 0"
            )
        if self.s3_deadline_s <= 0:
            raise ConfigError("MODELREG_S3_DEADLINE_S must be > 0")
        if not 1 <= self.download_url_max_lifetime_s <= 7 * 86400:
            # S3 signatures (SigV4) are valid for at most 7 days.
            raise ConfigError("MODELREG_DOWNLOAD_URL_MAX_LIFETIME_S must be 1 s to 7 days")
        if self.shutdown_grace_s < 0 or self.health_interval_s <= 0:
            raise ConfigError(
                "MODELREG_SHUTDOWN_GRACE_S and MODELREG_HEALTH_INTERVAL_S must be > 0"
            )
        if self.health_listen and ":" not in self.health_listen:
            raise ConfigError(
                f"MODELREG_HEALTH_LISTEN must be host:port, got {self.health_listen!r}"
            )
        if self.http_listen and not self.http_listen.rpartition(":")[2].isdigit():
            raise ConfigError(f"MODELREG_HTTP_LISTEN must be host:port, got {self.http_listen!r}")
        if self.http_public_url and not self.http_public_url.startswith(("http://", "https://")):
            raise ConfigError("MODELREG_HTTP_PUBLIC_URL must start with http:// or https://")
        self._validate_tls()
        if self.s3_ca_file:
            if not self.s3_secure:
                raise ConfigError(
                    "MODELREG_S3_CA_FILE is set but MODELREG_S3_SECURE is not: the CA is only "
                    "used for https to the store"
                )
            read_pem("MODELREG_S3_CA_FILE", self.s3_ca_file)  # a clear error if unreadable
            _check_certificates("MODELREG_S3_CA_FILE", self.s3_ca_file)

    @property
    def tls(self) -> bool:
        # Any TLS setting counts, so a half-configured pair fails rather than serving plaintext.
        return bool(self.tls_cert_file or self.tls_key_file or self.tls_client_ca_file)

    @property
    def mtls(self) -> bool:
        return bool(self.tls_client_ca_file)

    def _validate_tls(self) -> None:
        if self.tls:
            self.tls_material()
            _check_certificates("MODELREG_TLS_CERT_FILE", self.tls_cert_file)
            _check_key(self.tls_cert_file, self.tls_key_file)
            if self.tls_client_ca_file:
                _check_certificates("MODELREG_TLS_CLIENT_CA_FILE", self.tls_client_ca_file)

    def tls_material(self) -> tuple[bytes, bytes, bytes | None]:
        """(certificate chain, private key, client CA bundle or None) for the listening port."""
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ConfigError(
                "MODELREG_TLS_CERT_FILE and MODELREG_TLS_KEY_FILE go together: set both or neither"
            )
        if self.tls_client_ca_file and not self.tls_cert_file:
            raise ConfigError(
                "MODELREG_TLS_CLIENT_CA_FILE (mutual TLS) needs MODELREG_TLS_CERT_FILE and "
                "MODELREG_TLS_KEY_FILE: the server must speak TLS to ask for client certificates"
            )
        client_ca = self.tls_client_ca_file
        return (
            read_pem("MODELREG_TLS_CERT_FILE", self.tls_cert_file),
            read_pem("MODELREG_TLS_KEY_FILE", self.tls_key_file),
            read_pem("MODELREG_TLS_CLIENT_CA_FILE", client_ca) if client_ca else None,
        )

    def require_object_store(self) -> Settings:
        """`serve` and `gc` need S3; `migrate` does not."""
        if not self.s3_endpoint:
            raise ConfigError(
                "MODELREG_S3_ENDPOINT is not set: give the S3 endpoint as host:port "
                "(with MODELREG_S3_ACCESS_KEY and MODELREG_S3_SECRET_KEY)"
            )
        return self


def read_pem(key: str, path: str) -> bytes:
    """The bytes of a PEM file, or a ConfigError naming `key` and the path (never the content:
    a key file's bytes must not reach a log)."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ConfigError(f"{key}: cannot read {path}: {reason}") from None
    if b"-----BEGIN " not in data:
        raise ConfigError(f"{key}: {path} is not a PEM file (no -----BEGIN line)")
    return data


def _check_certificates(key: str, path: str) -> None:
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
    except ssl.SSLError:
        raise ConfigError(f"{key}: {path} holds no readable PEM certificate") from None


class _EncryptedKey(Exception):
    pass


def _no_passphrase() -> str:
    raise _EncryptedKey


def _check_key(cert_path: str, key_path: str) -> None:
    """Load the pair as a TLS server would, so a wrong or mismatched key fails at start, not
    at the first handshake."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert_path, key_path, password=_no_passphrase)
    except _EncryptedKey:
        raise ConfigError(
            f"MODELREG_TLS_KEY_FILE: {key_path} is encrypted; give the key without a passphrase"
        ) from None
    except ssl.SSLError as error:
        if error.reason == "KEY_VALUES_MISMATCH":
            raise ConfigError(
                f"MODELREG_TLS_KEY_FILE: {key_path} is not the private key of the certificate "
                "in MODELREG_TLS_CERT_FILE"
            ) from None
        raise ConfigError(
            f"MODELREG_TLS_KEY_FILE: {key_path} holds no readable PEM private key"
        ) from None


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _parse(key: str, raw: str, type_name: object) -> object:
    kind = str(type_name)
    if kind == "bool":
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigError(f"{key} must be true or false, got {raw!r}")
    if kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{key} must be an integer, got {raw!r}") from None
    if kind == "float":
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"{key} must be a number, got {raw!r}") from None
    return raw
