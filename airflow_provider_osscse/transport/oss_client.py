"""Building oss2 clients from the settings of an Airflow ``oss`` connection.

The connection format is the alibaba provider's, unchanged: ``schema`` is the default bucket; extras
``auth_type`` ("AK"), ``access_key_id``, ``access_key_secret``, ``region``, optional ``endpoint``
(default ``https://oss-<region>.aliyuncs.com``). Added, optional: ``security_token`` (STS temporary
credentials) and ``signature_version`` ("v4", the default, or "v1" for old endpoints).

Two extras set the deployment's defaults for the encrypted-object hook (a hook argument wins):
``integrity`` (``require``, the built-in default, ``if-present`` or ``off``) and ``matdesc`` (a
JSON object of strings written as the objects' ``client-side-encryption-matdesc``; none by default).

This module knows nothing of Airflow: the hook turns a ``Connection`` into :class:`OssSettings`.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import oss2

from airflow_provider_osscse.envelope.integrity import IntegrityPolicy
from airflow_provider_osscse.envelope.matdesc import dump_matdesc
from airflow_provider_osscse.exceptions import EnvelopeFormatError, OssConnectionError
from airflow_provider_osscse.transport.oss_session import oss_session

SIGNATURE_VERSIONS = ("v1", "v4")


class _RawCiphertextReadFilter(logging.Filter):
    """Drops oss2's warning that a plain ``Bucket`` returns an encrypted object's raw bytes.

    This layer reads ciphertext through a plain ``Bucket`` on purpose (it decrypts itself); the warning
    would otherwise appear once per ranged GET in task logs and on ``osscse cat``'s output.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Using Bucket to get an encrypted object")


logging.getLogger("oss2.models").addFilter(_RawCiphertextReadFilter())


@dataclass(frozen=True)
class OssSettings:
    """Everything needed to reach OSS. ``repr`` hides the secret and the STS token."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    region: str | None = None
    endpoint: str | None = None
    security_token: str | None = field(default=None, repr=False)
    signature_version: str = "v4"
    default_bucket: str | None = None
    connect_timeout: float = 60.0
    #: The deployment's default read policy (extra ``integrity``); ``None``: the built-in ``require``.
    integrity: IntegrityPolicy | None = None
    #: The deployment's default matdesc for written objects (extra ``matdesc``); ``None``: none.
    matdesc: Mapping[str, str] | None = field(default=None, hash=False)

    @classmethod
    def from_connection_fields(cls, schema: str | None, extra: Mapping[str, Any]) -> OssSettings:
        """Read an Airflow ``oss`` connection's ``schema`` and ``extra_dejson``."""
        auth_type = extra.get("auth_type", "AK") or "AK"
        if auth_type != "AK":
            raise OssConnectionError(f"oss connection auth_type {auth_type!r} is not supported (use 'AK')")
        key_id = extra.get("access_key_id")
        secret = extra.get("access_key_secret")
        if not key_id or not secret:
            raise OssConnectionError("oss connection needs extras 'access_key_id' and 'access_key_secret'")
        version = str(extra.get("signature_version") or "v4").lower()
        if version not in SIGNATURE_VERSIONS:
            raise OssConnectionError(f"signature_version must be one of {SIGNATURE_VERSIONS}, got {version!r}")
        region = extra.get("region") or None
        if version == "v4" and not region:
            raise OssConnectionError("oss connection needs extra 'region' for signature v4")
        return cls(
            access_key_id=str(key_id),
            access_key_secret=str(secret),
            region=region,
            endpoint=extra.get("endpoint") or None,
            security_token=extra.get("security_token") or None,
            signature_version=version,
            default_bucket=schema or None,
            connect_timeout=float(extra.get("connect_timeout", 60.0)),
            integrity=_integrity_extra(extra.get("integrity")),
            matdesc=_matdesc_extra(extra.get("matdesc")),
        )

    @property
    def resolved_endpoint(self) -> str:
        """The endpoint URL, defaulting to the public regional one; ``https://`` when no scheme given."""
        endpoint = self.endpoint or (f"oss-{self.region}.aliyuncs.com" if self.region else None)
        if not endpoint:
            raise OssConnectionError("oss connection needs extra 'endpoint' or 'region'")
        if "://" not in endpoint:
            endpoint = "https://" + endpoint
        return endpoint

    def make_auth(self) -> Any:
        """The oss2 auth object for these credentials (STS when a token is present)."""
        version = oss2.AUTH_VERSION_4 if self.signature_version == "v4" else oss2.AUTH_VERSION_1
        if self.security_token:
            return oss2.StsAuth(self.access_key_id, self.access_key_secret, self.security_token, auth_version=version)
        if version == oss2.AUTH_VERSION_4:
            return oss2.AuthV4(self.access_key_id, self.access_key_secret)
        return oss2.Auth(self.access_key_id, self.access_key_secret)


