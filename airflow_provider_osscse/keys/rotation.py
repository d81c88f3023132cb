"""Re-wrap an object's data key without touching its content.

Rotating a CMK (or moving objects to another CMK) only changes the wrapped key and IV in the
object's metadata; the ciphertext stays. Each path keeps the data key as hidden as the services
allow:

* same Vault Transit key → Vault ``rewrap`` (the data key never leaves Vault);
* same KMS endpoint → KMS ``ReEncrypt`` (the data key never leaves KMS);
* anything else (RSA → Vault, KMS → Vault, Vault → KMS, ...) → unwrap then wrap, in memory, once.
"""

from __future__ import annotations

from airflow_provider_osscse.envelope.keywrap import Cmk, WrappedDataKey


def rewrap_to_latest(wrapped: WrappedDataKey, cmk: Cmk) -> WrappedDataKey:
    """Re-wrap under the newest version of the CMK that wrapped it (Transit rewrap, KMS ReEncrypt)."""
    return cmk.rewrap(wrapped)


def rewrap_data_key(
    wrapped: WrappedDataKey, *, source: Cmk, target: Cmk
) -> WrappedDataKey:
    """Move ``wrapped`` from ``source`` to ``target``, natively when both live in the same service."""
    from airflow_provider_osscse.keys.alicloud_kms import AlicloudKmsKey
    from airflow_provider_osscse.keys.vault_transit import VaultTransitKey

    if isinstance(source, VaultTransitKey) and isinstance(target, VaultTransitKey):
        if source.identity == target.identity:
            return target.rewrap(wrapped)
    if isinstance(source, AlicloudKmsKey) and isinstance(target, AlicloudKmsKey):
        if source.shares_service_with(target):
            return target.reencrypt_from(wrapped, source=source)
    return target.wrap(source.unwrap(wrapped))
