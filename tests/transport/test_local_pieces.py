"""The transport pieces that need no server: settings, results, progress, atomic files."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import oss2
import pytest

from airflow_provider_osscse.envelope.multipart import MIN_PART_SIZE, plan_parts
from airflow_provider_osscse.exceptions import OssConnectionError
from airflow_provider_osscse.transport.atomic_file import atomic_write
from airflow_provider_osscse.transport.oss_client import OssSettings
from airflow_provider_osscse.transport.progress import ProgressReporter
from airflow_provider_osscse.transport.results import RewrapResult, UploadResult

EXTRA = {"auth_type": "AK", "access_key_id": "AK1", "access_key_secret": "s3cr3t-value", "region": "cn-hangzhou"}


def test_settings_default_to_v4_and_regional_https_endpoint() -> None:
    settings = OssSettings.from_connection_fields("bkt", EXTRA)
    assert settings.signature_version == "v4"
    assert settings.resolved_endpoint == "https://oss-cn-hangzhou.aliyuncs.com"
    assert settings.default_bucket == "bkt"
    assert isinstance(settings.make_auth(), oss2.AuthV4)


def test_settings_v1_and_sts_token_choose_matching_auth() -> None:
    assert isinstance(
        OssSettings.from_connection_fields(None, {**EXTRA, "signature_version": "v1"}).make_auth(), oss2.Auth
    )
    sts = OssSettings.from_connection_fields(None, {**EXTRA, "security_token": "tok-123456"})
    assert isinstance(sts.make_auth(), oss2.StsAuth)


def test_settings_repr_hides_secret_and_token() -> None:
    text = repr(OssSettings.from_connection_fields(None, {**EXTRA, "security_token": "tok-123456"}))
    assert "s3cr3t-value" not in text and "tok-123456" not in text


@pytest.mark.parametrize(
    "extra",
    [
        {**EXTRA, "auth_type": "RAM"},
        {k: v for k, v in EXTRA.items() if k != "access_key_secret"},
        {**EXTRA, "signature_version": "v9"},
        {k: v for k, v in EXTRA.items() if k != "region"},
    ],
)
def test_settings_reject_incomplete_connections(extra: dict[str, str]) -> None:
    with pytest.raises(OssConnectionError):
        OssSettings.from_connection_fields(None, extra)


def test_results_to_xcom_is_json_serialisable() -> None:
    result = UploadResult("oss://b/k", "b", "k", 3, "E", "rsa-file:///k.pem", None, "RSA/NONE/PKCS1Padding", "tag", 1)
    assert json.loads(json.dumps(result.to_xcom()))["uri"] == "oss://b/k"
    assert RewrapResult("oss://b/k", "b", "k", "failed", None, "x", None, None, "boom").to_xcom()["error"] == "boom"


def test_planned_byte_ranges_cover_the_object_with_the_last_part_short() -> None:
    size = 2 * MIN_PART_SIZE + 50
    assert plan_parts(size, MIN_PART_SIZE).byte_ranges() == [
        (0, MIN_PART_SIZE - 1),
        (MIN_PART_SIZE, 2 * MIN_PART_SIZE - 1),
        (2 * MIN_PART_SIZE, size - 1),
    ]
    assert plan_parts(0, MIN_PART_SIZE).byte_ranges() == [(0, -1)]


def test_progress_reports_throttled_by_percent_step(caplog: pytest.LogCaptureFixture) -> None:
    ticks = iter(range(100))
    seen = []
    reporter = ProgressReporter(
        "upload",
        1000,
        logger=logging.getLogger("t"),
        callback=seen.append,
        interval=1e9,
        step_percent=25,
        min_report_size=0,
        clock=lambda: float(next(ticks)),
    )
    with caplog.at_level(logging.INFO, logger="t"):
        for _ in range(10):
            reporter.add(100)
        reporter.finish()
    assert [s.done for s in seen] == [300, 600, 900, 1000]
    assert "upload: " in caplog.text and "%" in caplog.text


def test_progress_does_not_log_small_transfers(caplog: pytest.LogCaptureFixture) -> None:
    reporter = ProgressReporter("upload", 10, logger=logging.getLogger("t"), step_percent=1)
    with caplog.at_level(logging.INFO, logger="t"):
        reporter.add(10)
        reporter.finish()
    assert caplog.text == ""


def test_atomic_write_renames_only_on_success(tmp_path: Path) -> None:
    dest = tmp_path / "out.bin"
    with atomic_write(dest) as handle:
        handle.write(b"new")
    assert dest.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_atomic_write_failure_leaves_earlier_file_untouched(tmp_path: Path) -> None:
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"earlier")

    def write_then_fail() -> None:
        with atomic_write(dest) as handle:
            handle.write(b"unverified")
            raise RuntimeError("tag mismatch")

    with pytest.raises(RuntimeError, match="tag mismatch"):
        write_then_fail()
    assert dest.read_bytes() == b"earlier"
    assert os.listdir(tmp_path) == ["out.bin"]
