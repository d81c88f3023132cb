"""The data keys and IVs of encrypted objects, unwrapped without this project's code.

The leak scan must know what to look for, and must not ask the code under test: a provider bug that
unwrapped to the wrong bytes, or that logged the key it was asked for, would then hide itself. So this
module lists the objects with oss2, reads their envelope headers as ``docs/envelope-format.md`` specifies
them (``x-oss-meta-client-side-encryption-key``, ``-start``, ``-cek-alg``, ``-wrap-alg``; the CMK is
named by ``x-oss-meta-osscse-cmk``), and unwraps with the key services' own clients:

- ``VAULT/TRANSIT``: hvac's ``transit.decrypt_data`` (the header is base64 of ``vault:vN:...``);
- ``RSA/NONE/PKCS1Padding``: ``cryptography``'s PKCS#1 v1.5 decryption with each private key given (a
  Vault KV key read with hvac, or a local PEM file); the right key is the one that yields a 32-byte key
  and a 16-byte IV whose bytes 8..11 are zero (the format's invariant);
- ``KMS/ALICLOUD``: the KMS Tea SDK's ``Decrypt`` of the header (the ``CiphertextBlob``).

It also lists the secret parts of an RSA private key (its private numbers, the lines of its PEM text),
so that the key a Vault KV CMK holds is looked for as well.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import hvac
import oss2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tests.deployment.leak_scan import Secret

PREFIX = "x-oss-meta-client-side-encryption-"
IDENTITY = "x-oss-meta-osscse-cmk"
CEK_ALG = "AES/CTR/NoPadding"
_BASE64_TEXT = re.compile(rb"^[A-Za-z0-9+/]+={0,2}$")


@dataclass(frozen=True)
class EnvelopeHeaders:
    """One encrypted object's envelope, as read with oss2 (header names lower-cased)."""

    where: str  # "<bucket>/<object key>"
    headers: Mapping[str, str]

    def get(self, name: str) -> str:
        try:
            return self.headers[PREFIX + name]
        except KeyError:
            raise KeyError(f"{self.where} has no {PREFIX}{name} header") from None


@dataclass(frozen=True)
class UnwrappedObject:
    where: str
    wrap_alg: str
    data_key: bytes = field(repr=False)
    iv: bytes = field(repr=False)

    def secrets(self) -> list[Secret]:
        return [Secret("data key", self.where, self.data_key), Secret("IV", self.where, self.iv)]

    def decrypt(self, ciphertext: bytes) -> bytes:
        """AES-256-CTR from the IV as the initial counter block (the format's body encryption)."""
        decryptor = Cipher(algorithms.AES(self.data_key), modes.CTR(self.iv)).decryptor()
        return decryptor.update(ciphertext) + decryptor.finalize()


def encrypted_objects(bucket: oss2.Bucket, prefix: str = "") -> Iterator[EnvelopeHeaders]:
    """Every object under ``prefix`` that carries an envelope (plaintext objects are skipped)."""
    for info in oss2.ObjectIterator(bucket, prefix=prefix):
        headers = {k.lower(): v for k, v in bucket.head_object(info.key).headers.items()}
        if PREFIX + "key" in headers:
            yield EnvelopeHeaders(f"{bucket.bucket_name}/{info.key}", headers)


def _is_shaped(key: bytes, iv: bytes) -> bool:
    return len(key) == 32 and len(iv) == 16 and iv[8:12] == b"\0" * 4


