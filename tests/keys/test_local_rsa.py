"""LocalRsaKey: PEM forms, modulus sizes, encrypt-only keys, wrong keys, legacy OAEP, no secret leaks."""

from __future__ import annotations

import pickle

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from airflow_provider_osscse.envelope.errors import CmkReferenceError, KeyUnwrapError
from airflow_provider_osscse.envelope.keywrap import ContentKey, WrappedContentKey
from airflow_provider_osscse.keys.local_rsa import LocalRsaKey

PEM = serialization.Encoding.PEM
NOENC = serialization.NoEncryption()


@pytest.fixture(scope="module", params=[2048, 4096])
def private_key(request: pytest.FixtureRequest) -> rsa.RSAPrivateKey:
    """One key per size; 4096-bit generation is slow, so only once for the whole module."""
    return rsa.generate_private_key(public_exponent=65537, key_size=request.param)


def _forms(key: rsa.RSAPrivateKey) -> dict[str, bytes]:
    pub = key.public_key()
    return {
        "pkcs1-private": key.private_bytes(PEM, serialization.PrivateFormat.TraditionalOpenSSL, NOENC),
        "pkcs8-private": key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, NOENC),
        "x509-public": pub.public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        "pkcs1-public": pub.public_bytes(PEM, serialization.PublicFormat.PKCS1),
    }


def test_every_pem_form_wraps_and_unwraps(private_key: rsa.RSAPrivateKey) -> None:
    forms = _forms(private_key)
    ck = ContentKey.generate()
    for priv in ("pkcs1-private", "pkcs8-private"):
        unwrapper = LocalRsaKey(private_key_pem=forms[priv])
        for pub in ("x509-public", "pkcs1-public"):
            wrapped = LocalRsaKey(public_key_pem=forms[pub]).wrap(ck)
            assert wrapped.wrap_alg == "RSA/NONE/PKCS1Padding"
            assert len(wrapped.wrapped_key) == private_key.key_size // 8
            assert unwrapper.unwrap(wrapped) == ck


def test_wrapping_is_pkcs1_v15_over_raw_key_and_iv_separately(private_key: rsa.RSAPrivateKey) -> None:
    ck = ContentKey.generate()
    wrapped = LocalRsaKey(private_key_pem=_forms(private_key)["pkcs8-private"]).wrap(ck)
    assert private_key.decrypt(wrapped.wrapped_key, padding.PKCS1v15()) == ck.key
    assert private_key.decrypt(wrapped.wrapped_iv, padding.PKCS1v15()) == ck.iv


def test_public_key_alone_cannot_unwrap(private_key: rsa.RSAPrivateKey) -> None:
    public = LocalRsaKey(public_key_pem=_forms(private_key)["x509-public"], reference="pub-only")
    with pytest.raises(KeyUnwrapError, match="'pub-only' has only a public key.*private key"):
        public.unwrap(public.wrap(ContentKey.generate()))


def test_wrong_key_raises_instead_of_returning_garbage() -> None:
    a, b = LocalRsaKey.generate(2048, reference="a"), LocalRsaKey.generate(2048, reference="b")
    for _ in range(20):  # implicit rejection returns random bytes: every try must still be refused
        with pytest.raises(KeyUnwrapError, match="'b' could not unwrap"):
            b.unwrap(a.wrap(ContentKey.generate()))


def test_corrupted_wrapped_value_raises() -> None:
    key = LocalRsaKey.generate(2048)
    wrapped = key.wrap(ContentKey.generate())
    with pytest.raises(KeyUnwrapError):
        key.unwrap(WrappedContentKey(wrap_alg=wrapped.wrap_alg, wrapped_key=wrapped.wrapped_key[:-1],
                                     wrapped_iv=wrapped.wrapped_iv))


def test_legacy_oaep_unwrap_accepts_iv_and_decimal_counter() -> None:
    key = LocalRsaKey.generate(2048)
    pub = serialization.load_pem_public_key(key.public_key_pem())
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    ck = ContentKey.generate()
    wrapped = WrappedContentKey(wrap_alg="RSA/NONE/OAEPWithSHA-1AndMGF1Padding",
                                wrapped_key=pub.encrypt(ck.key, oaep), wrapped_iv=pub.encrypt(ck.iv, oaep))
    assert key.matches(wrapped) and key.unwrap(wrapped) == ck
    legacy = WrappedContentKey(wrap_alg=wrapped.wrap_alg, wrapped_key=wrapped.wrapped_key,
                               wrapped_iv=pub.encrypt(b"3", oaep))
    assert key.unwrap(legacy).iv == (3).to_bytes(16, "big")


def test_matdesc_is_carried_and_matched() -> None:
    key = LocalRsaKey.generate(2048, matdesc={"desc": "a"})
    wrapped = key.wrap(ContentKey.generate())
    assert dict(wrapped.matdesc) == {"desc": "a"} and key.matches(wrapped)
    other = WrappedContentKey(wrap_alg=wrapped.wrap_alg, wrapped_key=b"", wrapped_iv=b"", matdesc={"desc": "b"})
    assert not key.matches(other)


def test_from_file_loads_private_or_public_pem(tmp_path, private_key: rsa.RSAPrivateKey) -> None:
    forms = _forms(private_key)
    (tmp_path / "priv.pem").write_bytes(forms["pkcs1-private"])
    (tmp_path / "pub.pem").write_bytes(forms["x509-public"])
    priv, pub = LocalRsaKey.from_file(tmp_path / "priv.pem"), LocalRsaKey.from_file(tmp_path / "pub.pem")
    assert priv.can_unwrap and not pub.can_unwrap
    assert priv.unwrap(pub.wrap(ck := ContentKey.generate())) == ck


def test_bad_pem_and_mismatched_pair_are_refused() -> None:
    with pytest.raises(CmkReferenceError):
        LocalRsaKey(private_key_pem=b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    with pytest.raises(CmkReferenceError):
        LocalRsaKey()
    a, b = LocalRsaKey.generate(1024), LocalRsaKey.generate(1024)
    with pytest.raises(CmkReferenceError, match="does not belong"):
        LocalRsaKey(private_key_pem=a.private_key_pem(), public_key_pem=b.public_key_pem())


def test_repr_and_pickle_do_not_leak_the_private_key() -> None:
    key = LocalRsaKey.generate(1024, reference="r")
    assert repr(key) == "LocalRsaKey('r')"
    with pytest.raises(TypeError):
        pickle.dumps(key)
