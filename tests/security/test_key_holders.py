"""Every object holding key material shows none of it however it is printed, and cannot be copied out.

Data keys are not registered with Airflow's secrets masker (issue 13: its cost grew with every
object), so a data key that reached a log line would stay there. What keeps it out is that no object
holding one can render it: not through ``repr``/``str``, ``format()`` or f-strings, not inside a list,
a dict, an exception or a log record, and not through ``pickle`` (XCom, trigger state, a process
pool) or ``copy``. The table below is every class of the package that holds a data key, an IV, a MAC
key derived from them, an RSA private key, or an authenticated key-service client;
``test_pickling_and_repr.py`` and ``test_debug_logging_leaks.py`` cover the same promise from the
hook's side.
"""

from __future__ import annotations

import copy
import functools
import logging
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from airflow_provider_osscse.envelope.aes_ctr import CtrCipher
from airflow_provider_osscse.envelope.integrity import IntegrityBuilder, StreamingTagger, derive_mac_key
from airflow_provider_osscse.envelope.keywrap import DataKey, DataKeyRequest
from airflow_provider_osscse.envelope.reader import EnvelopeReader
from airflow_provider_osscse.envelope.writer import EnvelopeWriter, encrypt_object
from airflow_provider_osscse.keys.caching_cmk import CachingCmk
from airflow_provider_osscse.keys.data_key_cache import DataKeyCache, _WriteEntry
from airflow_provider_osscse.keys.keyring import Keyring
from airflow_provider_osscse.keys.local_rsa import LocalRsaKey
from airflow_provider_osscse.keys.reference import resolve_cmk
from airflow_provider_osscse.keys.rsa_pem import normalize_rsa_pem
from airflow_provider_osscse.keys.unwrap_cache import UnwrapCache

from .conftest import SecurityEnv, leaked, pem_body_lines, secret_forms

CEK_ALG = "AES/CTR/NoPadding"
SEGMENT = 64 * 1024


def _renderings(holder: object) -> dict[str, str]:
    """Every ordinary way an object ends up as text: in messages, f-strings, containers, errors, logs."""
    record = logging.makeLogRecord({"msg": "holder %s %r", "args": (holder, holder)})
    return {
        "repr": repr(holder),
        "str": str(holder),
        "format": format(holder, ""),
        "f-string": f"{holder} {holder!r} {holder!s}",
        "%-format": "%s %r" % (holder, holder),  # noqa: UP031 - the old style is what logging uses
        "in a list": repr([holder]) + str([holder]),
        "in a dict": repr({"holder": holder}),
        "in an exception": str(ValueError(holder)) + repr(ValueError("x", holder)),
        "in a log record": logging.Formatter("%(message)s %(args)s").format(record),
    }


def _refusals(holder: object) -> dict[str, str | None]:
    """What pickling (every protocol), ``copy.copy`` and ``copy.deepcopy`` did: an error type, or None."""
    outcome: dict[str, str | None] = {}
    attempts: dict[str, Callable[[object], object]] = {"copy.copy": copy.copy, "copy.deepcopy": copy.deepcopy}
    attempts |= {f"pickle protocol {p}": functools.partial(pickle.dumps, protocol=p) for p in range(6)}
    for name, attempt in attempts.items():
        try:
            attempt(holder)
        except TypeError as exc:
            outcome[name] = type(exc).__name__
        else:
            outcome[name] = None
    return outcome


@dataclass
class Held:
    """A key-material holder and every form of what it holds."""

    holder: object
    forms: list[str]


@pytest.fixture(scope="module")
def rsa_cmk() -> LocalRsaKey:
    return LocalRsaKey.generate(2048, reference="rsa-key-holders")


def _rsa_forms(cmk: LocalRsaKey) -> list[str]:
    """The private PEM's body lines and the private exponent and primes (decimal and hex)."""
    numbers = cmk._private.private_numbers()  # type: ignore[union-attr] # noqa: SLF001 - the secret to look for
    ints = [numbers.d, numbers.p, numbers.q]
    return pem_body_lines(cmk.private_key_pem()) + [str(i) for i in ints] + [format(i, "x") for i in ints]


def _data_key_forms(data_key: DataKey, *more: bytes) -> list[str]:
    """The key, the IV and the integrity MAC key derived from them, in every encoding."""
    return secret_forms(data_key.key, data_key.iv, derive_mac_key(data_key), *more)


