"""Issue 9 on the sensor and its trigger: untagged objects and objects under another CMK fail, in poke
and deferrable modes; the CMK identity is resolved on the worker, never re-derived by the trigger.

Observed defects (before the change): ``require_integrity_tag`` defaulted to ``False``, so an object
stripped of its integrity tag satisfied the sensor; and the trigger turned ``expected_cmk``
references into identities by string surgery (``vault-kv://conn/secret/x`` -> ``vault-kv:secret/x``),
which no longer names anything: a Vault KV (or RSA file) CMK's identity is its public key's
fingerprint, known only by reading the key. Every check runs against the local OSS server and
OpenBao through the real hook.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook
from airflow_provider_osscse.sensors.encrypted_oss_key import EncryptedOSSKeySensor
from airflow_provider_osscse.triggers.encrypted_oss_key import EncryptedOSSKeyTrigger
from tests.operators.fixtures import KV_CMK, KV_DECRYPT_CMK, TEST_BUCKET, TRANSIT_CMK

pytestmark = pytest.mark.usefixtures("osscse_services")

INTEGRITY_HEADER = "x-oss-meta-osscse-integrity"


@pytest.fixture
def prefix() -> str:
    return f"sensor-integrity/{uuid.uuid4().hex}/"


def sensor(**kwargs: Any) -> EncryptedOSSKeySensor:
    return EncryptedOSSKeySensor(task_id="s", bucket_name=TEST_BUCKET, poke_interval=0.05, timeout=10, **kwargs)


def upload(key: str, cmk: str = TRANSIT_CMK) -> None:
    EncryptedOSSHook("oss_default", cmk=cmk).upload([b"payload " * 10], key, TEST_BUCKET)


def strip_tag(server: Any, key: str) -> None:
    stored = server.stored_object(TEST_BUCKET, key)
    server.overwrite_stored(
        TEST_BUCKET, key, metadata={k: v for k, v in stored.metadata.items() if k != INTEGRITY_HEADER}
    )


def kv_identity(osscse_services: dict[str, Any]) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from airflow_provider_osscse.keys.rsa_pem import rsa_identity

    private = serialization.load_pem_private_key(osscse_services["kv_private_pem"], password=None)
    public = private.public_key()
    assert isinstance(public, rsa.RSAPublicKey)  # the fixture's KV key pair is RSA
    return rsa_identity(public)


def run_deferred(deferred: TaskDeferred, later: Callable[[], None] | None = None) -> dict[str, Any]:
    """Run the deferred trigger to its first event, calling ``later`` once it is waiting."""

    async def scenario() -> dict[str, Any]:
        task = asyncio.ensure_future(deferred.trigger.run().__anext__())
        if later is not None:
            await asyncio.sleep(0.2)
            assert not task.done(), "the trigger fired before the object appeared"
            await asyncio.to_thread(later)
        return dict((await asyncio.wait_for(task, 20)).payload)

    return asyncio.run(scenario())


def defer(s: EncryptedOSSKeySensor) -> TaskDeferred:
    with pytest.raises(TaskDeferred) as deferred:
        s.execute({})
    return deferred.value


# ------------------------------------------------------------------ stripped integrity tag
def test_require_integrity_tag_is_the_default_of_sensor_and_trigger() -> None:
    assert sensor(bucket_key="k").require_integrity_tag is True
    assert EncryptedOSSKeyTrigger(bucket_key="k").require_integrity_tag is True


def test_stripped_tag_fails_the_sensor_in_poke_mode(osscse_services: dict[str, Any], prefix: str) -> None:
    upload(prefix + "a.csv")
    strip_tag(osscse_services["oss"], prefix + "a.csv")
    with pytest.raises(AirflowFailException, match="has no integrity tag"):
        sensor(bucket_key=prefix).poke({})
    with pytest.raises(AirflowFailException, match="has no integrity tag"):
        sensor(bucket_key=prefix + "a.csv", mode="poke").execute({})
    # Accepting untagged objects is an explicit opt-out.
    assert sensor(bucket_key=prefix, require_integrity_tag=False).poke({}) is True


def test_stripped_tag_fails_the_sensor_in_deferrable_mode(osscse_services: dict[str, Any], prefix: str) -> None:
    key = prefix + "late.csv"
    deferred = defer(sensor(bucket_key=key, deferrable=True))
    assert deferred.trigger.serialize()[1]["require_integrity_tag"] is True

    def stripped_object_appears() -> None:
        upload(key)
        strip_tag(osscse_services["oss"], key)

    event = run_deferred(deferred, stripped_object_appears)
    assert event["status"] == "violation" and "has no integrity tag" in event["message"]
    with pytest.raises(AirflowFailException, match="has no integrity tag"):
        sensor(bucket_key=key, deferrable=True).execute_complete({}, event)


# ------------------------------------------------------------------ CMK identity
def test_vault_kv_reference_is_resolved_to_the_public_key_fingerprint_on_the_worker(
    osscse_services: dict[str, Any],
    prefix: str,
) -> None:
    upload(prefix + "kv.csv", KV_CMK)
    identity = kv_identity(osscse_services)
    for expected in (KV_CMK, KV_DECRYPT_CMK, identity):  # any connection reaching the key, or its identity
        s = sensor(bucket_key=prefix + "kv.csv", expected_cmk=expected, expected_wrap_alg="RSA/NONE/PKCS1Padding")
        assert s.poke({}) is True, expected
        matched = s.execute({})  # the XCom downstream tasks get
        assert matched is not None
        assert matched[0]["cmk"] == identity and identity.startswith("rsa-sha256:")
        assert matched[0]["integrity_tag"] is True and matched[0]["integrity_bound"] is True


def test_object_under_another_cmk_fails_in_poke_mode(osscse_services: dict[str, Any], prefix: str) -> None:
    upload(prefix + "transit.csv", TRANSIT_CMK)
    with pytest.raises(AirflowFailException, match=f"expected {kv_identity(osscse_services)}"):
        sensor(bucket_key=prefix + "transit.csv", expected_cmk=KV_CMK).poke({})


def test_object_under_another_cmk_fails_in_deferrable_mode_and_the_trigger_gets_the_identity(
    osscse_services: dict[str, Any],
    prefix: str,
) -> None:
    key = prefix + "later.csv"
    deferred = defer(sensor(bucket_key=key, expected_cmk=KV_DECRYPT_CMK, deferrable=True))
    kwargs = deferred.trigger.serialize()[1]
    identity = kv_identity(osscse_services)
    assert kwargs["expected_cmk"] == identity  # an identity, not the reference (no connection id, no "://")
    event = run_deferred(deferred, lambda: upload(key, TRANSIT_CMK))
    assert event["status"] == "violation"
    assert "vault-transit:transit/osscse-demo" in event["message"] and f"expected {identity}" in event["message"]


def test_deferrable_sensor_succeeds_for_the_object_under_the_expected_kv_cmk(
    osscse_services: dict[str, Any],
    prefix: str,
) -> None:
    key = prefix + "ok.csv"
    deferred = defer(sensor(bucket_key=key, expected_cmk=KV_CMK, deferrable=True))
    event = run_deferred(deferred, lambda: upload(key, KV_CMK))
    assert event["status"] == "success" and event["objects"][0]["cmk"] == kv_identity(osscse_services)


def test_trigger_never_interprets_a_cmk_reference(prefix: str) -> None:
    """A trigger carrying a reference (deferred by an earlier version) fails closed with what to do."""
    upload(prefix + "x.csv")
    trigger = EncryptedOSSKeyTrigger(
        bucket_key=prefix + "x.csv", bucket_name=TEST_BUCKET, expected_cmk=TRANSIT_CMK, poll_interval=0.05
    )

    async def first_event() -> dict[str, Any]:
        return dict((await trigger.run().__anext__()).payload)

    event = asyncio.run(first_event())
    assert event["status"] == "error" and "CMK reference" in event["message"] and "clear the task" in event["message"]
