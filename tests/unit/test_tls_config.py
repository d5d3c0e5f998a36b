"""TLS settings that cannot work are refused at start with one line naming the variable.

(Certificates that parse but do not fit, a mismatched or encrypted key, are checked in
tests/integration/test_tls.py, which makes real ones.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from modelregistry import client
from modelregistry.config import ConfigError, Settings

MODELREG = str(Path(sys.executable).with_name("modelreg"))
DSN = "postgresql://modelreg@127.0.0.1:1/modelregistry"
SECRET = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"  # what key bytes look like


def settings(
    tls_cert_file: str = "", tls_key_file: str = "", tls_client_ca_file: str = ""
) -> Settings:
    return Settings(
        database_url=DSN,
        tls_cert_file=tls_cert_file,
        tls_key_file=tls_key_file,
        tls_client_ca_file=tls_client_ca_file,
    )


@pytest.fixture
def pem(tmp_path: Path) -> Path:
    # Enough to pass the read checks that come before the certificate checks.
    path = tmp_path / "some.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    return path


def test_without_tls_settings_the_server_is_plaintext() -> None:
    plain = settings()
    plain.validate()
    assert (plain.tls, plain.mtls) == (False, False)


def test_the_tls_settings_come_from_the_environment(tmp_path: Path) -> None:
    env = {
        "MODELREG_DATABASE_URL": DSN,
        "MODELREG_TLS_CERT_FILE": str(tmp_path / "server.pem"),
        "MODELREG_TLS_KEY_FILE": str(tmp_path / "server.key"),
        "MODELREG_TLS_CLIENT_CA_FILE": str(tmp_path / "clients.pem"),
    }
    # The files do not exist: the first one checked is named.
    with pytest.raises(ConfigError, match=r"^MODELREG_TLS_CERT_FILE: cannot read .*server\.pem"):
        Settings.from_env(env)


@pytest.mark.parametrize("given", ["tls_cert_file", "tls_key_file"])
def test_a_certificate_and_key_go_together(given: str, pem: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        settings(**{given: str(pem)}).validate()
    assert str(raised.value) == (
        "MODELREG_TLS_CERT_FILE and MODELREG_TLS_KEY_FILE go together: set both or neither"
    )


def test_mutual_tls_needs_the_server_certificate(pem: Path) -> None:
    with pytest.raises(ConfigError, match=r"^MODELREG_TLS_CLIENT_CA_FILE \(mutual TLS\) needs"):
        settings(tls_client_ca_file=str(pem)).validate()


def test_a_missing_key_file_is_named(pem: Path, tmp_path: Path) -> None:
    missing = tmp_path / "absent.key"
    with pytest.raises(ConfigError) as raised:
        settings(tls_cert_file=str(pem), tls_key_file=str(missing)).validate()
    assert str(raised.value) == (
        f"MODELREG_TLS_KEY_FILE: cannot read {missing}: No such file or directory"
    )


def test_a_directory_is_not_a_certificate(pem: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^MODELREG_TLS_CERT_FILE: cannot read .*directory"):
        settings(tls_cert_file=str(tmp_path), tls_key_file=str(pem)).validate()


def test_a_file_that_is_not_pem_is_refused_without_showing_its_content(
    pem: Path, tmp_path: Path
) -> None:
    der_key = tmp_path / "server.der"
    der_key.write_text(SECRET)
    with pytest.raises(ConfigError) as raised:
        settings(tls_cert_file=str(pem), tls_key_file=str(der_key)).validate()
    message = str(raised.value)
    assert message == f"MODELREG_TLS_KEY_FILE: {der_key} is not a PEM file (no -----BEGIN line)"
    assert SECRET not in message


def test_a_pem_file_without_a_certificate_is_refused(pem: Path, tmp_path: Path) -> None:
    key = tmp_path / "server.key"
    key.write_text(f"-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ConfigError) as raised:
        settings(tls_cert_file=str(pem), tls_key_file=str(key)).validate()
    assert str(raised.value) == (f"MODELREG_TLS_CERT_FILE: {pem} holds no readable PEM certificate")


def test_serve_exits_2_with_one_line_naming_the_variable(pem: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "MODELREG_DATABASE_URL": DSN,
        "MODELREG_S3_ENDPOINT": "127.0.0.1:1",
        "MODELREG_TLS_CERT_FILE": str(pem),
    }
    done = subprocess.run(
        [MODELREG, "serve"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: MODELREG_TLS_CERT_FILE and MODELREG_TLS_KEY_FILE go together: set both or neither"
    ]


# --- the client's side ------------------------------------------------------------------------


def test_the_client_is_plaintext_without_tls_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (client.TLS_CA_ENV, client.TLS_CERT_ENV, client.TLS_KEY_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(client.TLS_SERVER_NAME_ENV, "registry.internal")
    files = client.TlsFiles.from_env()
    assert not files.enabled
    assert files.channel_options() == []  # a server name alone does not turn TLS on


def test_the_client_reads_its_tls_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(client.TLS_CA_ENV, "/etc/modelreg/ca.pem")
    monkeypatch.setenv(client.TLS_CERT_ENV, "")
    monkeypatch.setenv(client.TLS_SERVER_NAME_ENV, "registry.internal")
    files = client.TlsFiles.from_env()
    assert files == client.TlsFiles(ca_file="/etc/modelreg/ca.pem", server_name="registry.internal")
    assert files.channel_options() == [("grpc.ssl_target_name_override", "registry.internal")]


def test_a_client_certificate_needs_its_key(pem: Path) -> None:
    with pytest.raises(client.TlsFilesError, match=client.TLS_KEY_ENV):
        client.TlsFiles(cert_file=str(pem)).credentials()


def test_an_unreadable_ca_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "ca.pem"
    with pytest.raises(client.TlsFilesError) as raised:
        client.connect("127.0.0.1:1", tls=client.TlsFiles(ca_file=str(missing)))
    assert str(raised.value) == f"cannot read the CA bundle {missing}: No such file or directory"
