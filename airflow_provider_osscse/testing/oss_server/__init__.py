"""A local OSS server speaking the OSS HTTP protocol as oss2 and alibabacloud-oss-v2 use it.

No OSS emulator exists, so tests (this project's and its users') run against this one: standard
library HTTP, v1 and v4 signature verification, real ETags and CRC-64, multipart rules and the
server-side client-side-encryption checks. See :class:`LocalOSSServer`; run it stand-alone with
``python -m airflow_provider_osscse.testing.oss_server --help``.
"""

from __future__ import annotations

from .server import InProgressUpload, LocalOSSServer, StoredObject

__all__ = ["InProgressUpload", "LocalOSSServer", "StoredObject"]
