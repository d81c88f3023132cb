"""Nothing the deployment wrote holds a data key, an IV, a Vault token or an OSS/KMS access key secret.

Runs last in the tier (the file name sorts after the others), so it reads what every other test's runs
wrote; any example DAG that has not succeeded yet is triggered here first, so the file also runs alone.
It waits until no DAG run is queued, running or due, then:

1. lists the objects the example and sensor DAGs wrote (oss2, on both OSS servers) and unwraps every
   data key and IV itself (tests/deployment/data_keys.py: hvac, ``cryptography``, the KMS SDK; never
   this project's code), checking one object per wrap-alg decrypts to its known plaintext;
2. collects the service secrets (the OpenBao root token, the OSS and KMS access key secrets, the
   secret fields of every Airflow connection, from the environment and from the metadata DB) and the
   RSA private key the Vault KV CMK holds;
3. scans task logs, component logs, every other file of the Airflow home and the DAGs' data folder, a
   dump of the metadata DB, every XCom value through the REST API, the Celery broker when it is Redis,
   and the objects at rest, for each secret in raw, hex and base64(url) forms
   (tests/deployment/leak_scan.py; tests/deployment/test_leak_scan_unit.py proves each form is found).

Canaries keep the scan honest: the object keys (public) must be found in the task logs, the XCom
values and the DB dump, so an empty or wrong haystack cannot pass; and the secrets list must hold the
data keys of at least every object the example DAGs are known to write.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from airflow_provider_osscse.testing.kms_server import LocalKMSServer
from airflow_provider_osscse.testing.openbao import OpenBaoServer
from airflow_provider_osscse.testing.oss_server import LocalOSSServer
from tests.deployment.airflow_deployment import AirflowDeployment
from tests.deployment.conftest import DEPLOY_BUCKET, EXAMPLE_DAGS
from tests.deployment.data_keys import (
    KeyCustody,
    UnwrappedObject,
    encrypted_objects,
    kms_client,
    kv_private_pem,
    rsa_private_secrets,
)
from tests.deployment.leak_scan import (
    Finding,
    LeakScanner,
    Secret,
    connection_secrets,
    dump_metadata_db,
    files_under,
    raw_only,
    redis_dump,
    service_log_files,
    xcom_values,
)
from tests.operators.fixtures import KV_CMK, seed

pytestmark = [pytest.mark.deployment, pytest.mark.xdist_group("airflow_deployment")]

#: Where tests/deployment/test_sensor_deployment.py puts its objects (in the session's test bucket).
SENSOR_PREFIX = "deployment-sensor/"
#: Connection types whose secret fields are key-service or storage credentials.
CREDENTIAL_CONN_TYPES = frozenset({"oss", "vault", "alicloud_kms"})
#: The prefixes the example DAGs write under, each with the wrap-alg it must have used.
EXPECTED_WRITES = {"transfer/": "VAULT/TRANSIT", "exports/": "VAULT/TRANSIT", "etl/": "RSA/NONE/PKCS1Padding"}


def ensure_example_runs(deployment: AirflowDeployment) -> list[str]:
    """Trigger (by hand, as the UI does) each example DAG that has no successful run yet; wait for it."""
    triggered = []
    for dag_id in ("encrypted_transfer", "vault_key_custody_etl", "compliance_export", "cmk_rotation"):
        if any(run["state"] == "success" for run in deployment.dag_runs(dag_id)):
            continue
        run = deployment.trigger(dag_id)
        final = deployment.wait_for_run(dag_id, run["dag_run_id"], timeout=240)
        assert final["state"] == "success", (dag_id, final)
        triggered.append(dag_id)
    return triggered


def settle(deployment: AirflowDeployment, timeout: float = 300, quiet: float = 3) -> None:
    """Wait until no DAG run is queued or running and no unpaused DAG has a run due (compliance_export's
    catch-up), for ``quiet`` seconds in a row: nothing is then still writing logs, XCom or objects."""
    deadline, quiet_since = time.monotonic() + timeout, None
    while True:
        busy = deployment.api("GET", "/api/v2/dags/~/dagRuns?state=queued&state=running&limit=50")["dag_runs"]
        now = dt.datetime.now(dt.UTC)
        due = [
            d["dag_id"]
            for d in deployment.api("GET", "/api/v2/dags?limit=200")["dags"]
            if not d["is_paused"]
            and d.get("next_dagrun_run_after")
            and dt.datetime.fromisoformat(d["next_dagrun_run_after"]) <= now
        ]
        if busy or due:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet:
            return
        assert time.monotonic() < deadline, f"runs still active {[r['dag_id'] for r in busy]}, due {due}"
        deployment.check_processes()
        time.sleep(0.5)


def oss_bucket(server: LocalOSSServer, bucket: str) -> Any:
    return seed.ensure_bucket(server.endpoint, server.access_key_id, server.access_key_secret, server.region, bucket)


def vault_kv_rsa_key(deployment: AirflowDeployment, openbao: OpenBaoServer) -> tuple[Any, list[Secret]]:
    """The RSA private key of the deployment's Vault KV CMK (read with hvac), and its secret parts."""
    _, mount, path = urlsplit(deployment.env.get("OSSCSE_KV_CMK", KV_CMK)).path.split("/", 2)
    return rsa_private_secrets(f"Vault KV {mount}/{path}", kv_private_pem(openbao.client(), mount, path))


