"""A CMK that is an RSA key pair held locally (or handed over by another provider, e.g. Vault KV).

Wrap-alg ``RSA/NONE/PKCS1Padding``: RSAES-PKCS1-v1_5 over the raw 32 data-key bytes and, separately,
the raw 16 IV bytes, exactly like oss2's ``RsaProvider`` and the Java/Go/v2 SDKs. A public key alone
can encrypt; decrypting needs the private key.

Identity: every key names itself ``rsa-sha256:<fingerprint of its public key>`` (``keys.rsa_pem``),
written to the object's ``x-oss-meta-osscse-cmk`` header, never into the matdesc; the matdesc holds
only what the user configured, so oss2's ``RsaProvider(key_pair)`` and the v2 SDK's
``MasterRsaCipher`` built without a matdesc read the objects. The identity depends on the public key
only: the same pair read from a file, from Vault KV or a public half alone writes the same name.

Key size: moduli under 2048 bits (NIST SP 800-131A's floor) are refused: a 512-bit modulus is
factored in hours, exposing every data key it ever wrapped, and 1024 bits is within reach too.
Reading objects that an old weak key already protects is an explicit opt-in
(``allow_weak_key_for_unwrap=True``), logged at WARNING on every use, and such a key still never
wraps, so the way out is to rewrap those objects under a strong key.

Wrong-key detection: OpenSSL 3.2+ answers a bad PKCS#1 v1.5 padding with *implicit rejection*
(a pseudo-random message instead of an error), so an unwrap is only accepted when the key is exactly
32 bytes, the IV exactly 16 bytes and the IV's bytes 8..11 are zero (every SDK writes them so). A
wrong key passes all three with probability below 2^-40; the integrity tag then catches the rest.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import NoReturn

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from airflow_provider_osscse.envelope.aes_ctr import iv_from_legacy_counter
from airflow_provider_osscse.envelope.headers import WRAP_ALG_RSA_OAEP, WRAP_ALG_RSA_PKCS1
from airflow_provider_osscse.envelope.keywrap import (
    DATA_KEY_SIZE,
    IV_SIZE,
    Cmk,
    DataKey,
    WrappedDataKey,
)
from airflow_provider_osscse.exceptions import (
    CmkReferenceError,
    KeyUnwrapError,
    PublicKeyOnlyError,
    WeakRsaKeyError,
)
from airflow_provider_osscse.keys.identified_cmk import ConfiguredCmk
from airflow_provider_osscse.keys.rsa_pem import RsaKeys, load_rsa_keys, rsa_identity

log = logging.getLogger(__name__)

#: Smallest RSA modulus this package wraps data keys with, and reads with unless told otherwise.
MIN_RSA_KEY_BITS = 2048


class LocalRsaKey(ConfiguredCmk):
    """An RSA CMK from PEM bytes (PKCS#1, PKCS#8 or X.509/SubjectPublicKeyInfo)."""

    wrap_alg = WRAP_ALG_RSA_PKCS1

    def __init__(
        self,
        *,
        private_key_pem: bytes | None = None,
        public_key_pem: bytes | None = None,
        keys: RsaKeys | None = None,
        reference: str = "rsa-local",
        matdesc: Mapping[str, str] | None = None,
        allow_weak_key_for_unwrap: bool = False,
    ) -> None:
        """From PEM bytes (either half or both), or from ``keys`` that
        :func:`~airflow_provider_osscse.keys.rsa_pem.load_rsa_keys` already parsed: key files and Vault
        KV secrets come that way, so each load validates the private key once (~0.3 s at 2048 bits).

        ``allow_weak_key_for_unwrap``: accept a key under :data:`MIN_RSA_KEY_BITS` for *reading*
        objects it already protects (each unwrap logs a WARNING); it still refuses to wrap."""
        if keys is None:
            if private_key_pem is None and public_key_pem is None:
                raise CmkReferenceError(f"RSA CMK {reference!r} needs a private or a public key PEM")
            keys = load_rsa_keys(private_key_pem, public_key_pem, source=f"RSA CMK {reference!r}")
        elif private_key_pem is not None or public_key_pem is not None:
            raise CmkReferenceError(f"RSA CMK {reference!r}: give either the PEMs or the parsed keys, not both")
        self._private = keys.private_key
        self._public = keys.public_key
        self._configure(reference=reference, matdesc=matdesc)
        self._identity = rsa_identity(self._public)
        if self.is_weak and not allow_weak_key_for_unwrap:
            raise WeakRsaKeyError(
                f"RSA CMK {reference!r} is a {self.key_size}-bit key; at least {MIN_RSA_KEY_BITS} bits are "
                f"required. Write with a new key of {MIN_RSA_KEY_BITS} bits or more (e.g. `openssl genrsa "
                f"-out cmk.pem 3072`). To read objects this key already protects, opt in with "
                f"allow_weak_key_for_unwrap=True, then rewrap them under the new key"
            )

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        reference: str | None = None,
        matdesc: Mapping[str, str] | None = None,
        allow_weak_key_for_unwrap: bool = False,
    ) -> LocalRsaKey:
        """Load a PEM file holding a private key (any form) or only a public key."""
        with open(path, "rb") as handle:
            pem = handle.read()
        ref = reference or f"rsa-file:{os.fspath(path)}"
        if b"PRIVATE KEY" in pem:
            return cls(
                private_key_pem=pem, reference=ref, matdesc=matdesc, allow_weak_key_for_unwrap=allow_weak_key_for_unwrap
            )
        return cls(
            public_key_pem=pem, reference=ref, matdesc=matdesc, allow_weak_key_for_unwrap=allow_weak_key_for_unwrap
        )

    @classmethod
    def generate(
        cls,
        bits: int = 2048,
        *,
        reference: str = "rsa-local",
        matdesc: Mapping[str, str] | None = None,
        allow_weak_key_for_unwrap: bool = False,
    ) -> LocalRsaKey:
        """A fresh key pair (tests, demos); export it with :meth:`private_key_pem` to keep it."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        return cls(
            keys=RsaKeys(key, key.public_key()),
            reference=reference,
            matdesc=matdesc,
            allow_weak_key_for_unwrap=allow_weak_key_for_unwrap,
        )

    def private_key_pem(self) -> bytes:
        """PKCS#8 PEM of the private key (secret: never log it)."""
        if self._private is None:
            raise PublicKeyOnlyError(f"RSA CMK {self._reference!r} has only a public key")
        return self._private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def public_key_pem(self) -> bytes:
        """X.509 SubjectPublicKeyInfo PEM of the public key."""
        return self._public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def __reduce__(self) -> NoReturn:
        raise TypeError("LocalRsaKey holds a private key and cannot be pickled")

    @property
    def identity(self) -> str:
        """``rsa-sha256:<fingerprint>`` of the public key (the same for the pair and its public half)."""
        return self._identity

    @property
    def key_size(self) -> int:
        """Modulus size in bits."""
        return self._public.key_size

    @property
    def is_weak(self) -> bool:
        """Whether the modulus is under :data:`MIN_RSA_KEY_BITS` (such a key never wraps)."""
        return self.key_size < MIN_RSA_KEY_BITS

    @property
    def can_unwrap(self) -> bool:
        """Whether the private key is present."""
        return self._private is not None

    def _refuse_weak_wrap(self) -> None:
        if self.is_weak:
            raise WeakRsaKeyError(
                f"RSA CMK {self._reference!r} is a {self.key_size}-bit key: it may only read existing objects "
                f"(allow_weak_key_for_unwrap) and never wraps new data keys. Write with a key of at least "
                f"{MIN_RSA_KEY_BITS} bits (e.g. `openssl genrsa -out cmk.pem 3072`)"
            )

    def wrap(self, data_key: DataKey) -> WrappedDataKey:
        self._refuse_weak_wrap()
        return WrappedDataKey(
            wrap_alg=self.wrap_alg,
            wrapped_key=self._public.encrypt(data_key.key, padding.PKCS1v15()),
            wrapped_iv=self._public.encrypt(data_key.iv, padding.PKCS1v15()),
            matdesc=self._matdesc,
            cmk_identity=self._identity,
        )

    def wrap_ivs(
        self, key_bytes: bytes, ivs: Sequence[bytes], *, reuse: WrappedDataKey | None = None
    ) -> list[WrappedDataKey]:
        """Encrypt each IV (and the data key once, unless ``reuse`` carries it); no service involved."""
        self._refuse_weak_wrap()
        if reuse is not None and reuse.wrap_alg != self.wrap_alg:
            raise ValueError(f"RSA CMK {self._reference!r}: 'reuse' has wrap-alg {reuse.wrap_alg!r}")
        wrapped_key = reuse.wrapped_key if reuse is not None else self._public.encrypt(key_bytes, padding.PKCS1v15())
        return [
            WrappedDataKey(
                self.wrap_alg,
                wrapped_key,
                self._public.encrypt(iv, padding.PKCS1v15()),
                self._matdesc,
                cmk_identity=self._identity,
            )
            for iv in ivs
        ]

    def rewrap_from(self, wrapped: WrappedDataKey, source: Cmk) -> WrappedDataKey:
        """Refused up front for a weak key (rather than after an unwrap that could never be used)."""
        self._refuse_weak_wrap()
        return super().rewrap_from(wrapped, source)

    def matches(self, wrapped: WrappedDataKey) -> bool:
        """By identity when the object names one, else (official SDKs) by the configured matdesc.

        Also claims oss2's OAEP objects (read only; the core gates them behind ``allow_legacy``),
        which never name an identity: the object's matdesc must hold this CMK's matdesc entries.
        """
        if wrapped.wrap_alg == WRAP_ALG_RSA_OAEP:
            if wrapped.cmk_identity is not None:
                return wrapped.cmk_identity == self._identity
            return all(wrapped.matdesc.get(k) == v for k, v in self._matdesc.items())
        return super().matches(wrapped)

    def unwrap(self, wrapped: WrappedDataKey) -> DataKey:
        if self._private is None:
            raise PublicKeyOnlyError(
                f"RSA CMK {self._reference!r} has only a public key: unwrapping needs the private key"
            )
        if self.is_weak:  # constructed only with allow_weak_key_for_unwrap=True
            log.warning(
                "RSA CMK %r is a %d-bit key, under the %d-bit minimum: unwrapping with it only because "
                "allow_weak_key_for_unwrap is set. Rewrap the objects it protects under a stronger key.",
                self._reference,
                self.key_size,
                MIN_RSA_KEY_BITS,
            )
        if wrapped.wrap_alg == WRAP_ALG_RSA_PKCS1:
            key = self._decrypt(wrapped.wrapped_key, padding.PKCS1v15())
            iv = self._decrypt(wrapped.wrapped_iv, padding.PKCS1v15())
        elif wrapped.wrap_alg == WRAP_ALG_RSA_OAEP:
            # oss2's legacy OAEP objects were written with SHA-1 (read only, behind allow_legacy).
            oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)  # noqa: S303
            key = self._decrypt(wrapped.wrapped_key, oaep)
            iv = self._decrypt(wrapped.wrapped_iv, oaep)
            if len(iv) != IV_SIZE:
                try:
                    iv = iv_from_legacy_counter(iv)  # oss2 2.5–2.10: decimal start counter
                except ValueError:
                    raise KeyUnwrapError(self._mismatch()) from None
        else:
            raise KeyUnwrapError(f"RSA CMK {self._reference!r} cannot unwrap wrap-alg {wrapped.wrap_alg!r}")
        if len(key) != DATA_KEY_SIZE or len(iv) != IV_SIZE:
            raise KeyUnwrapError(self._mismatch())
        if wrapped.wrap_alg == WRAP_ALG_RSA_PKCS1 and iv[8:12] != b"\x00\x00\x00\x00":
            raise KeyUnwrapError(self._mismatch())
        return DataKey(key=key, iv=iv)

    def _public_only(self) -> str:
        return f"RSA CMK {self._reference!r} has only a public key: unwrapping needs the private key"

    def _decrypt(self, ciphertext: bytes, pad: padding.AsymmetricPadding) -> bytes:
        if self._private is None:  # unwrap() checks first; this keeps _decrypt safe on its own
            raise PublicKeyOnlyError(
                f"RSA CMK {self._reference!r} has only a public key: unwrapping needs the private key"
            )
        if len(ciphertext) != self._private.key_size // 8:
            raise KeyUnwrapError(self._mismatch())
        try:
            return self._private.decrypt(ciphertext, pad)
        except ValueError:
            raise KeyUnwrapError(self._mismatch()) from None

    def _mismatch(self) -> str:
        return (
            f"RSA CMK {self._reference!r} could not unwrap the data key: the object was encrypted "
            f"under a different key (check the matdesc / key reference) or its wrapped values are corrupt"
        )
