"""Transfer checksums for whole-object requests: the bytes OSS stores are the bytes sent, and the
bytes received are the bytes OSS stored.

These guard against accidental corruption on the wire (tampering is the integrity tag's job), and
oss2 does the same with its CRC-64, but at a price that dominates small objects: every
``put_object`` and every whole ``get_object`` builds a fresh ``crcmod`` CRC-64 object, and building
one computes its lookup tables in pure Python (~0.5 ms, ten times the cost of the CRC of a 4 KiB
object). So requests made here go through the bucket's CRC-free twin
(:func:`~airflow_provider_osscse.transport.oss_client.without_client_crc`) and check instead:

- a PUT carries ``Content-MD5`` (of the ciphertext: the bytes on the wire). OSS computes the MD5
  of the body it received and refuses a mismatch with ``InvalidDigest`` *before* storing anything,
  which is stronger than oss2's check of the CRC in the answer: by then a corrupted object has
  already replaced the previous one.
- a whole GET compares :func:`crc64_ecma` of the body with the ``x-oss-hash-crc64ecma`` header,
  with the CRC function (and its tables) built once per process.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from crcmod.crcmod import mkCrcFun

from airflow_provider_osscse.exceptions import TransferChecksumError
from airflow_provider_osscse.retry import RetryPolicy
from airflow_provider_osscse.transport.oss_client import without_client_crc

#: OSS's CRC-64 (``x-oss-hash-crc64ecma``): the ECMA-182 polynomial, reflected, inverted (as oss2).
#: The local OSS server computes its own (``testing/oss_server/checksums.py``) on purpose: a client
#: and the server it is checked against must not share the code under test.
_CRC64_POLY = 0x142F0E1EBA9EA3693
_CRC64_XOROUT = 0xFFFFFFFFFFFFFFFF
#: ``(data, crc) -> crc``, tables built once; crcmod builds the function at run time, hence the type.
_crc64: Callable[[bytes, int], int] = mkCrcFun(_CRC64_POLY, initCrc=0, rev=True, xorOut=_CRC64_XOROUT)


def crc64_ecma(data: bytes, crc: int = 0) -> int:
    """The CRC-64 OSS reports for ``data`` (continuing from ``crc``, the CRC of what came before)."""
    return _crc64(data, crc)


def content_md5(data: bytes) -> str:
    """The ``Content-MD5`` header for ``data``: base64 of its MD5 (a transfer checksum, not security)."""
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode("ascii")


def put_object_checked(
    bucket: Any, key: str, body: bytes, headers: Mapping[str, str], *, retry: RetryPolicy, what: str
) -> Any:
    """PUT ``body`` with ``Content-MD5`` (OSS verifies it before storing) and oss2's CRC pass off.

    Returns oss2's ``PutObjectResult``. A body corrupted on the wire is refused by OSS with
    ``InvalidDigest``, which the retry policy treats as transient: the same bytes are sent again."""
    target = without_client_crc(bucket)
    sent = {**headers, "Content-MD5": content_md5(body)}
    return retry.call(lambda: target.put_object(key, body, headers=sent), what=what)


def check_received_crc(uri: str, body: bytes, server_crc: int | None) -> None:
    """Raise :class:`TransferChecksumError` (transient: the GET is sent again within the retry
    policy) when ``body`` is not what OSS stored, by its CRC-64 header; no header (a proxy that
    drops it): nothing to compare."""
    if server_crc is not None and crc64_ecma(body) != server_crc:
        raise TransferChecksumError(
            f"{uri}: the bytes received do not match OSS's CRC-64 (corrupted in transit); read it again"
        )
