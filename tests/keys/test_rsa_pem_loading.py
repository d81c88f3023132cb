"""One RSA PEM loader (``keys.rsa_pem.load_rsa_keys``): every unusable PEM is the project's
``InvalidKeyMaterialError`` whichever way it arrives, and a key file's private key is validated once."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from airflow_provider_osscse.exceptions import InvalidKeyMaterialError
from airflow_provider_osscse.keys.local_rsa import LocalRsaKey
from airflow_provider_osscse.keys.rsa_file import load_rsa_file_key


def _pem(label: str, der: bytes) -> bytes:
    return f"-----BEGIN {label}-----\n".encode() + base64.b64encode(der) + f"\n-----END {label}-----\n".encode()


#: SubjectPublicKeyInfo { AlgorithmIdentifier { OID 1.2.3.4 }, BIT STRING 0x01 0x02 }: well-formed
#: DER of a key type ``cryptography`` does not know (it raises ``UnsupportedAlgorithm``, not ``ValueError``).
UNKNOWN_ALGORITHM_PUBLIC = _pem("PUBLIC KEY", bytes.fromhex("300c300506032a0304030300 0102".replace(" ", "")))
#: PrivateKeyInfo { version 0, AlgorithmIdentifier { OID 1.2.3.4 }, OCTET STRING 0x00 }.
UNKNOWN_ALGORITHM_PRIVATE = _pem("PRIVATE KEY", bytes.fromhex("300d020100300506032a03040401 00".replace(" ", "")))
MALFORMED_PUBLIC = b"-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n"


@pytest.mark.parametrize(
    ("half", "pem", "says"),
    [
        ("public", MALFORMED_PUBLIC, "the public key is not an RSA PEM public key"),
        ("public", UNKNOWN_ALGORITHM_PUBLIC, "the public key is not an RSA PEM public key"),
        ("private", UNKNOWN_ALGORITHM_PRIVATE, "the private key is not an unencrypted RSA PEM key"),
    ],
    ids=["malformed-public", "unknown-algorithm-public", "unknown-algorithm-private"],
)
def test_an_unusable_pem_is_invalid_key_material_from_bytes_and_from_a_file(
    tmp_path: Path, half: str, pem: bytes, says: str
) -> None:
    with pytest.raises(InvalidKeyMaterialError, match=says) as from_bytes:
        LocalRsaKey(**{f"{half}_key_pem": pem})
    assert b"bm90" not in str(from_bytes.value).encode()
    path = tmp_path / "cmk.pem"
    path.write_bytes(pem)
    with pytest.raises(InvalidKeyMaterialError, match=says):
        load_rsa_file_key(str(path))


def test_a_key_file_validates_its_private_key_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Validating a private key is the expensive step of a CMK load (~0.3 s at 2048 bits): count the parses."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    path = tmp_path / "cmk.pem"
    path.write_bytes(pem + key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1))
    parses: list[bytes] = []
    real = serialization.load_pem_private_key

    def counting(data: bytes, password: bytes | None, **kwargs: bool) -> object:
        parses.append(data)
        return real(data, password, **kwargs)

    monkeypatch.setattr(serialization, "load_pem_private_key", counting)
    cmk = load_rsa_file_key(str(path))
    assert len(parses) == 1
    assert cmk.can_unwrap  # type: ignore[attr-defined]  # load_rsa_file_key is typed as returning a Cmk
