"""The deployment tier: one real Airflow deployment (tests/deployment/airflow_deployment.py) for the package.

By default (tests/deployment/settings.py) it is the issue's: a throw-away PostgreSQL cluster as the
metadata DB, a throw-away ``redis-server`` as the Celery broker, CeleryExecutor with two workers. Its
processes use the session's services (the plugin's OSS and KMS servers, OpenBao) through connections
imported into the metadata DB, plus a second OSS server of its own (``oss_outage``) that a test may stop
and restart on the same port. The example DAGs write to their own bucket and Transit key
(``osscse-deploy``), so that rotating the key or listing ``transfer/`` never meets another test's objects.

The deployment lives for this package only (not the whole session): its processes would
otherwise keep polling on the 2 cores while the rest of the suite runs. On a failed test the report
gets which component's log to read, the end of each, and the task logs of the runs the test triggered.
At the end of the package, :class:`~tests.deployment.processes.Ledger` checks that every process the tier
started (and every descendant) is gone and that its ports are closed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from airflow_provider_osscse.testing.oss_server import LocalOSSServer
from airflow_provider_osscse.testing.pytest_plugin import airflow_connection_env, new_access_key
from tests.deployment.airflow_deployment import AirflowDeployment, DeploymentSettings, free_port
from tests.deployment.processes import Ledger, redis_server
from tests.operators.fixtures import REPO, osscse_services, postgres_cluster, seed  # noqa: F401 - a fixture

DEPLOY_BUCKET = "osscse-deploy"
DEPLOY_TRANSIT_KEY = "osscse-deploy"
DEPLOY_TRANSIT_CMK = f"vault-transit://vault_default/transit/{DEPLOY_TRANSIT_KEY}"
EXAMPLE_DAGS = ("encrypted_transfer", "compliance_export", "vault_key_custody_etl", "cmk_rotation")
SENSOR_DAGS = ("osscse_sensor_deferrable", "osscse_sensor_poke", "osscse_sensor_deferrable_short_timeout")
OUTAGE_CONN_ID = "oss_outage"
#: An OSS endpoint where nothing listens: every request is refused, for as long as a test waits.
UNREACHABLE_CONN_ID = "oss_unreachable"


@pytest.fixture(scope="package", autouse=True)
def deployment_ledger() -> Iterator[Ledger]:
    """Every process and port of the tier; set up first, so checked last: all gone once the package ends."""
    ledger = Ledger()
    yield ledger
    ledger.check()


@pytest.fixture(scope="package")
def deployment_settings() -> DeploymentSettings:
    return DeploymentSettings.from_env()


@pytest.fixture(scope="package")
def deployment_metadata_db(deployment_settings: DeploymentSettings, deployment_ledger: Ledger) -> Iterator[str | None]:
    """The metadata DB's URL: a throw-away PostgreSQL cluster of the tier's own (``None``: SQLite in the home)."""
    if deployment_settings.sql_alchemy_conn or deployment_settings.metadata_db != "postgresql":
        yield deployment_settings.sql_alchemy_conn
        return
    # Airflow's components and the Celery result backend hold pools of connections: more than the default 100.
    with postgres_cluster("-c max_connections=300") as server:
        deployment_ledger.add_process(server["pid"], "PostgreSQL (the metadata DB)")
        deployment_ledger.add_port(server["port"], "PostgreSQL (the metadata DB)")
        with contextlib.closing(
            psycopg2.connect(host=server["host"], port=server["port"], user=server["user"], dbname="postgres")
        ) as db:
            db.autocommit = True
            db.cursor().execute("CREATE DATABASE airflow")
        try:
            yield f"postgresql+psycopg2://{server['user']}@{server['host']}:{server['port']}/airflow"
        finally:  # its backends, as they are now: the ledger checks that they end with it
            deployment_ledger.add_process(server["pid"], "PostgreSQL (the metadata DB)")


@pytest.fixture(scope="package")
def celery_broker(deployment_settings: DeploymentSettings, deployment_ledger: Ledger) -> Iterator[str | None]:
    """The Celery broker's URL: a throw-away ``redis-server`` (``None`` without CeleryExecutor)."""
    if deployment_settings.broker_url or not deployment_settings.celery:
        yield deployment_settings.broker_url
        return
    with redis_server() as redis:
        deployment_ledger.add_process(redis.pid, "redis-server (the Celery broker)")
        deployment_ledger.add_port(redis.port, "redis-server (the Celery broker)")
        yield redis.url


@pytest.fixture(scope="package")
def outage_oss_server(osscse_services: dict[str, Any], deployment_ledger: Ledger) -> Iterator[LocalOSSServer]:  # noqa: F811
    """An OSS server of the deployment's own, on a fixed port, so a test can stop it and start it again."""
    server = LocalOSSServer(*new_access_key(), region=osscse_services["oss"].region, port=free_port()).start()
    deployment_ledger.add_port(server.port, "the outage OSS server")
    try:
        server.create_bucket(osscse_services["bucket_name"])
        yield server
    finally:
        server.stop()


