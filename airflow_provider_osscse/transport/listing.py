"""Inspect, exists, list and delete: what the headers say, without unwrapping or decrypting."""

from __future__ import annotations

import itertools
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

    def list_keys(
        self,
        prefix: str = "",
        *,
        bucket: str | None = None,
        start_after: str | None = None,
        end_at: str | None = None,
    ) -> Iterator[str]:
        """The keys under ``prefix``, listed page by page as they are consumed; with ``start_after``
        and ``end_at`` only the keys after the one and up to the other (a shard of a listing)."""
        infos = oss2.ObjectIteratorV2(self._bucket(bucket), prefix=prefix, start_after=start_after or "")
        keys: Iterator[str] = (info.key for info in infos)
        if end_at is not None:
            keys = itertools.takewhile(lambda key: key <= end_at, keys)
        return translated_iter(keys, lambda: self.oss_site("list_keys", prefix or None, bucket))

    def listing_shards(
        self, prefix: str = "", *, bucket: str | None = None, objects_per_shard: int = 10_000
    ) -> list[dict[str, str | None]]:
        """Cut the listing of ``prefix`` into shards of ``objects_per_shard`` keys, for mapping a fleet
        operation over workers (one task per shard, not per object). Each shard is
        ``{"prefix", "start_after", "end_at"}`` (``None``: from the first / to the last key); listing
        costs one request per 1000 keys and the memory of the boundaries only."""
        if objects_per_shard < 1:
            raise ValueError("objects_per_shard must be at least 1")
        shards: list[dict[str, str | None]] = []
        start_after: str | None = None
        count, last = 0, None
        for key in self.list_keys(prefix, bucket=bucket):
            count, last = count + 1, key
            if count == objects_per_shard:
                shards.append({"prefix": prefix, "start_after": start_after, "end_at": key})
                start_after, count = key, 0
        if count or not shards:
            shards.append({"prefix": prefix, "start_after": start_after, "end_at": None if count else last})
        return shards

    @translated("delete")
    def delete(self, key: str, *, bucket: str | None = None) -> None:
        oss_bucket = self._bucket(bucket)
        self.config.retry.call(lambda: oss_bucket.delete_object(key), what=f"DELETE {key!r}")
