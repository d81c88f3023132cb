"""Long-lived key material is registered with Airflow's masker; data keys never end up in reprs or pickles."""

from __future__ import annotations

import base64
import pickle
import uuid

import hvac
import pytest

from airflow_provider_osscse.envelope.keywrap import DataKey
from airflow_provider_osscse.keys.vault_kv import VaultKvRsaKey
from airflow_provider_osscse.keys.vault_transit import VaultTransitKey
from tests.keys.rsa_forms import pem


def _redact(text: str) -> str:
    from airflow.sdk._shared.secrets_masker import redact

    return str(redact(text))


def test_unwrapped_data_key_shows_no_bytes_in_repr_str_or_format_and_refuses_pickling(
    vault_root: hvac.Client, transit_key: str
) -> None:
    """Data keys are kept out of logs by construction, not by the masker (whose cost grew per object)."""
    cmk = VaultTransitKey(vault_root, key_name=transit_key)
    data_key = cmk.unwrap(cmk.wrap(DataKey.generate()))
    shown = f"{data_key!r} {data_key!s} {data_key} {[data_key]} { ({'k': data_key}) }"
    for raw in (data_key.key, data_key.iv):
        for form in (base64.b64encode(raw).decode(), raw.hex(), repr(raw)):
            assert form not in shown
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(data_key)


def test_private_key_pem_from_vault_kv_is_masked_and_the_provider_refuses_pickling(vault_root: hvac.Client) -> None:
    path = f"cse/hygiene-{uuid.uuid4().hex[:8]}"
    private_pem = pem(0, "pkcs1").decode()
    vault_root.secrets.kv.v2.create_or_update_secret(path=path, secret={"private_key": private_pem})
    cmk = VaultKvRsaKey(vault_root, secret_path=path)
    cmk.wrap(DataKey.generate())
    line = private_pem.splitlines()[3]
    assert private_pem not in _redact(private_pem) and line not in _redact(f"debug: {line}")
    assert "PRIVATE" not in repr(cmk)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(cmk)
