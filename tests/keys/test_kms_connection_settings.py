"""The ``alicloud_kms`` connection is read in the keys layer, without Airflow, and shows no secret.

``kms://`` references (keys layer) and ``AlicloudKmsHook`` (hooks layer) both build their CMK from
:class:`KmsConnectionSettings`; the hook moved to ``hooks/``, so the keys layer must work with no
Airflow import at all. No services needed.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from airflow_provider_osscse.exceptions import InsecureKmsConnectionError
from airflow_provider_osscse.keys.alicloud_kms_connection import KmsConnectionSettings


def test_kms_cmk_modules_import_no_airflow() -> None:
    code = (
        "import sys\n"
        "import airflow_provider_osscse.keys.alicloud_kms, airflow_provider_osscse.keys.alicloud_kms_connection\n"
        "import airflow_provider_osscse.keys.reference\n"
        "loaded = sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.'))\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_settings_show_no_secret_in_repr() -> None:
    settings = KmsConnectionSettings.from_connection_fields(
        "kms_x", "LTAI-id", "secret-value", {"security_token": "sts-token-value", "oss2_passphrase": "pass-phrase"}
    )
    text = repr(settings)
    assert "LTAI-id" in text and "kms.cn-hangzhou.aliyuncs.com" in text
    assert not any(secret in text for secret in ("secret-value", "sts-token-value", "pass-phrase"))


def test_settings_refuse_plain_http_off_loopback_naming_the_connection() -> None:
    with pytest.raises(InsecureKmsConnectionError, match=r"'kms_x'.*kms\.example\.com"):
        KmsConnectionSettings.from_connection_fields(
            "kms_x", "id", "s", {"endpoint": "kms.example.com", "protocol": "http"}
        )
    local = KmsConnectionSettings.from_connection_fields(
        "kms_x", "id", "s", {"endpoint": "127.0.0.1:9", "protocol": "http"}
    )
    assert local.endpoint == "127.0.0.1:9"


def test_passphrase_extra_becomes_the_oss2_encryption_context_and_cmks_name_their_connection() -> None:
    settings = KmsConnectionSettings.from_connection_fields("kms_x", "id", "s", {"oss2_passphrase": "pw"})
    assert settings.encryption_context() == {"x-passphrase": "pw"}
    assert KmsConnectionSettings.from_connection_fields("kms_y", "id", "s", {}).encryption_context() is None
    client = object()  # never called: building a CMK touches no network
    assert settings.cmk("key-1", client=client).reference == "kms://kms_x/key-1"