@dataclass
class KeyCustody:
    """What unwraps: a Vault client allowed to decrypt with Transit, RSA private keys, a KMS Tea client."""

    vault: hvac.Client | None = None
    rsa_keys: Sequence[rsa.RSAPrivateKey] = ()
    kms: Any = None

    def unwrap(self, envelope: EnvelopeHeaders) -> UnwrappedObject:
        cek_alg, wrap_alg = envelope.get("cek-alg"), envelope.get("wrap-alg")
        if cek_alg != CEK_ALG:
            raise ValueError(f"{envelope.where}: cek-alg {cek_alg!r}, the scan knows {CEK_ALG} only")
        if wrap_alg == "VAULT/TRANSIT":
            key, iv = self._transit(envelope)
        elif wrap_alg == "RSA/NONE/PKCS1Padding":
            key, iv = self._rsa(envelope)
        elif wrap_alg == "KMS/ALICLOUD":
            key, iv = self._kms(envelope.get("key")), self._kms(envelope.get("start"))
        else:
            raise ValueError(f"{envelope.where}: unknown wrap-alg {wrap_alg!r}")
        if not _is_shaped(key, iv):
            raise ValueError(f"{envelope.where}: the unwrapped key or IV is not the format's shape")
        return UnwrappedObject(envelope.where, wrap_alg, key, iv)

    def _transit(self, envelope: EnvelopeHeaders) -> tuple[bytes, bytes]:
        identity = envelope.headers.get(IDENTITY, "")
        if self.vault is None or not identity.startswith("vault-transit:"):
            raise ValueError(f"{envelope.where}: no Vault client, or no Transit key named ({identity!r})")
        mount, _, name = identity.removeprefix("vault-transit:").rpartition("/")
        values = []
        for header in ("key", "start"):
            ciphertext = base64.b64decode(envelope.get(header), validate=True).decode("ascii")
            answer = self.vault.secrets.transit.decrypt_data(name=name, ciphertext=ciphertext, mount_point=mount)
            values.append(base64.b64decode(answer["data"]["plaintext"]))
        return values[0], values[1]

    def _rsa(self, envelope: EnvelopeHeaders) -> tuple[bytes, bytes]:
        wrapped_key = base64.b64decode(envelope.get("key"), validate=True)
        wrapped_iv = base64.b64decode(envelope.get("start"), validate=True)
        for private_key in self.rsa_keys:
            try:
                key = private_key.decrypt(wrapped_key, padding.PKCS1v15())
                iv = private_key.decrypt(wrapped_iv, padding.PKCS1v15())
            except ValueError:
                continue  # not this key (OpenSSL before 3.2 says so; later ones answer random bytes)
            if _is_shaped(key, iv):
                return key, iv
        raise ValueError(f"{envelope.where}: none of the {len(self.rsa_keys)} RSA key(s) unwraps it")

    def _kms(self, header: str) -> bytes:
        from alibabacloud_kms20160120 import models

        if self.kms is None:
            raise ValueError("a KMS-wrapped object, and no KMS client to unwrap it")
        decoded = base64.b64decode(header, validate=True)
        # Java/Go write the CiphertextBlob itself; oss2 writes base64 of the blob's text.
        blob = decoded.decode("ascii") if len(decoded) % 4 == 0 and _BASE64_TEXT.match(decoded) else header
        answer = self.kms.decrypt(models.DecryptRequest(ciphertext_blob=blob))
        return base64.b64decode(answer.body.plaintext)


def kms_client(endpoint: str, access_key_id: str, access_key_secret: str, region: str) -> Any:
    """A KMS Tea client for a plain-HTTP endpoint (``host:port``), as the local KMS server serves."""
    from alibabacloud_kms20160120.client import Client
    from alibabacloud_tea_openapi.models import Config

    config = Config(
        access_key_id=access_key_id,
        access_key_secret=access_key_secret,
        endpoint=endpoint,
        protocol="http",
        region_id=region,
    )
    return Client(config)


def kv_private_pem(client: hvac.Client, mount: str, path: str) -> str:
    """The ``private_key`` field (PEM) of a KV v2 secret, as a ``vault-kv://`` CMK reads it."""
    answer = client.secrets.kv.v2.read_secret_version(path=path, mount_point=mount, raise_on_deleted_version=True)
    return str(answer["data"]["data"]["private_key"])


def rsa_private_secrets(label: str, pem: str) -> tuple[rsa.RSAPrivateKey, list[Secret]]:
    """The key, and what of it must not appear: its private numbers and the PEM lines that hold them."""
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey), label
    numbers = key.private_numbers()
    found = []
    for name, value in (("d", numbers.d), ("p", numbers.p), ("q", numbers.q)):
        found.append(Secret("RSA private key", f"{label} ({name})", value.to_bytes((value.bit_length() + 7) // 8)))
    body = [line for line in pem.strip().splitlines() if not line.startswith("-----")]
    der = base64.b64decode("".join(body))
    d = found[0].value
    private_from = der.find(d)
    assert private_from > 0, label
    for number, line in enumerate(body):
        start = sum(len(base64.b64decode(prior)) for prior in body[:number])
        if start + len(base64.b64decode(line)) >= private_from + 16 and len(line) >= 32:
            found.append(Secret("RSA private key", f"{label} (PEM line {number + 1})", line.encode()))
    return key, found
