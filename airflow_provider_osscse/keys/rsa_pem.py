"""Reading RSA keys in PKCS#1, PKCS#8 and X.509 (SubjectPublicKeyInfo) PEM forms.

Users bring keys in whatever form their tooling writes (``openssl genrsa`` → PKCS#1, ``openssl
genpkey`` → PKCS#8, public keys as X.509 SPKI or PKCS#1). :func:`load_rsa_keys` is the package's
one RSA PEM loader: it parses them with ``cryptography``, validating a private key once per load
(~0.3 s at 2048 bits, seconds at 4096), and :class:`LocalRsaKey` takes the parsed keys. Key files and
Vault KV secrets go through :func:`normalize_rsa_pem`, which also registers every private PEM form with
the masker. The key is named by a fingerprint of its public half (non-secret, identical in every
deployment, different for every key pair).

:func:`rsa_identity` is the one place that name is computed: :class:`LocalRsaKey` derives its own
identity from its public key with it, so a key read from a file, from Vault KV or freshly generated
writes and claims the same ``x-oss-meta-osscse-cmk`` value.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import NoReturn

from cryptography.exceptions import UnsupportedAlgorithm
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
class RsaKeys:
    """A parsed RSA key: ``private_key`` is ``None`` for an encrypt-only (public) key.

    What :func:`load_rsa_keys` returns, so that a caller that already parsed (and so validated) a PEM
    hands the key objects on instead of the PEM: validating an RSA private key costs ~0.3 s at 2048
    bits and seconds at 4096, and must happen once per CMK load, not once per layer.
    """

    private_key: rsa.RSAPrivateKey | None
    public_key: rsa.RSAPublicKey

    def __repr__(self) -> str:
        private = "yes" if self.private_key else "no"
        return f"RsaKeys(fingerprint={rsa_fingerprint(self.public_key)!r}, private={private})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("RsaKeys may hold a private key and cannot be pickled")


@dataclass(frozen=True, repr=False)
class RsaPemPair:
    """Normalized PEM bytes; ``private_pem`` is ``None`` for an encrypt-only (public) key.

    ``keys`` are the parsed keys the PEMs were written from: build the CMK from them
    (``LocalRsaKey.from_keys``) rather than from the PEMs, which would validate the private key again.
    """

    private_pem: bytes | None
    public_pem: bytes
    fingerprint: str
    keys: RsaKeys

    def __repr__(self) -> str:
        return f"RsaPemPair(fingerprint={self.fingerprint!r}, private={'yes' if self.private_pem else 'no'})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("RsaPemPair may hold a private key and cannot be pickled")


#: What ``cryptography`` raises for a PEM it cannot use: malformed or encrypted (``ValueError``), a
#: password given or missing (``TypeError``), or a key type it does not know (``UnsupportedAlgorithm``,
#: which is not a ``ValueError``).
_UNUSABLE_PEM = (ValueError, TypeError, UnsupportedAlgorithm)


def load_rsa_keys(private_pem: bytes | None, public_pem: bytes | None, *, source: str) -> RsaKeys:
    """Parse either half (or both, checked to belong together), validating the private key once.

    The one RSA PEM loader of the package (``LocalRsaKey``, key files and Vault KV secrets all come
    through it). Raises :class:`~airflow_provider_osscse.exceptions.InvalidKeyMaterialError` naming
    ``source`` and what is wrong, never the key material.
    """
    private_key = None
    if private_pem:
        try:
            loaded = serialization.load_pem_private_key(private_pem, password=None)
        except _UNUSABLE_PEM:
            raise InvalidKeyMaterialError(f"{source}: the private key is not an unencrypted RSA PEM key") from None
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise InvalidKeyMaterialError(f"{source}: the private key is not an RSA key")
        private_key = loaded
    public_key = private_key.public_key() if private_key else None
    if public_pem:
        try:
            given = serialization.load_pem_public_key(public_pem)  # SubjectPublicKeyInfo and PKCS#1
        except _UNUSABLE_PEM:
            raise InvalidKeyMaterialError(f"{source}: the public key is not an RSA PEM public key") from None
        if not isinstance(given, rsa.RSAPublicKey):
            raise InvalidKeyMaterialError(f"{source}: the public key is not an RSA key")
        if public_key is not None and given.public_numbers() != public_key.public_numbers():
            raise InvalidKeyMaterialError(f"{source}: the public key does not belong to the private key")
        public_key = given
    if public_key is None:
        raise InvalidKeyMaterialError(f"{source}: no RSA key found")
    return RsaKeys(private_key, public_key)


def normalize_rsa_pem(private_pem: bytes | None, public_pem: bytes | None, *, source: str) -> RsaPemPair:
    """:func:`load_rsa_keys`, then PKCS#8 / SPKI PEM of the result, every private PEM form masked.

    Raises :class:`~airflow_provider_osscse.exceptions.InvalidKeyMaterialError` naming ``source``.
    """
    if private_pem:
        mask_strings([private_pem.decode("ascii", "replace")])
    keys = load_rsa_keys(private_pem, public_pem, source=source)
    spki = keys.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    normalized_private = None
    if keys.private_key is not None:
        normalized_private = keys.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        mask_strings([normalized_private.decode("ascii")])
    return RsaPemPair(normalized_private, spki, rsa_fingerprint(keys.public_key), keys)


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
