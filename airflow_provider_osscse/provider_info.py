"""The provider metadata Airflow discovers through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_provider_osscse import __version__

PKG = "airflow_provider_osscse"
OSS_CSE = "Alibaba Cloud OSS client-side encryption"
KMS = "Alibaba Cloud KMS"


def get_provider_info() -> dict[str, Any]:
    """Provider info dict; ``package-name`` must equal the distribution name or Airflow refuses it."""
    return {
        "package-name": "airflow-provider-osscse",
        "name": "OSS client-side encryption",
        "description": "Client-side envelope encryption for Alibaba Cloud OSS, with CMKs in "
        "HashiCorp Vault (Transit or KV), Alibaba Cloud KMS or local RSA keys.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": OSS_CSE,
                "external-doc-url": "https://www.alibabacloud.com/help/en/oss/user-guide/client-side-encryption",
                "tags": ["alibaba", "security"],
            },
            {
                "integration-name": KMS,
                "external-doc-url": "https://www.alibabacloud.com/help/en/kms/",
                "tags": ["alibaba", "security"],
            },
        ],
        "hooks": [
            {"integration-name": OSS_CSE, "python-modules": [f"{PKG}.hooks.encrypted_oss"]},
            {"integration-name": KMS, "python-modules": [f"{PKG}.hooks.alicloud_kms"]},
        ],
        "operators": [
            {
                "integration-name": OSS_CSE,
                "python-modules": [
                    f"{PKG}.operators.local_to_encrypted_oss",
                    f"{PKG}.operators.encrypted_oss_to_local",
                    f"{PKG}.operators.oss_to_encrypted_oss",
                    f"{PKG}.operators.sql_to_encrypted_oss",
                    f"{PKG}.operators.rewrap",
                    f"{PKG}.operators.inventory",
                    f"{PKG}.operators.abandoned_uploads",
                ],
            }
        ],
        "sensors": [{"integration-name": OSS_CSE, "python-modules": [f"{PKG}.sensors.encrypted_oss_key"]}],
        "triggers": [{"integration-name": OSS_CSE, "python-modules": [f"{PKG}.triggers.encrypted_oss_key"]}],
        "transfers": [
            {
                "source-integration-name": "Local",
                "target-integration-name": OSS_CSE,
                "python-module": f"{PKG}.operators.local_to_encrypted_oss",
            },
            {
                "source-integration-name": OSS_CSE,
                "target-integration-name": "Local",
                "python-module": f"{PKG}.operators.encrypted_oss_to_local",
            },
            {
                "source-integration-name": "Alibaba Cloud OSS",
                "target-integration-name": OSS_CSE,
                "python-module": f"{PKG}.operators.oss_to_encrypted_oss",
            },
            {
                "source-integration-name": "Common SQL",
                "target-integration-name": OSS_CSE,
                "python-module": f"{PKG}.operators.sql_to_encrypted_oss",
            },
        ],
        "connection-types": [
            {
                "connection-type": "oss_cse",
                "hook-class-name": f"{PKG}.hooks.encrypted_oss.EncryptedOSSHook",
                "hook-name": "Alibaba Cloud OSS (client-side encrypted)",
                "conn-fields": {
                    "auth_type": {
                        "label": "Auth type",
                        "schema": {"type": ["string", "null"], "enum": ["AK", None], "default": "AK"},
                    },
                    "access_key_id": {"label": "AccessKey ID", "schema": {"type": ["string", "null"]}},
                    "access_key_secret": {
                        "label": "AccessKey secret",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "region": {
                        "label": "Region",
                        "schema": {"type": ["string", "null"]},
                        "description": "e.g. cn-hangzhou; needed for V4 signatures.",
                    },
                    "endpoint": {
                        "label": "Endpoint",
                        "schema": {"type": ["string", "null"]},
                        "description": "Optional; default https://oss-<region>.aliyuncs.com.",
                    },
                    "security_token": {
                        "label": "STS security token",
                        "schema": {"type": ["string", "null"], "format": "password"},
                        "description": "Optional, for temporary (STS) credentials.",
                    },
                    "signature_version": {
                        "label": "Signature version",
                        "schema": {"type": ["string", "null"], "enum": ["v4", "v1", None], "default": "v4"},
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["host", "port", "login", "password", "extra"],
                    "relabeling": {"schema": "Default bucket"},
                    "placeholders": {"schema": "my-bucket", "region": "cn-hangzhou"},
                },
            },
            {
                "connection-type": "alicloud_kms",
                "hook-class-name": f"{PKG}.hooks.alicloud_kms.AlicloudKmsHook",
                "hook-name": "Alibaba Cloud KMS",
                "conn-fields": {
                    "region": {
                        "label": "Region",
                        "schema": {"type": ["string", "null"]},
                        "description": "Region id, e.g. cn-hangzhou.",
                    },
                    "endpoint": {
                        "label": "Endpoint",
                        "schema": {"type": ["string", "null"]},
                        "description": "Optional; default kms.<region>.aliyuncs.com (or a KMS instance endpoint).",
                    },
                    "security_token": {
                        "label": "STS security token",
                        "schema": {"type": ["string", "null"], "format": "password"},
                        "description": "Optional STS token for temporary credentials.",
                    },
                    "protocol": {
                        "label": "Protocol",
                        "schema": {"type": ["string", "null"], "enum": ["https", "http", None], "default": "https"},
                        "description": "https; http is accepted only for a loopback endpoint "
                        "(data keys travel in KMS requests).",
                    },
                    "oss2_passphrase": {
                        "label": "oss2 passphrase",
                        "schema": {"type": ["string", "null"], "format": "password"},
                        "description": "Optional: the passphrase of objects written by oss2's "
                        "AliKMSProvider(passphrase=...), sent as the KMS EncryptionContext.",
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["host", "port", "schema", "extra"],
                    "relabeling": {"login": "AccessKey ID", "password": "AccessKey secret"},
                    "placeholders": {"login": "LTAI...", "region": "cn-hangzhou"},
                },
            },
        ],
    }
