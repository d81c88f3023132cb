"""Issue 11 on the sensor and its trigger: what a real deployment showed.

Observed defects (before the change), each reproduced here against the local OSS server:

- a policy violation (plaintext object, another CMK, no integrity tag) seen by the trigger ended in
  ``execute_complete`` raising a plain ``AirflowException``: the task went ``up_for_retry`` though a
  retry cannot change the object, and poke mode fails at once;
- an OSS outage of about a second during deferral (connection refused, 5xx) ended the wait with an
  error event after the hook's own three or four quick retries, long before the sensor's timeout;
- every poll of a key that does not exist yet logged oss2's INFO ``Exception: {...}`` line (the 404
  of the HEAD) into the task log.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import uuid
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook
from airflow_provider_osscse.sensors.encrypted_oss_key import EncryptedOSSKeySensor
from airflow_provider_osscse.triggers.encrypted_oss_key import (
    EncryptedOSSKeyTrigger,
    is_transient_oss_error,
    quiet_oss2_logs,
)
from tests.operators.fixtures import TEST_BUCKET, TRANSIT_CMK

pytestmark = pytest.mark.usefixtures("osscse_services")


@pytest.fixture
def prefix() -> str:
    return f"sensor-deploy/{uuid.uuid4().hex}/"


def sensor(**kwargs: Any) -> EncryptedOSSKeySensor:
    return EncryptedOSSKeySensor(task_id="s", bucket_name=TEST_BUCKET, poke_interval=0.05, timeout=30, **kwargs)


def upload(key: str) -> None:
    EncryptedOSSHook("oss_default", cmk=TRANSIT_CMK).upload([b"payload " * 10], key, TEST_BUCKET)


def first_event(trigger: EncryptedOSSKeyTrigger, timeout: float = 30) -> dict[str, Any]:
    async def scenario() -> dict[str, Any]:
        return dict((await asyncio.wait_for(trigger.run().__anext__(), timeout)).payload)

    return asyncio.run(scenario())


def oss2_exception_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("oss2") and r.getMessage().startswith("Exception: {")]


# ------------------------------------------------------------------ violations fail without retries
def test_plaintext_seen_by_the_trigger_fails_the_task_without_retries(
    osscse_services: dict[str, Any], prefix: str
) -> None:
    osscse_services["bucket"].put_object(prefix + "plain.csv", b"plaintext")
    event = first_event(EncryptedOSSKeyTrigger(bucket_key=prefix, bucket_name=TEST_BUCKET, poll_interval=0.05))
    assert event["status"] == "violation" and "not client-side encrypted" in event["message"]
    with pytest.raises(AirflowFailException, match="not client-side encrypted") as raised:
        sensor(bucket_key=prefix, deferrable=True).execute_complete({}, event)
    assert type(raised.value) is AirflowFailException  # not a plain AirflowException: no up_for_retry


def test_object_under_another_cmk_seen_by_the_trigger_fails_without_retries(prefix: str) -> None:
    upload(prefix + "a.csv")
    trigger = EncryptedOSSKeyTrigger(
        bucket_key=prefix + "a.csv",
        bucket_name=TEST_BUCKET,
        expected_cmk="vault-transit:transit/other",
        poll_interval=0.05,
    )
    event = first_event(trigger)
    assert event["status"] == "violation" and "expected vault-transit:transit/other" in event["message"]
    with pytest.raises(AirflowFailException):
        sensor(bucket_key=prefix + "a.csv", deferrable=True).execute_complete({}, event)


def test_a_trigger_error_that_is_not_a_violation_stays_retryable() -> None:
    with pytest.raises(AirflowException, match="AccessDenied") as raised:
        sensor(bucket_key="k", deferrable=True).execute_complete({}, {"status": "error", "message": "AccessDenied"})
    assert not isinstance(raised.value, AirflowFailException)


# ------------------------------------------------------------------ transient OSS errors during deferral
@pytest.mark.parametrize("action", ["reset", "status:503"])
def test_trigger_keeps_waiting_through_an_oss_outage_and_then_succeeds(
    osscse_services: dict[str, Any], prefix: str, action: str
) -> None:
    """More failed requests than the hook's own retries absorb: the trigger backs off and polls on."""
    key = prefix + "late.csv"
    upload(key)
    server = osscse_services["oss"]
    # Every request for the key fails for a while (12 requests: three polls' worth of hook retries).
    server.inject_fault(None, path_contains=key, action=action, times=12)
    try:
        event = first_event(EncryptedOSSKeyTrigger(bucket_key=key, bucket_name=TEST_BUCKET, poll_interval=0.05))
    finally:
        server.clear_faults()
    assert event["status"] == "success", event
    assert event["objects"][0]["key"] == key


