"""Objects that hold key material or credentials refuse pickling (so they cannot ride into XCom,
task state or a multiprocessing queue) and print only non-secret names."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_osscse.envelope.keywrap import DataKey
from airflow_provider_osscse.keys.caching_cmk import CachingCmk
from airflow_provider_osscse.keys.data_key_cache import DataKeyCache
from airflow_provider_osscse.keys.keyring import Keyring
from airflow_provider_osscse.keys.reference import resolve_cmk

from .conftest import SecurityEnv, leaked, secret_forms

KINDS = ["rsa-file", "vault-transit", "vault-kv", "kms"]


def test_content_key_refuses_pickling_and_hides_its_bytes() -> None:
    data_key = DataKey.generate()
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(data_key)
    text = repr(data_key) + str(data_key) + f"{data_key}" + repr([data_key])
    assert leaked(text, secret_forms(data_key.key, data_key.iv)) == []


@pytest.mark.parametrize("kind", KINDS)
def test_every_provider_refuses_pickling_and_its_repr_is_only_the_reference(
    kind: str,
    security_env: SecurityEnv,
) -> None:
    cmk = resolve_cmk(security_env.cmks[kind])
    cmk.unwrap(cmk.wrap(DataKey.generate()))  # loaded: private keys, tokens, clients are in memory now
    for holder in (cmk, Keyring(cmk, []), CachingCmk(cmk, DataKeyCache())):
        with pytest.raises(TypeError):
            pickle.dumps(holder)
        text = repr(holder) + str(holder)
        assert leaked(text, security_env.static_forms()) == [] and "PRIVATE KEY" not in text


def test_hook_repr_and_settings_show_no_secret_after_use(
    security_env: SecurityEnv,
    make_hook: Callable[..., Any],
) -> None:
    hook = make_hook("vault-transit", decrypt_cmks=[security_env.cmks["kms"], security_env.cmks["vault-kv"]])
    hook.upload(iter([b"x" * 100]), "repr/obj")
    assert hook.read("repr/obj") == b"x" * 100
    texts = [
        repr(hook),
        str(hook),
        repr(hook.get_conn().settings),
        str(hook.get_conn().settings),
        repr(hook.get_conn()),
        repr(list(hook._cmk_cache.values())),  # noqa: SLF001 - the leak test looks at every CMK the hook holds
        hook.test_connection()[1],
    ]
    assert leaked("\n".join(texts), security_env.static_forms()) == []
