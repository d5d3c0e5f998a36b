"""MODELREG_S3_CA_FILE: a CA for the store's https certificate, refused at start when it
cannot be used (the working case is tests/integration/test_artifacts_tls_store.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelregistry.config import ConfigError, Settings

DSN = "postgresql://modelreg@127.0.0.1:1/modelregistry"


def test_a_store_ca_without_https_to_the_store_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"MODELREG_S3_CA_FILE .* MODELREG_S3_SECURE"):
        Settings.from_env(
            {"MODELREG_DATABASE_URL": DSN, "MODELREG_S3_CA_FILE": str(tmp_path / "ca.pem")}
        )


def test_a_store_ca_that_holds_no_certificate_is_refused(tmp_path: Path) -> None:
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    env = {
        "MODELREG_DATABASE_URL": DSN,
        "MODELREG_S3_SECURE": "true",
        "MODELREG_S3_CA_FILE": str(not_pem),
    }
    with pytest.raises(ConfigError, match=f"MODELREG_S3_CA_FILE: {not_pem} holds no readable"):
        Settings.from_env(env)


def test_a_missing_store_ca_is_refused(tmp_path: Path) -> None:
    env = {
        "MODELREG_DATABASE_URL": DSN,
        "MODELREG_S3_SECURE": "true",
        "MODELREG_S3_CA_FILE": str(tmp_path / "nowhere.pem"),
    }
    with pytest.raises(ConfigError, match=r"MODELREG_S3_CA_FILE: cannot read .*nowhere.pem"):
        Settings.from_env(env)
