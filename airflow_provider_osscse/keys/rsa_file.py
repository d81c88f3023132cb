"""``rsa-file:///absolute/path/key.pem``: a local RSA key (a public key alone is encrypt-only)."""

from __future__ import annotations

from collections.abc import Mapping

from airflow_provider_osscse.envelope.matdesc import MATDESC_CMK
from airflow_provider_osscse.envelope.errors import CmkReferenceError, KeyNotFoundError
from airflow_provider_osscse.envelope.keywrap import KeyWrapper
from airflow_provider_osscse.keys.rsa_pem import normalize_rsa_pem, split_pem_file



def rsa_identity(fingerprint: str) -> str:
    """matdesc value for an RSA key: the SHA-256 of its public key, valid in every deployment."""
    return f"rsa-sha256:{fingerprint}"


def load_rsa_file_key(
    path: str, *, reference: str | None = None, matdesc: Mapping[str, str] | None = None
) -> KeyWrapper:
    """Read ``path`` (PKCS#1, PKCS#8 or X.509 PEM) into a ``LocalRsaKey``."""
    from airflow_provider_osscse.keys.local_rsa import LocalRsaKey

    reference = reference or f"rsa-file://{path}"
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise KeyNotFoundError(f"CMK {reference}: no key file at {path}") from None
    except OSError as exc:
        raise KeyNotFoundError(f"CMK {reference}: cannot read {path} ({exc.strerror})") from None
    private, public = split_pem_file(data)
    try:
        pair = normalize_rsa_pem(private, public, source=f"CMK {reference}")
    except ValueError as exc:
        raise CmkReferenceError(str(exc)) from None
    entries = dict(matdesc or {})
    entries[MATDESC_CMK] = rsa_identity(pair.fingerprint)
    return LocalRsaKey(
        private_key_pem=pair.private_pem, public_key_pem=pair.public_pem, reference=reference, matdesc=entries
    )
