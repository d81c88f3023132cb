"""Server-side copy and rewrap: objects stay valid without their content being read again.

**Copy.** An integrity tag bound to (bucket, key) would not verify under the copy's name, so the
copy gets the tag re-bound to its own name (``EnvelopeReader.rebind``: the data key is unwrapped
once with the read CMKs, the binding checked against the source's name and re-computed; no content
is read). Up to ``multipart_threshold`` the copy is one CopyObject with metadata directive REPLACE
carrying every ``client-side-encryption-*`` header unchanged (OSS refuses only a REPLACE that
changes them) and the new tag; above it, UploadPartCopy of the ciphertext with the new metadata at
Init. Untagged, unbound and v1 objects name no place and keep the plain COPY. Every request is
conditional on the source's ETag.

**Rewrap.** Only the wrapped data key changes (same data key, same name), so the tag stays valid
as it is. A REPLACE copy may not change CSE headers, so the new headers are written by a new
upload of the same ciphertext: up to :data:`REWRAP_BY_PUT_LIMIT`, a GET conditional on the ETag
seen at the start and one PUT of those bytes (no multipart upload, so a killed run leaves nothing
half-done: the object is the old or the new version); above it, UploadPartCopy onto the object
itself, each part conditional on the ETag and the ETag re-checked before Complete (a failed run
aborts its upload; a killed one leaves an upload whose marker part says ``rewrap``, which the next
fleet rewrap of its key range aborts, see ``transport.abandoned_uploads``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import cast

import oss2
import oss2.exceptions

from airflow_provider_osscse.envelope.headers import (
    CSE_PREFIX,
    DATA_SIZE_HEADER,
    OSSCSE_PREFIX,
    PART_SIZE_HEADER,
    check_metadata_size,
    is_encrypted,
    parse_envelope,
)
from airflow_provider_osscse.envelope.integrity import IntegrityPolicy
from airflow_provider_osscse.envelope.integrity_tag import INTEGRITY_HEADER, ObjectBinding
from airflow_provider_osscse.envelope.keywrap import Cmk, WrappedDataKey
from airflow_provider_osscse.envelope.multipart import plan_parts
from airflow_provider_osscse.envelope.reader import EnvelopeReader, read_cmk_remedy
from airflow_provider_osscse.envelope.writer import rewrapped_metadata
from airflow_provider_osscse.exceptions import (
    IntegrityError,
    NoMatchingKeyError,
    ObjectChangedError,
    OSSCSEError,
)
from airflow_provider_osscse.transport.multipart_upload import (
    copy_part_action,
    run_multipart,
)
from airflow_provider_osscse.transport.oss_client import without_client_crc
from airflow_provider_osscse.transport.oss_errors import translated
from airflow_provider_osscse.transport.results import RewrapResult, oss_uri
from airflow_provider_osscse.transport.transfer_base import (
    StoredObject,
    TransferBase,
    part_headers,
    stored_object,
)
from airflow_provider_osscse.transport.transfer_checksums import check_received_crc, put_object_checked

#: Standard headers a REPLACE copy would otherwise drop; carried over as the source has them.
_KEPT_STANDARD_HEADERS = ("cache-control", "content-disposition", "content-encoding", "content-language", "expires")

#: Objects up to this size are rewrapped by GET + PUT of their ciphertext (two requests, no
#: multipart upload to leave behind); larger ones by UploadPartCopy (no content through the client).
REWRAP_BY_PUT_LIMIT = 1024 * 1024
#: A fleet rewrap reads each object's headers with a GET of its first bytes instead of a HEAD (the
#: same one request): an object up to this size then comes whole, and re-wrapping it is one PUT more.
REWRAP_PROBE_BYTES = 64 * 1024

#: The read CMKs for a copy, or a callable giving them only when a bound tag needs re-binding.
CopyKeys = Cmk | Callable[[], Cmk | None] | None


class CopyRewrapOperations(TransferBase):
    """``copy`` (tags re-bound to the destination) and ``rewrap`` (new wrapped data key, same tag)."""

    # ----------------------------------------------------------------- copy
    @translated("copy")
    def copy(
        self,
        source_key: str,
        dest_key: str,
        *,
        source_bucket: str | None = None,
        dest_bucket: str | None = None,
        keys: CopyKeys = None,
    ) -> str:
        """Server-side copy keeping the object valid at its new name; returns the new ETag.

        ``keys`` (the read CMKs, or a callable returning them) are needed only for objects whose tag
        is bound to their name: its data key is unwrapped to re-bind the tag to ``dest_key``.
        """
        stored = self.head(source_key, bucket=source_bucket)
        target = self._bucket(dest_bucket)
        metadata = self._copied_metadata(stored, ObjectBinding(target.bucket_name, dest_key), keys)
        if stored.size <= self.config.multipart_threshold:
            headers = {"x-oss-copy-source-if-match": _quoted(stored.etag)}
            if metadata is None:
                headers["x-oss-metadata-directive"] = "COPY"
            else:
                headers.update(self._replace_headers(stored, metadata))
            try:
                result = self.config.retry.call(
                    lambda: target.copy_object(stored.bucket, source_key, dest_key, headers=headers),
                    what=f"CopyObject {stored.uri}",
                )
            except oss2.exceptions.PreconditionFailed as exc:
                raise ObjectChangedError(f"{stored.uri} changed during the copy; nothing was written") from exc
            return cast("str", result.etag)  # oss2 is untyped; its results carry the ETag as str
        copied = metadata if metadata is not None else stored.user_metadata
        return self._copy_by_parts(stored, target, dest_key, copied, purpose="copy")

    def _copied_metadata(
        self, stored: StoredObject, destination: ObjectBinding, keys: CopyKeys
    ) -> dict[str, str] | None:
        """The copy's user metadata when its tag must be re-bound; ``None`` when a plain COPY keeps it valid."""
        if not is_encrypted(stored.headers):
            return None
        envelope = parse_envelope(stored.headers, object_name=stored.uri)
        if envelope.integrity is None or not envelope.integrity.bound or destination == stored.binding:
            return None
        wrapper = keys() if callable(keys) else keys  # a CMK is not callable
        if wrapper is None:
            raise NoMatchingKeyError(
                f"{stored.uri}: its integrity tag is bound to its bucket and key, so a copy needs the tag "
                f"re-bound to {destination}, which needs a CMK that unwraps its data key (a plain OSS copy "
                f"would not verify under the new name)",
                remedy=read_cmk_remedy(envelope.wrapped),
            )
        reader = EnvelopeReader(
            stored.headers,
            wrapper,
            object_name=stored.uri,
            integrity_policy=IntegrityPolicy.REQUIRE,
            binding=stored.binding,
            object_size=stored.size,
        )
        tag = reader.rebind(destination)
        if tag is None:  # unreachable: the envelope was just checked to carry a bound tag
            raise IntegrityError(
                f"{stored.uri}: its integrity tag vanished while re-binding it for the copy; "
                f"re-read the object's headers and retry the copy"
            )
        metadata = dict(stored.user_metadata)
        metadata[INTEGRITY_HEADER] = tag.to_header_value()
        check_metadata_size(metadata, object_name=oss_uri(destination.bucket, destination.key))
        return metadata

    @staticmethod
    def _replace_headers(stored: StoredObject, metadata: Mapping[str, str]) -> dict[str, str]:
        """CopyObject REPLACE: the new user metadata (every CSE header unchanged) and the standard
        headers of the source, which REPLACE would otherwise drop."""
        headers = {"x-oss-metadata-directive": "REPLACE", **metadata}
        headers["Content-Type"] = stored.content_type or "application/octet-stream"
        for name in _KEPT_STANDARD_HEADERS:
            if name in stored.headers:
                headers[name] = stored.headers[name]
        return headers

    def _copy_by_parts(
        self, stored: StoredObject, target: oss2.Bucket, dest_key: str, metadata: Mapping[str, str], *, purpose: str
    ) -> str:
        """UploadPartCopy of the ciphertext ranges with ``metadata`` at Init, conditional on the ETag;
        ``purpose`` (``copy`` or ``rewrap``) is what the upload's marker part says it is for."""
        envelope = parse_envelope(metadata, object_name=stored.uri) if is_encrypted(metadata) else None
        part_size = envelope.part_size if envelope and envelope.part_size else None
        plan = plan_parts(stored.size, part_size or self.config.part_size)
        headers = dict(metadata)
        if envelope is not None:
            headers[DATA_SIZE_HEADER] = str(plan.total_size)
            headers[PART_SIZE_HEADER] = str(plan.part_size)
        if stored.content_type:
            headers["Content-Type"] = stored.content_type
        ranges = plan.byte_ranges()

        def unchanged() -> None:
            if self.head(stored.key, bucket=stored.bucket).etag != stored.etag:
                raise ObjectChangedError(f"{stored.uri} changed during the copy; nothing was written")

        try:
            outcome = run_multipart(
                target,
                dest_key,
                part_count=plan.part_count,
                send_part=copy_part_action(
                    target,
                    dest_key,
                    source_bucket=stored.bucket,
                    source_key=stored.key,
                    ranges=ranges,
                    part_headers=part_headers(headers),
                    source_etag=stored.etag,
                ),
                init_headers=headers,
                max_workers=self.config.max_workers,
                retry=self.config.retry,
                before_complete=unchanged,
                purpose=purpose,
            )
        except oss2.exceptions.PreconditionFailed as exc:
            raise ObjectChangedError(f"{stored.uri} changed during the operation; nothing was written") from exc
        except oss2.exceptions.OssError as exc:
            # A replaced source can fail a part copy in other ways too (e.g. 416 for a shorter object).
            if self._changed(stored):
                raise ObjectChangedError(f"{stored.uri} changed during the operation; nothing was written") from exc
            raise
        return outcome.etag

    # ----------------------------------------------------------------- rewrap
    @translated("rewrap")
    def rewrap(self, key: str, keys: Cmk, *, bucket: str | None = None, dry_run: bool = False) -> RewrapResult:
        """Re-wrap the data key under ``keys`` (a Keyring whose primary is the target CMK).

        Only the wrapped data key and IV (and the CMK identity/version headers) change: the data key,
        the content and the object's name stay, so its integrity tag stays valid as it is. One object:
        the key service's rewrap answer says whether it was current (``rewrap_many`` decides that from
        headers for a whole fleet).
        """
        plan = self._rewrap_plan(self.head(key, bucket=bucket), keys, None)
        if isinstance(plan, RewrapResult):
            return plan
        stored, wrapped = plan
        (moved,) = keys.rewrap_many([wrapped])  # native (Transit rewrap, KMS ReEncrypt) where it can be
        return self._rewrap_apply(stored, wrapped, keys, moved, dry_run)

    def _rewrap_plan(
        self, stored: StoredObject, keys: Cmk, latest_version: str | None
    ) -> RewrapResult | tuple[StoredObject, WrappedDataKey]:
        """The object's final result when its headers decide it (not encrypted: ``failed``; already
        under ``latest_version``, the target's newest as read once by a fleet run: ``already-current``),
        else what must be re-wrapped."""
        uri = stored.uri
        if not is_encrypted(stored.headers):
            return self._rewrap_failed(stored.key, stored.bucket, keys, f"{uri} is not client-side encrypted")
        envelope = parse_envelope(stored.headers, object_name=uri)
        envelope.check_object_size(stored.size, object_name=uri)
        if keys.is_current(envelope.wrapped, latest_version):
            version = keys.key_version(envelope.wrapped)
            return self._rewrap_result(stored, keys, "already-current", keys.reference, version, version)
        return stored, envelope.wrapped

    def _probe(self, key: str, bucket: str | None) -> tuple[StoredObject, bytes | None]:
        """One GET of the first :data:`REWRAP_PROBE_BYTES`: the headers a HEAD would give, and the
        whole ciphertext when the object is that small (``None`` otherwise)."""
        oss_bucket = self._bucket(bucket)
        crc_free = without_client_crc(oss_bucket)  # oss2 never compares a range's CRC

        def get() -> tuple[StoredObject, bytes | None]:
            result = crc_free.get_object(key, byte_range=(0, REWRAP_PROBE_BYTES - 1))
            body = result.read()
            content_range = result.headers.get("Content-Range") or ""
            total = int(content_range.rpartition("/")[2]) if "/" in content_range else len(body)
            stored = stored_object(oss_bucket.bucket_name, key, result.headers, total, result.etag)
            if len(body) != total:
                return stored, None
            check_received_crc(stored.uri, body, result.server_crc)  # the whole object: it goes back as it is
            return stored, body

        return self.config.retry.call(get, what=f"GET {key!r} (first bytes)")

    def _rewrap_apply(
        self,
        stored: StoredObject,
        wrapped: WrappedDataKey,
        keys: Cmk,
        moved: WrappedDataKey | OSSCSEError,
        dry_run: bool,
        body: bytes | None = None,
    ) -> RewrapResult:
        """Write ``moved`` (the re-wrapped data key) into the object's headers, conditional on its ETag
        (``body``: the whole ciphertext, when the caller already read it with the headers)."""
        if isinstance(moved, OSSCSEError):
            raise moved.for_object(stored.uri)
        from_cmk = keys.cmk_for(wrapped).reference
        from_version = keys.key_version(wrapped)
        to_version = keys.key_version(moved)
        if from_cmk == keys.reference and from_version == to_version:
            return self._rewrap_result(stored, keys, "already-current", from_cmk, from_version, to_version)
        if dry_run:
            return self._rewrap_result(stored, keys, "would-rewrap", from_cmk, from_version, to_version)
        envelope = parse_envelope(stored.headers, object_name=stored.uri)
        others = {k: v for k, v in stored.user_metadata.items() if not k.startswith((CSE_PREFIX, OSSCSE_PREFIX))}
        # Everything but the wrapped data key is kept, the integrity tag included (same data key, same name).
        metadata = rewrapped_metadata(envelope, moved, user_metadata=others, object_name=stored.uri)
        try:
            if stored.size <= REWRAP_BY_PUT_LIMIT:
                self._rewrap_by_put(stored, metadata, body)
            else:
                self._copy_by_parts(stored, self._bucket(stored.bucket), stored.key, metadata, purpose="rewrap")
        except ObjectChangedError as exc:
            return self._rewrap_result(stored, keys, "failed", from_cmk, from_version, to_version, str(exc))
        return self._rewrap_result(stored, keys, "rewrapped", from_cmk, from_version, to_version)

    @staticmethod
    def _rewrap_result(
        stored: StoredObject,
        keys: Cmk,
        status: str,
        from_cmk: str | None,
        from_version: str | None,
        to_version: str | None,
        error: str | None = None,
    ) -> RewrapResult:
        return RewrapResult(
            uri=stored.uri,
            bucket=stored.bucket,
            key=stored.key,
            to_cmk=keys.reference,
            status=status,
            from_cmk=from_cmk,
            from_version=from_version,
            to_version=to_version,
            error=error,
        )

    def _rewrap_failed(self, key: str, bucket: str | None, keys: Cmk, error: object) -> RewrapResult:
        """A ``failed`` result for an object whose rewrap raised (the error kept) or that is not encrypted."""
        name = bucket if bucket is not None else self._bucket(None).bucket_name
        return RewrapResult(
            uri=oss_uri(name, key),
            bucket=name,
            key=key,
            to_cmk=keys.reference,
            status="failed",
            from_cmk=None,
            from_version=None,
            to_version=None,
            error=str(error),
            exception=error if isinstance(error, BaseException) else None,
        )

    def _rewrap_by_put(self, stored: StoredObject, metadata: Mapping[str, str], body: bytes | None = None) -> None:
        """PUT the ciphertext back with the new headers and the standard headers the object had;
        the ciphertext read with the headers (``body``), else by a GET If-Match the ETag the plan was
        made from. Nothing is decrypted."""
        bucket = self._bucket(stored.bucket)
        condition = {"If-Match": _quoted(stored.etag)}
        if body is None:
            crc_free = without_client_crc(bucket)

            def get() -> bytes:
                result = crc_free.get_object(stored.key, headers=condition)
                data: bytes = result.read()
                check_received_crc(stored.uri, data, result.server_crc)  # the bytes go back as they are
                return data

            try:
                body = self.config.retry.call(get, what=f"GET {stored.uri}")
            except oss2.exceptions.PreconditionFailed as exc:
                raise ObjectChangedError(f"{stored.uri} changed during the rewrap; nothing was written") from exc
        if len(body) != stored.size:
            raise ObjectChangedError(f"{stored.uri} changed during the rewrap (size); nothing was written")
        headers = self._replace_headers(stored, metadata)
        del headers["x-oss-metadata-directive"]
        headers.update(condition)  # honoured where the service supports conditional writes
        try:
            put_object_checked(bucket, stored.key, body, headers, retry=self.config.retry, what=f"PUT {stored.uri}")
        except oss2.exceptions.PreconditionFailed as exc:
            raise ObjectChangedError(f"{stored.uri} changed during the rewrap; nothing was written") from exc


def _quoted(etag: str) -> str:
    return etag if etag.startswith('"') else f'"{etag}"'
