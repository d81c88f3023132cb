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
