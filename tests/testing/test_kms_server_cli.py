"""The local KMS server's command line: endpoint line on stdout, serves, exits 0 on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys

from alibabacloud_kms20160120 import models as kms_models
from alibabacloud_kms20160120.client import Client as TeaKmsClient
from alibabacloud_tea_openapi.models import Config


def test_command_line_prints_endpoint_serves_created_key_and_exits_zero_on_sigterm() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_osscse.testing.kms_server",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--access-key-id",
            "AK-cli",
            "--access-key-secret",
            "SK-cli",
            "--region",
            "cn-beijing",
            "--create-key",
            "alias/cli-key",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        client = TeaKmsClient(
            Config(
                access_key_id="AK-cli",
                access_key_secret="SK-cli",
                endpoint=url.removeprefix("http://"),
                protocol="http",
                region_id="cn-beijing",
            )
        )
        metadata = client.describe_key(kms_models.DescribeKeyRequest(key_id="alias/cli-key")).body.key_metadata
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert stdout == ""
    assert f"{metadata.key_id} alias/cli-key" in stderr
