"""LocalRsaKey: PEM forms, modulus sizes, encrypt-only keys, wrong keys, legacy OAEP, no secret leaks,
its identity (the public key's fingerprint, outside the matdesc) and the refusal of weak keys."""

from __future__ import annotations

import base64
import json
import logging
import pickle
from functools import partial

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from airflow_provider_osscse.envelope.headers import parse_envelope
from airflow_provider_osscse.envelope.keywrap import DataKey, WrappedDataKey
from airflow_provider_osscse.exceptions import CmkReferenceError, KeyUnwrapError
from airflow_provider_osscse.keys.local_rsa import LocalRsaKey, WeakRsaKeyError
from airflow_provider_osscse.keys.rsa_file import load_rsa_file_key
from airflow_provider_osscse.keys.rsa_pem import rsa_identity
from tests.keys.weak_rsa import weak_private_pem

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
    ck = DataKey.generate()
    for priv in ("pkcs1-private", "pkcs8-private"):
        unwrapper = LocalRsaKey(private_key_pem=forms[priv])
        for pub in ("x509-public", "pkcs1-public"):
            wrapped = LocalRsaKey(public_key_pem=forms[pub]).wrap(ck)
            assert wrapped.wrap_alg == "RSA/NONE/PKCS1Padding"
            assert len(wrapped.wrapped_key) == private_key.key_size // 8
            assert unwrapper.unwrap(wrapped) == ck


def test_wrapping_is_pkcs1_v15_over_raw_key_and_iv_separately(private_key: rsa.RSAPrivateKey) -> None:
    ck = DataKey.generate()
    wrapped = LocalRsaKey(private_key_pem=_forms(private_key)["pkcs8-private"]).wrap(ck)
    assert private_key.decrypt(wrapped.wrapped_key, padding.PKCS1v15()) == ck.key
    assert private_key.decrypt(wrapped.wrapped_iv, padding.PKCS1v15()) == ck.iv


def test_public_key_alone_cannot_unwrap(private_key: rsa.RSAPrivateKey) -> None:
    public = LocalRsaKey(public_key_pem=_forms(private_key)["x509-public"], reference="pub-only")
    with pytest.raises(KeyUnwrapError, match=r"'pub-only' has only a public key.*private key"):
        public.unwrap(public.wrap(DataKey.generate()))


def test_wrong_key_raises_instead_of_returning_garbage() -> None:
    a, b = LocalRsaKey.generate(2048, reference="a"), LocalRsaKey.generate(2048, reference="b")
    for _ in range(20):  # implicit rejection returns random bytes: every try must still be refused
        with pytest.raises(KeyUnwrapError, match="'b' could not unwrap"):
            b.unwrap(a.wrap(DataKey.generate()))


def test_corrupted_wrapped_value_raises() -> None:
    key = LocalRsaKey.generate(2048)
    wrapped = key.wrap(DataKey.generate())
    with pytest.raises(KeyUnwrapError):
        key.unwrap(
            WrappedDataKey(
                wrap_alg=wrapped.wrap_alg, wrapped_key=wrapped.wrapped_key[:-1], wrapped_iv=wrapped.wrapped_iv
            )
        )


def test_legacy_oaep_unwrap_accepts_iv_and_decimal_counter() -> None:
    key = LocalRsaKey.generate(2048)
    pub = serialization.load_pem_public_key(key.public_key_pem())
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    ck = DataKey.generate()
    wrapped = WrappedDataKey(
        wrap_alg="RSA/NONE/OAEPWithSHA-1AndMGF1Padding",
        wrapped_key=pub.encrypt(ck.key, oaep),
        wrapped_iv=pub.encrypt(ck.iv, oaep),
    )
    assert key.matches(wrapped) and key.unwrap(wrapped) == ck
    legacy = WrappedDataKey(
        wrap_alg=wrapped.wrap_alg, wrapped_key=wrapped.wrapped_key, wrapped_iv=pub.encrypt(b"3", oaep)
    )
    assert key.unwrap(legacy).iv == (3).to_bytes(16, "big")


def test_matdesc_is_carried_and_matched() -> None:
    key = LocalRsaKey.generate(2048, matdesc={"desc": "a"})
    wrapped = key.wrap(DataKey.generate())
    assert dict(wrapped.matdesc) == {"desc": "a"} and key.matches(wrapped)
    other = WrappedDataKey(wrap_alg=wrapped.wrap_alg, wrapped_key=b"", wrapped_iv=b"", matdesc={"desc": "b"})
    assert not key.matches(other)