def local_kms_client(kms: LocalKMSServer) -> Any:
    return kms_client(kms.endpoint, kms.access_key_id, kms.access_key_secret, kms.region)


def service_secrets(
    oss: LocalOSSServer, outage: LocalOSSServer, kms: LocalKMSServer, openbao: OpenBaoServer
) -> list[Secret]:
    return [
        Secret("Vault token", "the session OpenBao's root token", openbao.root_token.encode()),
        Secret("OSS access key secret", "the session OSS server", oss.access_key_secret.encode()),
        Secret("OSS access key secret", "the deployment's outage OSS server", outage.access_key_secret.encode()),
        Secret("KMS access key secret", "the session KMS server", kms.access_key_secret.encode()),
    ]


def environment_connections(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """``AIRFLOW_CONN_*`` variables (JSON or URI form) as connection dicts."""
    found: dict[str, dict[str, Any]] = {}
    for name, value in env.items():
        if not name.startswith("AIRFLOW_CONN_"):
            continue
        conn_id = name.removeprefix("AIRFLOW_CONN_").lower()
        if value.lstrip().startswith("{"):
            found[conn_id] = json.loads(value)
        else:
            parts = urlsplit(value)
            found[conn_id] = {"conn_type": parts.scheme.replace("-", "_"), "password": unquote(parts.password or "")}
    return found


def database_connections(deployment: AirflowDeployment) -> dict[str, dict[str, Any]]:
    """Every connection stored in the metadata DB, with its secrets (``airflow connections export``, kept
    in memory only: written into the home it would be found by the scan itself)."""
    exported = deployment.cli("connections", "export", "-", "--file-format", "json")
    assert exported.returncode == 0, exported.stderr[-2000:]
    text = exported.stdout
    document, _ = json.JSONDecoder().raw_decode(text[text.index("{") :])
    return dict(document)


def haystacks(
    deployment: AirflowDeployment, data_dir: Path, objects: list[tuple[LocalOSSServer, str, str]]
) -> Iterator[tuple[str, str, bytes | Path]]:
    """(category, source, bytes or a file) for everything the deployment wrote."""
    home = deployment.home
    task_logs = Path(deployment.env.get("AIRFLOW__LOGGING__BASE_LOG_FOLDER") or home / "logs")
    component_logs = home / "component-logs"
    for path in files_under(task_logs):
        yield "task logs", str(path), path
    for path in files_under(component_logs):
        yield "component logs", str(path), path
    for path in files_under(home):
        if task_logs not in path.parents and component_logs not in path.parents:
            yield "other files in the Airflow home", str(path), path
    for path in files_under(data_dir):
        yield "the DAGs' data folder (inputs, downloads, work files)", str(path), path
    conn = deployment.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    yield "metadata DB dump", f"dump of {conn.split('://', 1)[0]} metadata DB", dump_metadata_db(conn)
    for name, value in xcom_values(deployment.api_url):
        yield "XCom values (REST API)", f"XCom {name}", value
    for variable in ("AIRFLOW__CELERY__BROKER_URL", "AIRFLOW__CELERY__RESULT_BACKEND"):
        url = deployment.env.get(variable, "")
        if url.startswith(("redis://", "rediss://")):
            yield "Redis (Celery)", f"Redis at {variable}", redis_dump(url)
    # The servers' own logs (a failed statement is logged with its values): found by the listening process.
    for url in (conn, deployment.env.get("AIRFLOW__CELERY__BROKER_URL", "")):
        port = urlsplit(url).port
        for path in service_log_files(port) if port else []:
            yield "PostgreSQL and Redis server logs", str(path), path
    for server, bucket, key in objects:
        stored = server.stored_object(bucket, key)
        at_rest = json.dumps(stored.metadata).encode() + b"\n" + stored.data
        yield "objects at rest in OSS (headers and bodies)", f"oss {bucket}/{key}", at_rest


def test_no_data_key_iv_token_or_access_key_secret_in_anything_the_deployment_wrote(
    airflow_deployment: AirflowDeployment,
    deployment_inputs: dict[str, Any],
    osscse_services: dict[str, Any],
    osscse_openbao: OpenBaoServer,
    osscse_kms_server: LocalKMSServer,
    outage_oss_server: LocalOSSServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    deployment, oss = airflow_deployment, osscse_services["oss"]
    started = time.monotonic()
    triggered_here = ensure_example_runs(deployment)
    settle(deployment)

    # 1. The data keys and IVs, unwrapped independently of the provider.
    kv_key, kv_secrets = vault_kv_rsa_key(deployment, osscse_openbao)
    custody = KeyCustody(vault=osscse_openbao.client(), rsa_keys=[kv_key], kms=local_kms_client(osscse_kms_server))
    sources = [
        (oss, DEPLOY_BUCKET, ""),
        (oss, osscse_services["bucket_name"], SENSOR_PREFIX),
        (outage_oss_server, osscse_services["bucket_name"], SENSOR_PREFIX),
    ]
    unwrapped: list[UnwrappedObject] = []
    at_rest: list[tuple[LocalOSSServer, str, str]] = []
    for server, bucket, prefix in sources:
        for envelope in encrypted_objects(oss_bucket(server, bucket), prefix):
            unwrapped.append(custody.unwrap(envelope))
            at_rest.append((server, bucket, envelope.where.split("/", 1)[1]))
    deploy_objects = {u.where.split("/", 1)[1]: u for u in unwrapped if u.where.startswith(f"{DEPLOY_BUCKET}/")}
    for prefix, wrap_alg in EXPECTED_WRITES.items():
        written = [u for key, u in deploy_objects.items() if key.startswith(prefix)]
        assert written and {u.wrap_alg for u in written} == {wrap_alg}, (prefix, sorted(deploy_objects))
    # The unwrapped keys are the real ones: the transfer objects decrypt to the DAG's input files.
    inputs = deployment_inputs["input_files"]
    checked = 0
    for key, u in deploy_objects.items():
        name = key.split("/", 2)[-1]
        if key.startswith("transfer/") and name in inputs and not key.startswith("transfer/rotation-seed/"):
            assert u.decrypt(oss.stored_object(DEPLOY_BUCKET, key).data) == inputs[name], key
            checked += 1
    assert checked >= len(inputs), sorted(deploy_objects)

    # 2. The service secrets and the secret fields of every connection (environment and metadata DB).
    secrets = [s for u in unwrapped for s in u.secrets()]
    secrets += service_secrets(oss, outage_oss_server, osscse_kms_server, osscse_openbao) + kv_secrets
    # Imported into the metadata DB by the fixture (``deployment.connections``) or passed as variables;
    # and what the metadata DB holds now (each source's secrets are looked for: they could differ).
    imported = {c: json.loads(v) for c, v in getattr(deployment, "connections", {}).items()}
    for defined in (environment_connections(deployment.env), imported, database_connections(deployment)):
        for conn_id, connection in sorted(defined.items()):
            if connection.get("conn_type") in CREDENTIAL_CONN_TYPES:
                secrets += connection_secrets(conn_id, connection)
    kinds = sorted({s.kind for s in secrets})
    assert {"data key", "IV", "Vault token", "OSS access key secret", "KMS access key secret"} <= set(kinds), kinds
    scanner = LeakScanner(secrets)
    canaries = LeakScanner([Secret("object key", key, key.encode()) for key in deploy_objects], forms=raw_only)

    # 3. Everything the deployment wrote.
    findings: list[Finding] = []
    seen_canaries: dict[str, set[str]] = {}
    for category, source, haystack in haystacks(deployment, deployment_inputs["data"], at_rest):
        if isinstance(haystack, Path):
            findings += scanner.scan_file(category, haystack)
            hits = canaries.scan_file(category, haystack)
        else:
            findings += scanner.scan(category, source, haystack)
            hits = canaries.scan(category, source, haystack)
        seen_canaries.setdefault(category, set()).update(canaries.found_labels(hits))

    report = (
        f"leak scan: {len(unwrapped)} objects unwrapped independently "
        f"({sorted({u.wrap_alg for u in unwrapped})}), {len(scanner.secrets)} secrets of kinds {kinds}, "
        f"{scanner.needle_count} needles (raw, hex, HEX, base64/base64url padded, unpadded, at 3 alignments, "
        f"percent-encoded); DAGs triggered here: {triggered_here or 'none'}; {time.monotonic() - started:.1f} s\n"
        f"scanned:\n{scanner.summary()}"
    )
    with capsys.disabled():
        print(f"\n{report}")  # noqa: T201 - what was scanned belongs in the test output
    assert not findings, f"{len(findings)} leak(s):\n" + "\n".join(map(str, findings[:50])) + f"\n{report}"
    for category in ("task logs", "XCom values (REST API)", "metadata DB dump"):
        assert seen_canaries.get(category), f"no object key found in the {category}: the haystack is wrong\n{report}"
    assert scanner.tally["task logs"].items >= len(EXAMPLE_DAGS) and scanner.tally["component logs"].items >= 4, report
    if deployment.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql"):
        assert "PostgreSQL and Redis server logs" in scanner.tally, f"PostgreSQL's log not found\n{report}"
