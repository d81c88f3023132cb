"""Inspect, exists, list and delete: what the headers say, without unwrapping or decrypting."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import oss2

from airflow_provider_osscse.envelope.headers import (
    CSE_PREFIX,
    LEGACY_CEK_ALG_HEADER,
    LEGACY_WRAP_ALG_HEADER,
    OSSCSE_PREFIX,
    USER_META_PREFIX,
    WRAP_ALG_VAULT_TRANSIT,
    Envelope,
    is_encrypted,
    normalise_metadata,
    parse_envelope,
)
from airflow_provider_osscse.envelope.keywrap import Cmk
from airflow_provider_osscse.transport.oss_errors import translated, translated_iter
from airflow_provider_osscse.transport.results import ObjectInfo
from airflow_provider_osscse.transport.transfer_base import TransferBase

#: Headers that describe the encryption (current, this project's and legacy), not the user's data.
_ENCRYPTION_HEADER_PREFIXES = (
    CSE_PREFIX,
    OSSCSE_PREFIX,
    USER_META_PREFIX + "oss-crypto-",
    LEGACY_CEK_ALG_HEADER,
    LEGACY_WRAP_ALG_HEADER,
)


def own_user_metadata(headers: Mapping[str, str]) -> dict[str, str]:
    """The ``x-oss-meta-*`` entries the writer chose (names without the prefix), i.e. what ``put
    --meta`` set: the encryption headers are described by the other ``ObjectInfo`` fields instead."""
    return {
        name[len(USER_META_PREFIX) :]: value
        for name, value in sorted(normalise_metadata(headers).items())
        if name.startswith(USER_META_PREFIX) and not name.startswith(_ENCRYPTION_HEADER_PREFIXES)
    }


def key_version_of(envelope: Envelope, keys: Cmk | None = None) -> str | None:
    """The CMK version that wrapped the data key: the given CMK's answer when it matches the object,
    else for Vault Transit what the key itself would answer (the ``vault:vN:`` prefix), else the
    ``x-oss-meta-osscse-cmk-version`` header (or the earlier versions' matdesc entry)."""
    from airflow_provider_osscse.keys.vault_transit import transit_key_version  # the one Transit answer

    wrapped = envelope.wrapped
    if keys is not None and keys.matches(wrapped):
        return keys.key_version(wrapped)
    if wrapped.wrap_alg == WRAP_ALG_VAULT_TRANSIT:
        return transit_key_version(wrapped)
    return wrapped.cmk_version


class ListingOperations(TransferBase):
    """``inspect`` (``ObjectInfo`` from a HEAD), ``exists``, ``list_keys``, ``delete``."""

    @translated("inspect")
    def inspect(self, key: str, keys: Cmk | None = None, *, bucket: str | None = None) -> ObjectInfo:
        """Describe the envelope from a HEAD; never unwraps. Length headers are checked against the
        stored size first (a mismatch is an ``EnvelopeFormatError``, not a wrong description)."""
        stored = self.head(key, bucket=bucket)
        common: dict[str, Any] = {
            "uri": stored.uri,
            "bucket": stored.bucket,
            "key": key,
            "ciphertext_size": stored.size,
            "etag": stored.etag,
            "last_modified": stored.last_modified,
            "user_metadata": own_user_metadata(stored.headers),
            "content_type": stored.content_type,
        }
        if not is_encrypted(stored.headers):
            return ObjectInfo(
                encrypted=False,
                wrap_alg=None,
                cek_alg=None,
                matdesc={},
                cmk=None,
                key_version=None,
                plaintext_size=stored.size,
                part_size=None,
                integrity_tag=False,
                **common,
            )
        envelope = parse_envelope(stored.headers, object_name=stored.uri, allow_legacy=True)
        plaintext_size = envelope.check_object_size(stored.size, object_name=stored.uri)
        tag = envelope.integrity
        return ObjectInfo(
            encrypted=True,
            wrap_alg=envelope.wrapped.wrap_alg,
            cek_alg=envelope.cek_alg,
            matdesc=dict(envelope.wrapped.matdesc),
            cmk=envelope.wrapped.cmk_identity,
            key_version=key_version_of(envelope, keys),
            plaintext_size=plaintext_size,
            part_size=envelope.part_size,
            integrity_tag=tag is not None,
            integrity_bound=tag is not None and tag.bound,
            **common,
        )

    @translated("exists")
    def exists(self, key: str, *, bucket: str | None = None) -> bool:
        oss_bucket = self._bucket(bucket)
        return bool(self.config.retry.call(lambda: oss_bucket.object_exists(key), what=f"HEAD {key!r}"))

    def list_keys(self, prefix: str = "", *, bucket: str | None = None) -> Iterator[str]:
        """The keys under ``prefix``, listed page by page as they are consumed."""
        infos = oss2.ObjectIteratorV2(self._bucket(bucket), prefix=prefix)
        keys = (info.key for info in infos)
        return translated_iter(keys, lambda: self.oss_site("list_keys", prefix or None, bucket))

    @translated("delete")
    def delete(self, key: str, *, bucket: str | None = None) -> None:
        oss_bucket = self._bucket(bucket)
        self.config.retry.call(lambda: oss_bucket.delete_object(key), what=f"DELETE {key!r}")
