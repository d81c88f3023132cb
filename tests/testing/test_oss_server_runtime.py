"""The local OSS server beyond oss2: alibabacloud-oss-v2, the command line, faults, storage at rest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import alibabacloud_oss_v2 as oss
import oss2
import pytest

from airflow_provider_osscse.testing.oss_server import LocalOSSServer

PART = 100 * 1024


@pytest.fixture
def v2_client(osscse_oss_server: LocalOSSServer) -> oss.Client:
    server = osscse_oss_server
    server.create_bucket("oss-server-v2")
    config = oss.config.load_default()
    config.credentials_provider = oss.credentials.StaticCredentialsProvider(
        server.access_key_id, server.access_key_secret
    )
    config.region = server.region
    config.endpoint = server.endpoint
    config.use_path_style = True
    return oss.Client(config)


def test_v2_sdk_put_get_head_and_list(v2_client: oss.Client) -> None:
    key = "v2/dir/a key+with%odd=chars"
    put = v2_client.put_object(
        oss.PutObjectRequest(bucket="oss-server-v2", key=key, body=b"v2 data", metadata={"Owner": "me"})
    )
    assert put.status_code == 200
    got = v2_client.get_object(oss.GetObjectRequest(bucket="oss-server-v2", key=key))
    assert got.body.read() == b"v2 data" and got.metadata == {"owner": "me"}
    head = v2_client.head_object(oss.HeadObjectRequest(bucket="oss-server-v2", key=key))
    assert head.content_length == 7 and head.etag == put.etag
    listed = v2_client.list_objects_v2(oss.ListObjectsV2Request(bucket="oss-server-v2", prefix="v2/", delimiter="/"))
    assert [p.prefix for p in listed.common_prefixes] == ["v2/dir/"]
    listed = v2_client.list_objects_v2(oss.ListObjectsV2Request(bucket="oss-server-v2", prefix="v2/dir/"))
    assert [o.key for o in listed.contents] == [key]


def test_v2_sdk_multipart_round_trip(v2_client: oss.Client) -> None:
    bucket, key = "oss-server-v2", "v2/multipart"
    chunks = [os.urandom(PART), os.urandom(1000)]
    init = v2_client.initiate_multipart_upload(oss.InitiateMultipartUploadRequest(bucket=bucket, key=key))
    parts = [
        oss.UploadPart(
            part_number=n,
            etag=v2_client.upload_part(
                oss.UploadPartRequest(bucket=bucket, key=key, upload_id=init.upload_id, part_number=n, body=chunk)
            ).etag,
        )
        for n, chunk in enumerate(chunks, 1)
    ]
    v2_client.complete_multipart_upload(
        oss.CompleteMultipartUploadRequest(
            bucket=bucket,
            key=key,
            upload_id=init.upload_id,
            complete_multipart_upload=oss.CompleteMultipartUpload(parts=parts),
        )
    )
    assert v2_client.get_object(oss.GetObjectRequest(bucket=bucket, key=key)).body.read() == b"".join(chunks)


def test_v2_sdk_missing_key_is_no_such_key(v2_client: oss.Client) -> None:
    with pytest.raises(oss.exceptions.OperationError) as caught:
        v2_client.get_object(oss.GetObjectRequest(bucket="oss-server-v2", key="v2/absent"))
    assert isinstance(caught.value.unwrap(), oss.exceptions.ServiceError)
    assert caught.value.unwrap().code == "NoSuchKey"


@pytest.fixture
def fault_bucket(osscse_oss_server: LocalOSSServer) -> Iterator[oss2.Bucket]:
    server = osscse_oss_server
    server.create_bucket("oss-server-faults")
    yield oss2.Bucket(
        oss2.AuthV4(server.access_key_id, server.access_key_secret),
        server.endpoint,
        "oss-server-faults",
        region=server.region,
    )
    server.clear_faults()


def test_reset_fault_drops_the_connection_once(fault_bucket: oss2.Bucket, osscse_oss_server: LocalOSSServer) -> None:
    osscse_oss_server.inject_fault("PUT", path_contains="reset-me", action="reset")
    with pytest.raises(oss2.exceptions.RequestError):
        fault_bucket.put_object("reset-me", b"x" * 1000)
    fault_bucket.put_object("reset-me", b"ok")  # the fault has expired
    assert fault_bucket.get_object("reset-me").read() == b"ok"


def test_status_fault_answers_internal_error_then_expires(
    fault_bucket: oss2.Bucket, osscse_oss_server: LocalOSSServer
) -> None:
    fault_bucket.put_object("flaky", b"v")
    osscse_oss_server.inject_fault("GET", path_contains="flaky", action="status:503", times=2)
    for _ in range(2):
        with pytest.raises(oss2.exceptions.ServerError) as caught:
            fault_bucket.get_object("flaky")
        assert (caught.value.status, caught.value.code) == (503, "InternalError")
    assert fault_bucket.get_object("flaky").read() == b"v"


def test_delay_fault_and_query_matching(fault_bucket: oss2.Bucket, osscse_oss_server: LocalOSSServer) -> None:
    upload_id = fault_bucket.init_multipart_upload("slow").upload_id
    osscse_oss_server.inject_fault(query_contains="partNumber=1", action="delay:0.3")
    started = time.monotonic()
    fault_bucket.upload_part("slow", upload_id, 1, b"p")
    assert time.monotonic() - started >= 0.3
    assert [u.upload_id for u in osscse_oss_server.list_multipart_uploads("oss-server-faults")] == [upload_id]
    fault_bucket.abort_multipart_upload("slow", upload_id)
    assert osscse_oss_server.list_multipart_uploads("oss-server-faults") == []


def test_unknown_fault_action_is_refused(osscse_oss_server: LocalOSSServer) -> None:
    with pytest.raises(ValueError, match="unknown fault action 'explode'"):
        osscse_oss_server.inject_fault(action="explode")


def test_disk_layout_holds_exact_bytes_and_survives_restart(tmp_path: Path) -> None:
    with LocalOSSServer("AK", "SK", data_dir=tmp_path) as server:
        server.create_bucket("disk")
        bucket = oss2.Bucket(oss2.AuthV4("AK", "SK"), server.endpoint, "disk", region=server.region)
        bucket.put_object("a/b c", b"at rest", headers={"x-oss-meta-x": "1"})
        server.overwrite_stored("disk", "a/b c", metadata={"x": "2"})
    object_file = tmp_path / "disk" / "objects" / "a%2Fb c"
    assert object_file.read_bytes() == b"at rest"
    sidecar = json.loads((tmp_path / "disk" / "meta" / "a%2Fb c.json").read_text())
    assert sidecar["key"] == "a/b c" and sidecar["metadata"] == {"x-oss-meta-x": "2"}
    with LocalOSSServer("AK", "SK", data_dir=tmp_path) as again:
        stored = again.stored_object("disk", "a/b c")
        assert stored.data == b"at rest" and stored.metadata == {"x-oss-meta-x": "2"}


def test_overwrite_stored_tampers_bytes_and_sdk_sees_them(
    osscse_oss_server: LocalOSSServer, fault_bucket: oss2.Bucket
) -> None:
    fault_bucket.put_object("tamper", b"original")
    osscse_oss_server.overwrite_stored("oss-server-faults", "tamper", data=b"tampered!")
    assert fault_bucket.get_object("tamper").read() == b"tampered!"
    assert osscse_oss_server.stored_object("oss-server-faults", "tamper").data == b"tampered!"


def test_command_line_prints_endpoint_serves_and_exits_zero_on_sigterm(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_osscse.testing.oss_server",
            "--port",
            "0",
            "--access-key-id",
            "AK",
            "--access-key-secret",
            "SK",
            "--data-dir",
            str(tmp_path),
            "--bucket",
            "cli",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        endpoint = process.stdout.readline().strip()
        assert endpoint.startswith("http://127.0.0.1:")
        bucket = oss2.Bucket(oss2.AuthV4("AK", "SK"), endpoint, "cli", region="cn-hangzhou")
        bucket.put_object("k", b"from the cli")
        assert bucket.get_object("k").read() == b"from the cli"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
