"""The sensor succeeds only on objects encrypted as expected; the trigger does the same from the triggerer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook
from airflow_provider_osscse.sensors.encrypted_oss_key import EncryptedOSSKeySensor
from airflow_provider_osscse.triggers.encrypted_oss_key import EncryptedOSSKeyTrigger
from tests.operators.fixtures import TEST_BUCKET, TRANSIT_CMK

pytestmark = pytest.mark.usefixtures("osscse_services")


@pytest.fixture(scope="module")
def objects(osscse_services: dict[str, Any]) -> None:
    EncryptedOSSHook("oss_default", cmk=TRANSIT_CMK).upload([b"x" * 100], "sensor/enc/a.csv", TEST_BUCKET)
    osscse_services["bucket"].put_object("sensor/plain/a.csv", b"plaintext")


def sensor(**kwargs: Any) -> EncryptedOSSKeySensor:
    return EncryptedOSSKeySensor(task_id="s", bucket_name=TEST_BUCKET, poke_interval=0.1, timeout=5, **kwargs)


@pytest.mark.usefixtures("objects")
def test_poke_succeeds_for_encrypted_object_with_expected_cmk_and_wrap_alg() -> None:
    s = sensor(
        bucket_key="sensor/enc/a.csv",
        expected_cmk=TRANSIT_CMK,
        expected_wrap_alg="VAULT/TRANSIT",
        require_integrity_tag=True,
    )
    assert s.poke({}) is True
    matched = s.execute({})
    assert matched is not None
    assert matched[0]["cmk"] == "vault-transit:transit/osscse-demo"  # the XCom downstream tasks get


@pytest.mark.usefixtures("objects")
def test_poke_waits_while_nothing_matches_the_wildcard() -> None:
    assert sensor(bucket_key="sensor/enc/*.parquet", wildcard_match=True).poke({}) is False
    assert sensor(bucket_key="sensor/enc/*.csv", wildcard_match=True).poke({}) is True


@pytest.mark.usefixtures("objects")
def test_plaintext_or_wrong_cmk_fails_fast_instead_of_waiting() -> None:
    with pytest.raises(AirflowFailException, match="not client-side encrypted"):
        sensor(bucket_key="sensor/plain/").poke({})
    with pytest.raises(AirflowFailException, match="expected vault-transit:transit/other"):
        sensor(bucket_key="sensor/enc/", expected_cmk="vault-transit://vault_default/transit/other").poke({})
    assert sensor(bucket_key="sensor/plain/", fail_on_mismatch=False).poke({}) is False


@pytest.mark.usefixtures("objects")
def test_deferrable_sensor_defers_to_a_trigger_carrying_no_secrets() -> None:
    s = sensor(bucket_key="sensor/later/a.csv", deferrable=True, expected_wrap_alg="VAULT/TRANSIT")
    with pytest.raises(TaskDeferred) as deferred:
        s.execute({})
    trigger = deferred.value.trigger
    classpath, kwargs = trigger.serialize()
    assert classpath.endswith("EncryptedOSSKeyTrigger")
    assert set(kwargs) >= {"bucket_key", "oss_conn_id", "expected_wrap_alg"}
    assert not any("secret" in str(v) or v == "root" for v in kwargs.values())


@pytest.mark.usefixtures("objects")
def test_trigger_fires_success_once_the_encrypted_object_appears() -> None:
    trigger = EncryptedOSSKeyTrigger(
        bucket_key="sensor/late/a.csv", bucket_name=TEST_BUCKET, poll_interval=0.1, expected_wrap_alg="VAULT/TRANSIT"
    )

    async def scenario() -> dict[str, Any]:
        runner = trigger.run().__anext__()
        task = asyncio.ensure_future(runner)
        await asyncio.sleep(0.3)
        assert not task.done()
        await asyncio.to_thread(
            EncryptedOSSHook("oss_default", cmk=TRANSIT_CMK).upload, [b"y"], "sensor/late/a.csv", TEST_BUCKET
        )
        return dict((await asyncio.wait_for(task, 10)).payload)

    event = asyncio.run(scenario())
    assert event["status"] == "success" and event["objects"][0]["key"] == "sensor/late/a.csv"


@pytest.mark.usefixtures("objects")
def test_trigger_reports_plaintext_as_a_violation_event() -> None:
    trigger = EncryptedOSSKeyTrigger(bucket_key="sensor/plain/", bucket_name=TEST_BUCKET, poll_interval=0.1)

    async def first_event() -> dict[str, Any]:
        return dict((await trigger.run().__anext__()).payload)

    event = asyncio.run(first_event())
    assert event["status"] == "violation" and "not client-side encrypted" in event["message"]
    with pytest.raises(AirflowFailException, match="not client-side encrypted"):
        sensor(bucket_key="sensor/plain/", deferrable=True).execute_complete({}, event)
