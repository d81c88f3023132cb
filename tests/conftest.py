"""Suite-wide setup: an isolated AIRFLOW_HOME, no examples, and the osscse pytest plugin's fixtures."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Airflow reads its configuration at import time: isolate it before anything imports airflow.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="osscse-airflow-home-")
os.environ.setdefault("AIRFLOW_HOME", _AIRFLOW_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
# The example DAGs run from the repository's dags/ folder (dag.test() needs them loaded from a folder).
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(Path(__file__).resolve().parents[1] / "dags"))


import sys  # noqa: E402 - after the environment set-up above, on purpose

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_secrets_masker_per_test():
    """Each test starts like a new Airflow task process: an empty secrets masker and a fresh
    data-key masking budget. Without this the session's masker accumulates every PEM and data key
    of hundreds of tests, and since it recompiles one regex of all of them per registration and
    applies it to every log record, later tests slow down by an order of magnitude."""
    yield
    if "airflow.sdk" in sys.modules:
        from airflow.sdk._shared.secrets_masker import reset_secrets_masker

        reset_secrets_masker()
    masking = sys.modules.get("airflow_provider_osscse.keys.masking")
    if masking is not None:
        masking._masked_data_keys = 0
