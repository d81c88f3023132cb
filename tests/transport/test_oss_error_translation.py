"""OSS failures leave the transport as this package's errors, one line naming the bucket, the object
and the endpoint with the likely fix; remedies in the Python API's words through the hook.

Real faults from the local OSS server (a missing bucket, a wrong secret, a closed port); a stand-in
bucket only for ``AccessDenied``, which the server cannot produce for a signed request.
"""

from __future__ import annotations

import dataclasses
import pickle
import socket
import uuid
from collections.abc import Callable
from typing import Any

import oss2
import oss2.exceptions
import pytest

from airflow_provider_osscse.exceptions import (
    BucketNotFoundError,
    NoMatchingKeyError,
    NotEncryptedError,
    ObjectNotFoundError,
    OssAccessDeniedError,
    OssCredentialsError,
    OssUnavailableError,
)
from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook
from airflow_provider_osscse.keys.reference import resolve_cmk
from airflow_provider_osscse.transport.encrypted_objects import EncryptedObjects, TransferConfig
from airflow_provider_osscse.transport.oss_client import OssClientFactory, OssSettings
from airflow_provider_osscse.transport.retry import DEFAULT_RETRY
from airflow_provider_osscse.triggers.encrypted_oss_key import is_transient_oss_error
from tests.transfer_fixtures import BUCKET

FAST = dataclasses.replace(DEFAULT_RETRY, attempts=2, initial_backoff=0.01, max_backoff=0.02)


def objects(
    server: Any, *, connection: str = "oss_test", bucket: str | None = BUCKET, **changes: Any
) -> EncryptedObjects:
    """The transport on the local server as a hook builds it, with ``changes`` to the settings."""
    settings = OssSettings(
        access_key_id=server.access_key_id,
        access_key_secret=server.access_key_secret,
        region=server.region,
        endpoint=server.endpoint,
        default_bucket=bucket,
        connect_timeout=2,
    )
    factory = OssClientFactory(dataclasses.replace(settings, **changes))
    return EncryptedObjects(factory.bucket, TransferConfig(retry=FAST), connection_name=connection)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- remedies in the Python API's words ----------------------------------------------------------


def test_reading_a_plaintext_object_says_allow_plaintext_as_the_hook_argument(
    make_hook: Callable[..., EncryptedOSSHook],
) -> None:
    key = f"translation/plain-{uuid.uuid4().hex[:8]}"
    make_hook().get_bucket().put_object(key, b"plain")
    with pytest.raises(NotEncryptedError) as caught:
        make_hook().read(key)
    assert "not client-side encrypted; pass allow_plaintext=True" in str(caught.value)
    assert "--allow-plaintext" not in str(caught.value)


def test_reading_without_a_cmk_names_the_objects_cmk_and_the_hook_arguments(
    make_hook: Callable[..., EncryptedOSSHook],
) -> None:
    key = f"translation/enc-{uuid.uuid4().hex[:8]}"
    make_hook().upload(b"rows", key)
    identity = make_hook().inspect(key).cmk
    with pytest.raises(NoMatchingKeyError) as caught:
        make_hook(cmk=None).read(key)
    message = str(caught.value)
    assert f"CMK {identity!r} (header x-oss-meta-osscse-cmk)" in message and "no CMK was given" in message
    assert "pass cmk= or decrypt_cmks= naming that CMK" in message and "--cmk" not in message


# -- OSS errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["inspect", "exists", "list_keys", "put"])
def test_a_missing_bucket_is_named_with_its_endpoint_and_is_still_an_object_not_found(
    oss_env: Any, rsa_ref: str, make_hook: Callable[..., EncryptedOSSHook], operation: str
) -> None:
    bucket = f"missing-{uuid.uuid4().hex[:8]}"
    hook = make_hook()
    call = {
        "inspect": lambda: hook.inspect("k", bucket),
        "exists": lambda: hook.exists("k", bucket),
        "list_keys": lambda: list(hook.list_keys("", bucket)),
        "put": lambda: hook.upload(b"rows", "k", bucket),
    }[operation]
    with pytest.raises(BucketNotFoundError) as caught:
        call()
    error = caught.value
    assert isinstance(error, ObjectNotFoundError)  # what callers caught for a missing object or bucket
    assert isinstance(error.__cause__, oss2.exceptions.NoSuchBucket)  # the original, kept as the cause
    assert (error.status, error.code, error.bucket, error.endpoint) == (404, "NoSuchBucket", bucket, oss_env.endpoint)
    assert str(error) == (
        f"bucket '{bucket}' does not exist at {oss_env.endpoint} (NoSuchBucket, HTTP 404): "
        "create the bucket, or fix the bucket name"
    )


