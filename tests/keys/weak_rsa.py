"""RSA private keys under 2048 bits, as users still have them (for the weak-key refusal tests)."""

from __future__ import annotations

import secrets

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def _probable_prime(bits: int) -> int:
    """A random prime of exactly ``bits`` bits (Miller-Rabin, 40 rounds); cryptography no longer
    generates RSA keys under 1024 bits, but it loads them, and users have them."""
    while True:
        n = secrets.randbits(bits) | (1 << (bits - 1)) | 1
        d, r = n - 1, 0
        while d % 2 == 0:
            d, r = d // 2, r + 1
        for _ in range(40):
            x = pow(secrets.randbelow(n - 3) + 2, d, n)
            if x in (1, n - 1):
                continue
            for _ in range(r - 1):
                x = pow(x, 2, n)
                if x == n - 1:
                    break
            else:
                break
        else:
            return n


def weak_private_pem(bits: int) -> bytes:
    """A PKCS#8 PEM RSA key of ``bits`` bits (512 included)."""
    if bits >= 1024:
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    else:
        e = 65537
        while True:
            p, q = _probable_prime(bits // 2), _probable_prime(bits // 2)
            n = p * q
            if p != q and n.bit_length() == bits and (p - 1) % e and (q - 1) % e:
                break
        d = pow(e, -1, (p - 1) * (q - 1))
        key = rsa.RSAPrivateNumbers(
            p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q), rsa.RSAPublicNumbers(e, n)
        ).private_key()
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
