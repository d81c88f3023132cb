"""The envelope core: the OSS client-side-encryption format, AES-256-CTR and the integrity tag.

Pure (no network, no Airflow). The transport layer calls two classes:

**Writing** — :class:`EnvelopeWriter` (one object; a fresh data key wrapped once by a
:class:`Cmk`)::

    writer = EnvelopeWriter(cmk, object_name=key)
    tag = writer.compute_integrity(path)  # or spool_encrypt() for one-shot streams
    headers = writer.metadata(plaintext_length=size, integrity=tag, user_metadata={...})
    body = writer.encrypt_chunks(path)  # iterator of ciphertext chunks

    plan = plan_parts(size, part_size)  # multipart
    tag = writer.compute_integrity(path, segment_size=plan.part_size)
    headers = writer.metadata(part_plan=plan, integrity=tag)  # Init and every UploadPart
    writer.encrypt_part(plan, n, data)  # any order, any thread
    # or: builder = writer.integrity_builder(plan.part_size)
    #     builder.segment_mac(n - 1, data)  # per part
    #     writer.finish_integrity(builder, size)

:func:`encrypt_object` is the single-PUT shortcut.

**Reading** — :class:`EnvelopeReader` (metadata + a CMK, a list of CMKs, or a resolver callable)::

    reader = EnvelopeReader(headers, cmks, object_name=key, binding=ObjectBinding(bucket, key))
    for chunk in reader.decrypt_chunks(body):
        ...  # whole object, tag verified first
    reader.status  # verified / unauthenticated / skipped
    plan = reader.plan_range("bytes=-100", object_size)  # GET plan.http_range, then
    reader.decrypt_chunks(ranged_body, range_plan=plan)

:func:`decrypt_object` is the whole-object shortcut. Errors live in ``airflow_provider_osscse.exceptions``.
"""

from airflow_provider_osscse.envelope.aes_ctr import CEK_ALG_AES_CTR
from airflow_provider_osscse.envelope.headers import (
    WRAP_ALG_KMS,
    WRAP_ALG_RSA_PKCS1,
    WRAP_ALG_VAULT_TRANSIT,
    Envelope,
    is_encrypted,
    parse_envelope,
)
from airflow_provider_osscse.envelope.integrity import (
    INTEGRITY_HEADER,
    IntegrityPolicy,
    IntegrityStatus,
    IntegrityTag,
    ObjectBinding,
)
from airflow_provider_osscse.envelope.keywrap import Cmk, DataKey, DataKeyRequest, WrappedDataKey
from airflow_provider_osscse.envelope.multipart import PartPlan, plan_parts
from airflow_provider_osscse.envelope.ranges import RangePlan, plan_range
from airflow_provider_osscse.envelope.reader import EnvelopeReader, decrypt_object
from airflow_provider_osscse.envelope.writer import EncryptedObject, EnvelopeWriter, encrypt_object

#: The public surface of the envelope core; the building blocks (counter arithmetic, ciphers,
#: MAC builders, header normalisation, matdesc JSON) stay in their modules.
__all__ = [
    "CEK_ALG_AES_CTR",
    "INTEGRITY_HEADER",
    "WRAP_ALG_KMS",
    "WRAP_ALG_RSA_PKCS1",
    "WRAP_ALG_VAULT_TRANSIT",
    "Cmk",
    "DataKey",
    "DataKeyRequest",
    "EncryptedObject",
    "Envelope",
    "EnvelopeReader",
    "EnvelopeWriter",
    "IntegrityPolicy",
    "IntegrityStatus",
    "IntegrityTag",
    "ObjectBinding",
    "PartPlan",
    "RangePlan",
    "WrappedDataKey",
    "decrypt_object",
    "encrypt_object",
    "is_encrypted",
    "parse_envelope",
    "plan_parts",
    "plan_range",
]
