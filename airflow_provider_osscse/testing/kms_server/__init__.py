"""A local Alibaba Cloud KMS server (2016-01-20 API) for tests through the real SDKs.

Verifies ACS3-HMAC-SHA256 and RPC v1 HMAC-SHA1 signatures, keeps real AES-256-GCM key material with
versions, rotation, aliases and enable/disable, and treats EncryptionContext as AAD. Start it from
Python (:class:`LocalKMSServer`) or the command line (``python -m airflow_provider_osscse.testing.kms_server``).
"""

from __future__ import annotations

from airflow_provider_osscse.testing.kms_server.errors import KMSServiceError
from airflow_provider_osscse.testing.kms_server.server import LocalKMSServer

__all__ = ["KMSServiceError", "LocalKMSServer"]
