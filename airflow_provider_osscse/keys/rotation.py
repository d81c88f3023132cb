"""Re-wrap an object's data key without touching its content.

Rotating a CMK (or moving objects to another CMK) only changes the wrapped key and IV in the
object's metadata; the ciphertext stays. Rewrap is a method of every CMK
(:meth:`Cmk.rewrap_from <airflow_provider_osscse.envelope.keywrap.Cmk.rewrap_from>`), and keyrings
and caches delegate it, so each path keeps the data key as hidden as the services allow whatever
wraps the CMKs:

* same Vault Transit key → Vault ``rewrap`` (the data key never leaves Vault);
* same KMS endpoint → KMS ``ReEncrypt`` (the data key never leaves KMS);
* anything else (RSA → Vault, KMS → Vault, Vault → KMS, ...) → unwrap then wrap, in memory, once.

At fleet scale (issue 13) a rotation first asks each object's headers whether it is already under the
CMK's newest version (:meth:`Cmk.is_current`, against :meth:`Cmk.latest_version`, read once per
run), so a re-run over current objects makes no per-object key-service call;
the stale ones go to :meth:`Cmk.rewrap_many` in groups (one Transit ``rewrap`` per
``TRANSIT_BATCH_OBJECTS`` objects; KMS has no batch API: one ``ReEncrypt`` per object).
"""

from __future__ import annotations

from airflow_provider_osscse.envelope.keywrap import Cmk, WrappedDataKey


def rewrap_to_latest(wrapped: WrappedDataKey, cmk: Cmk) -> WrappedDataKey:
    """Re-wrap under the newest version of the CMK that wrapped it (Transit rewrap, KMS ReEncrypt)."""
    return cmk.rewrap(wrapped)


def rewrap_data_key(wrapped: WrappedDataKey, *, source: Cmk, target: Cmk) -> WrappedDataKey:
    """Move ``wrapped`` from ``source`` to ``target``, natively when both live in the same service."""
    return target.rewrap_from(wrapped, source)
