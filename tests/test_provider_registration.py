"""Airflow discovers the package as a provider, and its metadata is what Airflow requires."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

from airflow_provider_osscse.provider_info import get_provider_info


def test_provider_info_entry_point_is_registered_under_the_distribution_name() -> None:
    eps = importlib.metadata.entry_points(group="apache_airflow_provider")
    ours = [ep for ep in eps if ep.value.startswith("airflow_provider_osscse")]
    assert len(ours) == 1
    info = ours[0].load()()
    dist = importlib.metadata.distribution("airflow-provider-osscse")
    assert info["package-name"] == dist.metadata["Name"]


def test_every_class_named_in_provider_info_imports() -> None:
    import importlib

    info = get_provider_info()
    paths: list[str] = [ct["hook-class-name"] for ct in info["connection-types"]]
    for section in ("hooks", "operators", "sensors", "triggers"):
        for entry in info.get(section, []):
            paths.extend(entry.get("python-modules", []) + entry.get("class-names", []))
    paths.extend(entry["python-module"] for entry in info.get("transfers", []))
    for path in paths:
        module_name, _, attr = path.rpartition(".")
        try:
            module = importlib.import_module(path)
        except ModuleNotFoundError:
            module = importlib.import_module(module_name)
            assert hasattr(module, attr), path


def test_connection_types_use_declarative_conn_fields() -> None:
    for ct in get_provider_info()["connection-types"]:
        assert "conn-fields" in ct and "ui-field-behaviour" in ct
        assert ct["connection-type"] != "oss", "the alibaba provider owns the oss type; reuse it, do not redeclare"


def test_airflow_cli_lists_the_provider(tmp_path: Path) -> None:
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "get", "airflow-provider-osscse", "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=True,
    ).stdout
    rows = json.loads(out.strip().splitlines()[-1])
    assert rows[0]["Provider"] == "airflow-provider-osscse"


def test_airflow_cli_lists_our_hooks_by_connection_type(tmp_path: Path) -> None:
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "hooks", "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=True,
    ).stdout
    rows = {row["connection_type"]: row for row in json.loads(out.strip().splitlines()[-1])}
    assert rows["oss_cse"]["class"] == "airflow_provider_osscse.hooks.encrypted_oss.EncryptedOSSHook"
    assert rows["alicloud_kms"]["class"] == "airflow_provider_osscse.hooks.alicloud_kms.AlicloudKmsHook"