def test_from_file_loads_private_or_public_pem(tmp_path, private_key: rsa.RSAPrivateKey) -> None:
    forms = _forms(private_key)
    (tmp_path / "priv.pem").write_bytes(forms["pkcs1-private"])
    (tmp_path / "pub.pem").write_bytes(forms["x509-public"])
    priv, pub = LocalRsaKey.from_file(tmp_path / "priv.pem"), LocalRsaKey.from_file(tmp_path / "pub.pem")
    assert priv.can_unwrap and not pub.can_unwrap
    assert priv.unwrap(pub.wrap(ck := DataKey.generate())) == ck


def test_bad_pem_and_mismatched_pair_are_refused() -> None:
    with pytest.raises(CmkReferenceError):
        LocalRsaKey(private_key_pem=b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    with pytest.raises(CmkReferenceError):
        LocalRsaKey()
    a, b = LocalRsaKey.generate(2048), LocalRsaKey.generate(2048)
    with pytest.raises(CmkReferenceError, match="does not belong"):
        LocalRsaKey(private_key_pem=a.private_key_pem(), public_key_pem=b.public_key_pem())


def test_repr_and_pickle_do_not_leak_the_private_key() -> None:
    key = LocalRsaKey.generate(2048, reference="r")
    assert repr(key) == "LocalRsaKey('r')"
    with pytest.raises(TypeError):
        pickle.dumps(key)


# ------------------------------------------------------------------------------------ identity
def test_identity_is_the_public_key_fingerprint_whatever_the_pem_form_or_half(
    private_key: rsa.RSAPrivateKey,
) -> None:
    forms = _forms(private_key)
    identities = {
        LocalRsaKey(private_key_pem=forms["pkcs1-private"]).identity,
        LocalRsaKey(private_key_pem=forms["pkcs8-private"]).identity,
        LocalRsaKey(public_key_pem=forms["x509-public"]).identity,
        LocalRsaKey(public_key_pem=forms["pkcs1-public"]).identity,
    }
    assert identities == {rsa_identity(private_key.public_key())}
    (identity,) = identities
    assert identity.startswith("rsa-sha256:") and len(identity) == len("rsa-sha256:") + 32
    assert LocalRsaKey.generate(2048).identity != identity


def test_wrap_names_the_cmk_by_identity_and_writes_only_the_user_matdesc() -> None:
    plain, described = LocalRsaKey.generate(2048), LocalRsaKey.generate(2048, matdesc={"team": "orders"})
    for key, matdesc in ((plain, {}), (described, {"team": "orders"})):
        ck = DataKey.generate()
        wrapped = key.wrap(ck)
        batch = key.wrap_ivs(ck.key, [ck.iv, DataKey.generate().iv])
        assert key.identity.startswith("rsa-sha256:")
        for w in (wrapped, *batch):
            assert w.cmk_identity == key.identity and dict(w.matdesc) == matdesc and w.cmk_version is None
            assert key.matches(w)
        assert key.unwrap(batch[0]) == ck


def test_rsa_file_key_keeps_its_identity_out_of_the_matdesc(tmp_path, private_key: rsa.RSAPrivateKey) -> None:
    """oss2's RsaProvider built without a matdesc refuses any object whose matdesc it was not given."""
    path = tmp_path / "cmk.pem"
    path.write_bytes(_forms(private_key)["pkcs1-private"])
    key = load_rsa_file_key(str(path))
    wrapped = key.wrap(DataKey.generate())
    assert dict(key.matdesc) == {} and dict(wrapped.matdesc) == {}
    assert key.identity == wrapped.cmk_identity == rsa_identity(private_key.public_key())
    described = load_rsa_file_key(str(path), matdesc={"k": "v"})
    assert dict(described.wrap(DataKey.generate()).matdesc) == {"k": "v"}


def test_matching_prefers_the_identity_and_falls_back_to_the_configured_matdesc() -> None:
    key = LocalRsaKey.generate(2048, matdesc={"team": "orders"})
    other = LocalRsaKey.generate(2048, matdesc={"team": "orders"})
    wrapped = key.wrap(DataKey.generate())
    assert key.matches(wrapped) and not other.matches(wrapped)  # same matdesc, other identity

    def official(matdesc: dict[str, str]) -> WrappedDataKey:  # an official SDK's object: no identity
        return WrappedDataKey(wrapped.wrap_alg, wrapped.wrapped_key, wrapped.wrapped_iv, matdesc)

    assert key.matches(official({"team": "orders", "extra": "x"}))
    assert not key.matches(official({})) and not key.matches(official({"team": "billing"}))
    assert LocalRsaKey.generate(2048).matches(official({}))


def test_objects_of_earlier_versions_naming_the_key_in_the_matdesc_still_match_and_unwrap(
    private_key: rsa.RSAPrivateKey,
) -> None:
    key = LocalRsaKey(private_key_pem=_forms(private_key)["pkcs8-private"])
    ck = DataKey.generate()
    wrapped = key.wrap(ck)
    headers = {
        "x-oss-meta-client-side-encryption-key": base64.b64encode(wrapped.wrapped_key).decode(),
        "x-oss-meta-client-side-encryption-start": base64.b64encode(wrapped.wrapped_iv).decode(),
        "x-oss-meta-client-side-encryption-cek-alg": "AES/CTR/NoPadding",
        "x-oss-meta-client-side-encryption-wrap-alg": "RSA/NONE/PKCS1Padding",
        "x-oss-meta-client-side-encryption-matdesc": json.dumps({"osscse-cmk": key.identity, "team": "a"}),
    }
    legacy = parse_envelope(headers, object_name="old").wrapped
    assert legacy.cmk_identity == key.identity and key.matches(legacy) and key.unwrap(legacy) == ck
    assert not LocalRsaKey.generate(2048, matdesc={"team": "a"}).matches(legacy)


# ------------------------------------------------------------------------------------ weak keys
@pytest.mark.parametrize("bits", [512, 1024, 2047])
def test_keys_under_2048_bits_are_refused_naming_the_key_its_size_and_the_fix(bits: int, tmp_path) -> None:
    pem = weak_private_pem(bits)
    public = (
        serialization.load_pem_private_key(pem, None)
        .public_key()
        .public_bytes(  # type: ignore[union-attr]
            PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    path = tmp_path / "weak.pem"
    path.write_bytes(pem)
    attempts = [
        lambda: LocalRsaKey(private_key_pem=pem, reference="rsa-file:///keys/weak.pem"),
        lambda: LocalRsaKey(public_key_pem=public, reference="rsa-file:///keys/weak.pem"),
        lambda: load_rsa_file_key(str(path), reference="rsa-file:///keys/weak.pem"),
    ]
    for attempt in attempts:
        with pytest.raises(WeakRsaKeyError) as info:
            attempt()
        text = str(info.value)
        assert "'rsa-file:///keys/weak.pem'" in text and f"{bits}-bit" in text and "2048" in text
        assert "allow_weak_key_for_unwrap" in text and "PRIVATE" not in text
    assert isinstance(info.value, CmkReferenceError)


@pytest.mark.parametrize("bits", [512, 1024])
def test_a_weak_key_opted_in_for_reading_unwraps_with_a_warning_but_never_wraps(
    bits: int, caplog: pytest.LogCaptureFixture, tmp_path
) -> None:
    pem = weak_private_pem(bits)
    path = tmp_path / "weak.pem"
    path.write_bytes(pem)
    for key in (
        LocalRsaKey(private_key_pem=pem, reference="old-weak", allow_weak_key_for_unwrap=True),
        load_rsa_file_key(str(path), reference="old-weak", allow_weak_key_for_unwrap=True),
    ):
        ck = DataKey.generate()
        for wrap in (partial(key.wrap, ck), partial(key.wrap_ivs, ck.key, [ck.iv]), key.new_data_key):
            with pytest.raises(WeakRsaKeyError, match=rf"'old-weak' is a {bits}-bit key.*at least 2048"):
                wrap()
        # An object an earlier version (or another SDK) wrote with this key, as every SDK writes it.
        public = serialization.load_pem_private_key(pem, None).public_key()  # type: ignore[union-attr]
        old = WrappedDataKey(
            "RSA/NONE/PKCS1Padding",
            public.encrypt(ck.key, padding.PKCS1v15()),
            public.encrypt(ck.iv, padding.PKCS1v15()),
        )
        assert key.matches(old)
        caplog.clear()
        with pytest.raises(WeakRsaKeyError):  # refused before unwrapping anything
            key.rewrap(old)
        assert caplog.records == []
        with caplog.at_level(logging.WARNING, logger="airflow_provider_osscse.keys.local_rsa"):
            assert key.unwrap(old) == ck
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and f"{bits}-bit" in warnings[0].getMessage()
        assert "allow_weak_key_for_unwrap" in warnings[0].getMessage()
        assert "'old-weak'" in warnings[0].getMessage()


def test_strong_keys_unwrap_without_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    key = LocalRsaKey.generate(2048)
    with caplog.at_level(logging.WARNING):
        key.unwrap(key.wrap(DataKey.generate()))
    assert caplog.records == []