def _orders(today: dt.date) -> list[tuple[Any, ...]]:
    """Rows for the scheduled catch-up (2024-01-01..03; the fourth day, 01-04, exports a header only) and for
    the days around today (a run by hand exports yesterday, whichever side of midnight it starts)."""
    recent = seed.order_rows(today - dt.timedelta(days=2), 3, per_day=5)
    return seed.order_rows(dt.date(2024, 1, 1), 3, per_day=5) + [(n + 1000, *rest) for n, *rest in recent]


@pytest.fixture(scope="package")
def deployment_inputs(
    osscse_services: dict[str, Any],  # noqa: F811 - the fixture
    osscse_airflow_connections: dict[str, str],
    outage_oss_server: LocalOSSServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """What the example DAGs need (as ``make demo`` seeds it) and the deployment's environment."""
    data = tmp_path_factory.mktemp("deployment-data")
    oss = osscse_services["oss"]
    seed.ensure_bucket(oss.endpoint, oss.access_key_id, oss.access_key_secret, oss.region, DEPLOY_BUCKET)
    seed.ensure_transit_key(osscse_services["vault"], DEPLOY_TRANSIT_KEY)
    seed.create_sqlite_orders(data / "orders.db", _orders(dt.datetime.now(dt.UTC).date()))
    files = seed.write_input_files(data / "input")
    env = {
        **osscse_airflow_connections,
        "AIRFLOW_CONN_VAULT_DECRYPT": os.environ["AIRFLOW_CONN_VAULT_DECRYPT"],  # set by osscse_services
        "AIRFLOW_CONN_OSSCSE_EXPORT_DB": seed.sqlite_connection_json(data / "orders.db"),
        f"AIRFLOW_CONN_{OUTAGE_CONN_ID.upper()}": airflow_connection_env(outage_oss_server)["AIRFLOW_CONN_OSS_DEFAULT"],
        f"AIRFLOW_CONN_{UNREACHABLE_CONN_ID.upper()}": airflow_connection_env(outage_oss_server)[
            "AIRFLOW_CONN_OSS_DEFAULT"
        ].replace(outage_oss_server.endpoint, f"http://127.0.0.1:{free_port()}"),
        # The example DAGs' params default from these (their documented settings).
        "OSSCSE_DEMO_BUCKET": DEPLOY_BUCKET,
        "OSSCSE_DEMO_INPUT_DIR": str(data / "input"),
        "OSSCSE_DEMO_OUTPUT_DIR": str(data / "output"),
        "OSSCSE_DEMO_WORK_DIR": str(data / "etl"),
        "OSSCSE_TRANSIT_CMK": DEPLOY_TRANSIT_CMK,
        "OSSCSE_EXPORT_CMK": DEPLOY_TRANSIT_CMK,
    }
    return {"env": env, "data": data, "input_files": files}


@pytest.fixture(scope="package")
def airflow_deployment_processes(
    deployment_inputs: dict[str, Any],
    deployment_settings: DeploymentSettings,
    deployment_metadata_db: str | None,
    celery_broker: str | None,
    deployment_ledger: Ledger,
    tmp_path_factory: pytest.TempPathFactory,
    pytestconfig: pytest.Config,
) -> Iterator[AirflowDeployment]:
    # OSSCSE_DEPLOYMENT_HOME keeps the home (logs, DB) where it can be read after the session; pytest
    # removes all but its last three temporary directories, and other sessions run meanwhile.
    kept = os.environ.get("OSSCSE_DEPLOYMENT_HOME")
    home = Path(kept) if kept else tmp_path_factory.mktemp("airflow-deployment")
    if kept:
        home.mkdir(parents=True, exist_ok=False)  # a fresh home, never a previous run's DB
    deployment = AirflowDeployment(
        home,
        {"example-dags": REPO / "dags", "deployment-test-dags": Path(__file__).with_name("dags")},
        deployment_inputs["env"],
        dataclasses.replace(deployment_settings, sql_alchemy_conn=deployment_metadata_db, broker_url=celery_broker),
        deployment_ledger,
    )
    for port, what in deployment.ports().items():
        deployment_ledger.add_port(port, what)
    began = time.monotonic()
    try:
        yield deployment.start(expected_dags=(*EXAMPLE_DAGS, *SENSOR_DAGS))
    finally:
        deployment.stop()
        (home / "timings.json").write_text(json.dumps(deployment.timings, indent=1))
        # The tier's cost, in the CI log (issue 12 bounds it): from the first process to the last stopped.
        reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
        capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
        if reporter is not None and capture is not None:
            steps = ", ".join(f"{k} {v:.1f} s" for k, v in deployment.timings.items() if isinstance(v, float))
            with capture.global_and_fixture_disabled():  # teardown output is otherwise captured
                reporter.write_line(
                    f"\ndeployment tier ({deployment_settings.executor}): "
                    f"{time.monotonic() - began:.0f} s in all; {steps}"
                )


@pytest.fixture
def airflow_deployment(airflow_deployment_processes: AirflowDeployment) -> AirflowDeployment:
    """The package's deployment; the runs a test triggers are the ones its failure report shows."""
    airflow_deployment_processes.triggered.clear()
    return airflow_deployment_processes


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]  # pluggy's result object
    deployment = getattr(item, "funcargs", {}).get("airflow_deployment")
    if report.failed and call.when == "call" and isinstance(deployment, AirflowDeployment):
        report.sections.append(("airflow deployment logs", deployment.diagnostics(deployment.triggered)))
