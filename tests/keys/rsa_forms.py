"""RSA test keys in the PEM forms users bring (generated once per session; 2048-bit, the smallest size a
CMK may wrap with)."""

from __future__ import annotations

from functools import cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@cache
def rsa_private_key(seed: int = 0) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(seed: int, form: str) -> bytes:
    key = rsa_private_key(seed)
    nc = serialization.NoEncryption()
    if form == "pkcs1":
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, nc)
    if form == "pkcs8":
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, nc)
    if form == "x509":
        return key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    if form == "pkcs1-public":
        return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    raise ValueError(form)
