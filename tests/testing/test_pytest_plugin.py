"""The pytest plugin's connection fixture makes the local services reachable through Airflow."""

from __future__ import annotations

import json


def test_airflow_connections_point_at_the_local_services(
    osscse_airflow_connections, osscse_oss_server, osscse_openbao, osscse_kms_server
) -> None:
    from airflow.sdk import BaseHook

    oss = BaseHook.get_connection("oss_default")
    assert oss.conn_type == "oss"
    assert oss.extra_dejson["endpoint"] == osscse_oss_server.endpoint
    assert oss.extra_dejson["access_key_id"] == osscse_oss_server.access_key_id

    vault = BaseHook.get_connection("vault_default")
    assert f"http://{vault.host}:{vault.port}" == osscse_openbao.address

    kms = BaseHook.get_connection("kms_default")
    assert kms.extra_dejson["endpoint"] == osscse_kms_server.endpoint
    assert set(osscse_airflow_connections) == {
        "AIRFLOW_CONN_OSS_DEFAULT",
        "AIRFLOW_CONN_VAULT_DEFAULT",
        "AIRFLOW_CONN_KMS_DEFAULT",
    }
    assert all(json.loads(v) for v in osscse_airflow_connections.values())
