"""Reading RSA keys in PKCS#1, PKCS#8 and X.509 (SubjectPublicKeyInfo) PEM forms.

Users bring keys in whatever form their tooling writes (``openssl genrsa`` → PKCS#1, ``openssl
genpkey`` → PKCS#8, public keys as X.509 SPKI or PKCS#1). This normalizes them once with
``cryptography`` to PKCS#8 / SPKI PEM for :class:`LocalRsaKey`, registers every PEM string with the
masker, and names the key by a fingerprint of its public half (non-secret, identical in every
deployment, different for every key pair).

:func:`rsa_identity` is the one place that name is computed: :class:`LocalRsaKey` derives its own
identity from its public key with it, so a key read from a file, from Vault KV or freshly generated
writes and claims the same ``x-oss-meta-osscse-cmk`` value.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from airflow_provider_osscse.exceptions import InvalidKeyMaterialError
from airflow_provider_osscse.keys.masking import mask_strings

#: Prefix of an RSA CMK's identity; the rest is :func:`rsa_fingerprint` of its public key.
RSA_IDENTITY_PREFIX = "rsa-sha256:"


def rsa_fingerprint(public_key: rsa.RSAPublicKey) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo, first 32 hex digits (the form earlier versions wrote).

    Independent of the PEM form the key arrived in (PKCS#1 or SPKI, private or public half).
    """
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:32]


def rsa_identity(public_key: rsa.RSAPublicKey) -> str:
    """The CMK identity of an RSA key (``rsa-sha256:<fingerprint>``): non-secret, valid in every deployment."""
    return RSA_IDENTITY_PREFIX + rsa_fingerprint(public_key)


@dataclass(frozen=True, repr=False)
class RsaPemPair:
    """Normalized PEM bytes; ``private_pem`` is ``None`` for an encrypt-only (public) key."""

    private_pem: bytes | None
    public_pem: bytes
    fingerprint: str

    def __repr__(self) -> str:
        return f"RsaPemPair(fingerprint={self.fingerprint!r}, private={'yes' if self.private_pem else 'no'})"

    def __reduce__(self):
        raise TypeError("RsaPemPair may hold a private key and cannot be pickled")


def normalize_rsa_pem(private_pem: bytes | None, public_pem: bytes | None, *, source: str) -> RsaPemPair:
    """Parse either half (or both, checked to belong together); raise
    :class:`~airflow_provider_osscse.exceptions.InvalidKeyMaterialError` naming ``source``."""
    if private_pem:
        mask_strings([private_pem.decode("ascii", "replace")])
    private_key = None
    if private_pem:
        try:
            private_key = serialization.load_pem_private_key(private_pem, password=None)
        except (ValueError, TypeError):
            raise InvalidKeyMaterialError(f"{source}: the private key is not an unencrypted RSA PEM key") from None
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise InvalidKeyMaterialError(f"{source}: the private key is not an RSA key")
    public_key = private_key.public_key() if private_key else None
    if public_pem:
        try:
            given = serialization.load_pem_public_key(public_pem)
        except (ValueError, TypeError):
            raise InvalidKeyMaterialError(f"{source}: the public key is not an RSA PEM public key") from None
        if not isinstance(given, rsa.RSAPublicKey):
            raise InvalidKeyMaterialError(f"{source}: the public key is not an RSA key")
        if public_key is not None and given.public_numbers() != public_key.public_numbers():
            raise InvalidKeyMaterialError(f"{source}: the public key does not belong to the private key")
        public_key = given
    if public_key is None:
        raise InvalidKeyMaterialError(f"{source}: no RSA key found")
    spki = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    normalized_private = None
    if private_key is not None:
        normalized_private = private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        mask_strings([normalized_private.decode("ascii")])
    return RsaPemPair(normalized_private, spki, rsa_fingerprint(public_key))


def split_pem_file(data: bytes) -> tuple[bytes | None, bytes | None]:
    """A PEM file may hold a private key, a public key, or both: return (private, public) blocks."""
    private: bytes | None = None
    public: bytes | None = None
    text = data.decode("ascii", "replace")
    for block in text.split("-----BEGIN ")[1:]:
        pem = ("-----BEGIN " + block).strip().encode("ascii") + b"\n"
        header = block.split("-----", 1)[0]
        if "PRIVATE KEY" in header:
            private = pem
        elif "PUBLIC KEY" in header:
            public = pem
    return private, public