def test_trigger_waits_through_a_one_second_oss_outage_connection_refused(
    osscse_services: dict[str, Any], prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deployment's case: the OSS endpoint refuses connections for about a second mid-wait."""
    from airflow_provider_osscse.testing.oss_server import LocalOSSServer
    from airflow_provider_osscse.testing.pytest_plugin import airflow_connection_env

    shared = osscse_services["oss"]
    with socket.socket() as probe:  # a fixed port, so the restarted server is the same endpoint
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = LocalOSSServer(shared.access_key_id, shared.access_key_secret, region=shared.region, port=port).start()
    try:
        server.create_bucket(TEST_BUCKET)
        monkeypatch.setenv("AIRFLOW_CONN_OSS_OUTAGE", airflow_connection_env(server)["AIRFLOW_CONN_OSS_DEFAULT"])
        key = prefix + "after-outage.csv"
        trigger = EncryptedOSSKeyTrigger(
            bucket_key=key, bucket_name=TEST_BUCKET, oss_conn_id="oss_outage", poll_interval=0.05
        )

        async def scenario() -> dict[str, Any]:
            task = asyncio.ensure_future(trigger.run().__anext__())
            await asyncio.sleep(0.2)  # waiting: the key is not there yet
            await asyncio.to_thread(server.stop)
            await asyncio.sleep(1.2)  # connection refused for every request meanwhile
            assert not task.done(), task.result()
            await asyncio.to_thread(server.start)
            await asyncio.to_thread(
                EncryptedOSSHook("oss_outage", cmk=TRANSIT_CMK).upload, [b"after"], key, TEST_BUCKET
            )
            return dict((await asyncio.wait_for(task, 30)).payload)

        event = asyncio.run(scenario())
    finally:
        server.stop()
    assert event["status"] == "success", event
    assert event["objects"][0]["key"] == key


def test_trigger_does_not_retry_an_error_that_is_not_transient(prefix: str) -> None:
    event = first_event(EncryptedOSSKeyTrigger(bucket_key=prefix + "a.csv", bucket_name="no-such-bucket-osscse"))
    assert event["status"] == "error" and "no-such-bucket-osscse" in event["message"]


# ------------------------------------------------------------------ no per-poll 404 noise
def test_polls_of_a_missing_key_log_no_oss2_exception_lines(prefix: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    oss2_level = logging.getLogger("oss2").level
    key = prefix + "later.csv"
    assert sensor(bucket_key=key).poke({}) is False  # poke mode: one HEAD answered 404

    async def scenario() -> dict[str, Any]:
        task = asyncio.ensure_future(
            EncryptedOSSKeyTrigger(bucket_key=key, bucket_name=TEST_BUCKET, poll_interval=0.05).run().__anext__()
        )
        await asyncio.sleep(0.4)  # several polls, each a 404
        assert not task.done()
        await asyncio.to_thread(upload, key)
        return dict((await asyncio.wait_for(task, 20)).payload)

    assert asyncio.run(scenario())["status"] == "success"
    assert oss2_exception_records(caplog) == []
    assert logging.getLogger("oss2").level == oss2_level  # restored after the polls
    # The quieting is scoped to the polls: oss2 itself still logs when used directly.
    assert EncryptedOSSHook("oss_default").exists(key + ".missing", TEST_BUCKET) is False
    assert oss2_exception_records(caplog) != []


def test_quieting_is_counted_across_concurrent_polls_and_restores_the_level() -> None:
    """The triggerer runs polls of many triggers at once in threads; one finishing early must not
    give oss2 its INFO level back while another still polls, and the last one restores it."""
    oss2_logger = logging.getLogger("oss2")
    before = oss2_logger.level
    inside_first = threading.Event()
    first_may_leave = threading.Event()
    levels: list[int] = []

    def first_poll() -> None:
        with quiet_oss2_logs():
            inside_first.set()
            first_may_leave.wait(5)

    thread = threading.Thread(target=first_poll)
    thread.start()
    inside_first.wait(5)
    with quiet_oss2_logs():
        first_may_leave.set()
        thread.join(5)
        levels.append(oss2_logger.getEffectiveLevel())  # the first poll has left, this one has not
    assert levels == [max(logging.WARNING, levels[0])] and levels[0] >= logging.WARNING
    assert oss2_logger.level == before


def test_an_error_translated_from_a_transient_oss_error_is_transient_too() -> None:
    import oss2.exceptions

    translated = RuntimeError("oss://bucket/key: OSS endpoint unreachable")
    translated.__cause__ = oss2.exceptions.RequestError(ConnectionRefusedError("Connection refused"))  # raise ... from
    assert is_transient_oss_error(translated)
    assert not is_transient_oss_error(RuntimeError("AccessDenied"))
    handled_while = RuntimeError("AccessDenied")
    handled_while.__context__ = translated.__cause__  # raised while handling, not from: judged by itself
    assert not is_transient_oss_error(handled_while)


# ------------------------------------------------------------------ one connection lookup per wait
def test_the_trigger_looks_its_connection_up_once_per_wait_not_per_poll(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the triggerer a lookup is a call to its supervisor; one left waiting when the triggerer
    stops kept the runner from exiting (tests/deployment's restart test). The spy only counts: the
    lookups themselves are Airflow's, against the session's real connection."""
    key = prefix + "arrives-later.csv"
    uploader = EncryptedOSSHook("oss_default", cmk=TRANSIT_CMK)
    uploader.get_conn()  # its own lookup done before the spy counts
    lookups: list[str] = []
    real = EncryptedOSSHook.get_connection.__func__  # type: ignore[attr-defined]  # the classmethod's function

    def counting(cls: type[EncryptedOSSHook], conn_id: str) -> Any:
        lookups.append(conn_id)
        return real(cls, conn_id)

    monkeypatch.setattr(EncryptedOSSHook, "get_connection", classmethod(counting))
    trigger = EncryptedOSSKeyTrigger(bucket_key=key, bucket_name=TEST_BUCKET, poll_interval=0.05)
    timer = threading.Timer(0.6, lambda: uploader.upload([b"payload"], key, TEST_BUCKET))
    timer.start()  # several polls see nothing first
    event = first_event(trigger)
    timer.join()
    assert event["status"] == "success", event
    assert lookups == ["oss_default"]
