"""Re-wrap an object's data key without touching its content.

Rotating a CMK (or moving objects to another CMK) only changes the wrapped key and IV in the
object's metadata; the ciphertext stays. Rewrap is a method of every CMK
(:meth:`Cmk.rewrap_from <airflow_provider_osscse.envelope.keywrap.Cmk.rewrap_from>`), and keyrings
and caches delegate it, so each path keeps the data key as hidden as the services allow whatever
wraps the CMKs:

* same Vault Transit key → Vault ``rewrap`` (the data key never leaves Vault);
* same KMS endpoint → KMS ``ReEncrypt`` (the data key never leaves KMS);
* anything else (RSA → Vault, KMS → Vault, Vault → KMS, ...) → unwrap then wrap, in memory, once.
"""

from __future__ import annotations

from airflow_provider_osscse.envelope.keywrap import Cmk, WrappedDataKey


def rewrap_to_latest(wrapped: WrappedDataKey, cmk: Cmk) -> WrappedDataKey:
    """Re-wrap under the newest version of the CMK that wrapped it (Transit rewrap, KMS ReEncrypt)."""
    return cmk.rewrap(wrapped)


def rewrap_data_key(wrapped: WrappedDataKey, *, source: Cmk, target: Cmk) -> WrappedDataKey:
    """Move ``wrapped`` from ``source`` to ``target``, natively when both live in the same service."""
    return target.rewrap_from(wrapped, source)