def test_a_missing_default_bucket_points_at_the_connections_schema(oss_env: Any) -> None:
    bucket = f"missing-{uuid.uuid4().hex[:8]}"
    with pytest.raises(BucketNotFoundError, match=r"fix the schema \(default bucket\) of connection 'oss_orders'"):
        objects(oss_env, connection="oss_orders", bucket=bucket).inspect("k")


def test_a_missing_object_keeps_its_message(oss_env: Any) -> None:
    with pytest.raises(ObjectNotFoundError) as caught:
        objects(oss_env).inspect("translation/none")
    assert type(caught.value) is ObjectNotFoundError
    assert str(caught.value) == f"oss://{BUCKET}/translation/none does not exist"


def test_a_wrong_secret_is_a_credentials_error_without_the_string_to_sign_or_the_secret(oss_env: Any) -> None:
    secret = f"wrong-{uuid.uuid4().hex}"
    with pytest.raises(OssCredentialsError) as caught:
        objects(oss_env, connection="oss_wrong", access_key_secret=secret).inspect("translation/any")
    error = caught.value
    assert isinstance(error.__cause__, oss2.exceptions.SignatureDoesNotMatch)
    assert (error.status, error.code) == (403, "SignatureDoesNotMatch") and error.request_id
    assert "check the access key secret of connection 'oss_wrong'" in str(error)
    copy = pickle.loads(pickle.dumps(error))  # errors cross process boundaries (triggers, pools)
    assert (type(copy), copy.code, str(copy)) == (OssCredentialsError, error.code, str(error))
    for shown in (str(error), repr(error), repr(vars(error))):
        assert "StringToSign" not in shown and secret not in shown and "{'status'" not in shown


def test_an_unreachable_endpoint_is_unavailable_and_stays_transient_for_the_sensor(oss_env: Any) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(OssUnavailableError) as caught:
        objects(oss_env, connection="oss_down", endpoint=endpoint).inspect("translation/any")
    error = caught.value
    assert str(error).startswith(
        f"cannot reach OSS at {endpoint} for oss://{BUCKET}/translation/any (connection refused"
    )
    assert "check the endpoint and region of connection 'oss_down'" in str(error)
    assert is_transient_oss_error(error)  # the trigger keeps waiting through an outage


class DenyingGets:
    """A stand-in bucket: the real one, but every GET is refused with ``AccessDenied``.

    The local server refuses only anonymous requests; a RAM policy denying GetObject to a signed
    request is a fault no local server produces.
    """

    def __init__(self, real: oss2.Bucket) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def get_object(self, *args: Any, **kwargs: Any) -> Any:
        raise oss2.exceptions.AccessDenied(
            403, {"x-oss-request-id": "REQ-DENIED"}, b"", {"Code": "AccessDenied", "Message": "denied"}
        )


def test_access_denied_while_streaming_names_the_ram_action(
    oss_env: Any, make_hook: Callable[..., EncryptedOSSHook], rsa_ref: str
) -> None:
    key = f"translation/denied-{uuid.uuid4().hex[:8]}"
    make_hook().upload(b"rows", key)
    factory = OssClientFactory(
        OssSettings(oss_env.access_key_id, oss_env.access_key_secret, oss_env.region, oss_env.endpoint)
    )
    denying = EncryptedObjects(
        lambda name: DenyingGets(factory.bucket(name)), TransferConfig(retry=FAST), connection_name="oss_reader"
    )
    stream = denying.stream(key, resolve_cmk(rsa_ref), bucket=BUCKET)  # HEAD and unwrap pass; GETs fail
    with pytest.raises(OssAccessDeniedError) as caught:
        b"".join(stream)
    message = str(caught.value)
    assert f"denied stream of oss://{BUCKET}/{key}" in message and "connection 'oss_reader'" in message
    assert "allow oss:GetObject" in message and "RAM policy" in message
    assert caught.value.request_id == "REQ-DENIED"