def _holders(cmk: LocalRsaKey) -> Iterator[tuple[str, Held]]:
    data_key = DataKey.generate()
    yield "DataKey", Held(data_key, _data_key_forms(data_key))
    yield "CtrCipher", Held(CtrCipher(data_key.key, data_key.iv, 100), _data_key_forms(data_key))

    writer = EnvelopeWriter(cmk, object_name="holders/w", data_key=data_key)
    yield "EnvelopeWriter", Held(writer, _data_key_forms(data_key) + _rsa_forms(cmk))

    stored = encrypt_object(b"content " * 100, cmk, object_name="holders/r")
    reader = EnvelopeReader(stored.metadata, cmk, object_name="holders/r")
    read_key: DataKey = reader._content_key  # noqa: SLF001 - the secret to look for
    yield "EnvelopeReader", Held(reader, _data_key_forms(read_key) + _rsa_forms(cmk))

    builder = IntegrityBuilder(data_key, CEK_ALG, SEGMENT)
    yield "IntegrityBuilder", Held(builder, _data_key_forms(data_key))
    hasher = builder.segment_hasher(0)
    hasher.update(b"some plaintext")
    yield "SegmentHasher", Held(hasher, _data_key_forms(data_key))
    tagger = StreamingTagger(IntegrityBuilder(data_key, CEK_ALG, SEGMENT))
    tagger.update(b"some plaintext")
    yield "StreamingTagger", Held(tagger, _data_key_forms(data_key))

    cache = DataKeyCache()
    cached, _ = cache.new_data_key(cmk, DataKeyRequest(plaintext_size=10))
    entry = next(iter(cache._entries.values()))  # noqa: SLF001 - the cache entry is a holder too
    pool_ivs = [iv for iv, _ in entry.pool]
    yield "DataKeyCache", Held(cache, _data_key_forms(cached, *pool_ivs))
    yield "DataKeyCache entry", Held(entry, _data_key_forms(cached, *pool_ivs))
    fresh = _WriteEntry(key=data_key.key, created=0.0)  # before its first IV batch: key bytes only
    yield "DataKeyCache entry (new)", Held(fresh, _data_key_forms(data_key))
    yield "CachingCmk", Held(CachingCmk(cmk, cache), _data_key_forms(cached, *pool_ivs) + _rsa_forms(cmk))

    unwrap_cache = UnwrapCache()
    unwrap_cache.put(cmk.reference, writer.wrapped, data_key)
    yield "UnwrapCache", Held(unwrap_cache, _data_key_forms(data_key))
    yield "CachingCmk (reads)", Held(CachingCmk(cmk, unwrap_cache), _data_key_forms(data_key) + _rsa_forms(cmk))

    pair = normalize_rsa_pem(cmk.private_key_pem(), None, source="key holders test")
    yield "RsaPemPair", Held(pair, _rsa_forms(cmk))
    yield "RsaKeys", Held(pair.keys, _rsa_forms(cmk))
    yield "LocalRsaKey", Held(cmk, _rsa_forms(cmk))


#: Holders of holders: a shallow ``copy.copy`` shares the refusing holder inside (nothing new is
#: exposed); pickling and deep copies still refuse.
WRAPPERS = {"Keyring"}

HOLDERS = [
    "DataKey",
    "CtrCipher",
    "EnvelopeWriter",
    "EnvelopeReader",
    "IntegrityBuilder",
    "SegmentHasher",
    "StreamingTagger",
    "DataKeyCache",
    "DataKeyCache entry",
    "DataKeyCache entry (new)",
    "CachingCmk",
    "UnwrapCache",
    "CachingCmk (reads)",
    "RsaPemPair",
    "RsaKeys",
    "LocalRsaKey",
]


@pytest.fixture(scope="module")
def holders(rsa_cmk: LocalRsaKey) -> dict[str, Held]:
    built = dict(_holders(rsa_cmk))
    built["Keyring"] = Held(Keyring(rsa_cmk, []), _rsa_forms(rsa_cmk))
    return built


def test_the_table_names_every_holder_it_builds(holders: dict[str, Held]) -> None:
    assert sorted(holders) == sorted([*HOLDERS, *WRAPPERS])


@pytest.mark.parametrize("name", [*HOLDERS, *WRAPPERS])
def test_no_rendering_of_a_key_holder_shows_any_form_of_its_key_material(name: str, holders: dict[str, Held]) -> None:
    held = holders[name]
    shown = {how: leaked(text, held.forms) for how, text in _renderings(held.holder).items()}
    assert {how: forms for how, forms in shown.items() if forms} == {}


@pytest.mark.parametrize("name", HOLDERS)
def test_a_key_holder_refuses_pickling_and_copying(name: str, holders: dict[str, Held]) -> None:
    """Refused with ``TypeError`` (what ``pickle`` and ``copy`` raise for what cannot be copied), so
    the material cannot ride into XCom, a trigger's state or another process, nor be duplicated."""
    assert {how: err for how, err in _refusals(holders[name].holder).items() if err is None} == {}


@pytest.mark.parametrize("name", sorted(WRAPPERS))
def test_a_wrapper_of_key_holders_refuses_pickling_and_its_shallow_copy_shows_nothing(
    name: str, holders: dict[str, Held]
) -> None:
    held = holders[name]
    refusals = _refusals(held.holder)
    del refusals["copy.copy"]  # refused, or a twin sharing the refusing holders (checked below)
    assert {how: err for how, err in refusals.items() if err is None} == {}
    twin = copy.copy(held.holder)
    assert _refusals(twin)["pickle protocol 5"] == "TypeError"
    assert [leaked(text, held.forms) for text in _renderings(twin).values() if leaked(text, held.forms)] == []


@pytest.mark.parametrize("kind", ["vault-transit", "vault-kv", "kms"])
def test_key_service_cmks_and_their_clients_show_no_token_secret_or_pem_and_refuse_copying(
    kind: str, security_env: SecurityEnv
) -> None:
    """The providers that hold an authenticated client (Vault token, KMS AccessKey secret) or a private
    key read from Vault; ``test_pickling_and_repr.py`` checks their repr and pickling, this adds every
    other rendering and ``copy``. For KMS the RPC helper holding the SDK client is checked too."""
    cmk = resolve_cmk(security_env.cmks[kind])
    data_key = DataKey.generate()
    assert cmk.unwrap(cmk.wrap(data_key)) == data_key  # loaded: clients, tokens, private keys in memory
    held: list[object] = [cmk]
    if kind == "kms":
        held.append(cmk._rpc)  # type: ignore[attr-defined] # noqa: SLF001 - KmsRpc holds the SDK client
    forms = security_env.static_forms()
    for holder in held:
        shown = {how: leaked(text, forms) for how, text in _renderings(holder).items()}
        assert {how: f for how, f in shown.items() if f} == {}, type(holder).__name__
        assert {how: err for how, err in _refusals(holder).items() if err is None} == {}, type(holder).__name__