def _integrity_extra(value: Any) -> IntegrityPolicy | None:
    if value is None or value == "":
        return None
    try:
        return IntegrityPolicy(str(value).strip().lower())
    except ValueError:
        choices = ", ".join(p.value for p in IntegrityPolicy)
        raise OssConnectionError(f"oss connection extra 'integrity' is {value!r}; expected one of {choices}") from None


def _matdesc_extra(value: Any) -> dict[str, str] | None:
    """The extra as a dict: a JSON object, or its JSON text (as typed in the connection form)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise OssConnectionError(
                "oss connection extra 'matdesc' is not valid JSON; expected an object "
                'of strings such as {"team": "finance"}'
            ) from None
    if not isinstance(value, Mapping):
        raise OssConnectionError(
            'oss connection extra \'matdesc\' must be a JSON object of strings, e.g. {"team": "finance"}'
        )
    try:
        dump_matdesc(value)
    except EnvelopeFormatError as exc:
        raise OssConnectionError(f"oss connection extra 'matdesc': {exc}") from None
    return dict(value)


_CRC_FREE: weakref.WeakKeyDictionary[oss2.Bucket, oss2.Bucket] = weakref.WeakKeyDictionary()
_CRC_FREE_LOCK = threading.Lock()


def without_client_crc(bucket: oss2.Bucket) -> oss2.Bucket:
    """The same bucket (auth, endpoint, session and its pool shared) with oss2's client CRC64 off.

    oss2 builds a ``crcmod`` CRC-64 (tables computed in pure Python, ~0.5 ms) for every PUT and GET
    and runs every byte through it with the GIL held. Requests sent through this twin are checked
    otherwise, or need no CRC: UploadPart of a
    :class:`~airflow_provider_osscse.transport.part_body.PartBody` (MD5 against the part ETag),
    whole-object PUTs and GETs (``Content-MD5``, and a CRC-64 computed with tables built once: see
    :mod:`~airflow_provider_osscse.transport.transfer_checksums`), and ranged GETs (oss2 never compares
    a range's CRC; the integrity tag checks the bytes). Built once per bucket object and cached; a
    bucket whose CRC is already off, or that is not an ``oss2.Bucket`` (a stand-in), is returned as it is.
    """
    if not isinstance(bucket, oss2.Bucket) or not bucket.enable_crc:
        return bucket
    with _CRC_FREE_LOCK:
        twin = _CRC_FREE.get(bucket)
        if twin is None:
            twin = copy.copy(bucket)  # shallow: the same auth, session, URL maker and settings
            twin.enable_crc = False
            _CRC_FREE[bucket] = twin
        return twin


class OssClientFactory:
    """Builds oss2 ``Service``/``Bucket`` objects once and reuses them (and their connection pool).

    oss2 ``Bucket`` objects are safe to share between threads (``requests`` sessions with a pool),
    so one per bucket name is cached; the pool is sized for the transfer threads.
    """

    def __init__(self, settings: OssSettings, *, pool_size: int = 10) -> None:
        self.settings = settings
        self._auth = settings.make_auth()
        self._session = oss_session(pool_size)  # the environment (proxies, CA bundle) read once
        self._buckets: dict[str, oss2.Bucket] = {}
        self._lock = threading.Lock()

    def service(self) -> oss2.Service:
        return oss2.Service(
            self._auth,
            self.settings.resolved_endpoint,
            session=self._session,
            connect_timeout=self.settings.connect_timeout,
            region=self.settings.region,
        )

    def bucket(self, name: str | None = None) -> oss2.Bucket:
        """The bucket ``name``, or the connection's default bucket (its ``schema``)."""
        name = name or self.settings.default_bucket
        if not name:
            raise OssConnectionError("no bucket given and the oss connection has no default bucket (schema)")
        with self._lock:
            bucket = self._buckets.get(name)
            if bucket is None:
                bucket = oss2.Bucket(
                    self._auth,
                    self.settings.resolved_endpoint,
                    name,
                    session=self._session,
                    connect_timeout=self.settings.connect_timeout,
                    region=self.settings.region,
                )
                self._buckets[name] = bucket
                without_client_crc(bucket)  # its UploadPart twin, built once alongside it
            return bucket
