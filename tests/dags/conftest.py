"""Harness for running the example DAGs end to end with ``dag.test()``.

One ``airflow db migrate`` (SQLite, in the suite's temporary AIRFLOW_HOME) per session; DAGs are
loaded from the repository's ``dags/`` folder, configured as the DAGs folder, because on Airflow
3.3 a DAG defined inline in a test is not serialized and ``dag.test()`` fails on it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from tests.operators.fixtures import REPO, osscse_services, postgres_server  # noqa: F401 - fixtures

DAGS_FOLDER = REPO / "dags"  # also the configured dags folder (tests/conftest.py sets it first)


@pytest.fixture(scope="session")
def airflow_db() -> None:
    from airflow import settings

    assert os.path.samefile(settings.DAGS_FOLDER, DAGS_FOLDER), settings.DAGS_FOLDER
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
        timeout=180,
    )


@pytest.fixture(scope="session")
def dagbag(airflow_db: None, osscse_services: dict[str, Any]) -> Any:  # noqa: F811 - the imported fixture, by name
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert bag.import_errors == {}
    return bag


def run_dag(dagbag: Any, dag_id: str, **kwargs: Any) -> Any:
    """``dag.test()`` and a check that every task instance succeeded."""
    dag = dagbag.get_dag(dag_id)
    run = dag.test(**kwargs)
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "success", states
    return run
