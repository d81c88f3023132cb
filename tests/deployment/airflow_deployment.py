"""A real Airflow 3 deployment for tests: api-server, scheduler, dag-processor, triggerer, Celery workers.

``dag.test()`` runs every task in the test process and has no triggerer, so it cannot show what a
user's deployment does: a run triggered by hand has no logical date, a deferred task is resumed by a
separate triggerer process, a failing task is retried (or not) by the scheduler. This module starts
the same processes a user starts, in a temporary ``AIRFLOW_HOME``, configured only through ``AIRFLOW__*``
variables (none inherited from the test process), the DAG folders as DAG bundles:

- ``airflow db migrate`` (PostgreSQL in the tier; SQLite in the home when ``sql_alchemy_conn`` is unset),
  the connections imported into that DB (no ``AIRFLOW_CONN_*`` variable reaches the components), then
  the components, each in its own process group, output to ``<home>/component-logs/<name>.log``: the
  four of every deployment and, with CeleryExecutor, one ``airflow celery worker`` per worker name;
- the REST API (``/api/v2``, ``simple_auth_manager_all_admins``: no login) to trigger runs and read them;
- :meth:`AirflowDeployment.stop` ends every process it started and their descendants by PID (the task
  supervisor puts each task in a process group of its own, so a group kill alone is not enough) and
  records them in a :class:`~tests.deployment.processes.Ledger`, which checks at the end that they are gone.

:class:`DeploymentSettings` (tests/deployment/settings.py) carries what differs between set-ups;
:meth:`DeploymentSettings.from_env` reads it from ``OSSCSE_DEPLOYMENT_*`` variables so the same tests run
against another set-up unchanged (e.g. LocalExecutor on SQLite).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tests.deployment import diagnostics
from tests.deployment.processes import Ledger, free_port, terminate_tree, terminate_trees
from tests.deployment.settings import Component, DeploymentSettings

__all__ = ["AirflowDeployment", "ApiError", "Component", "DeploymentError", "DeploymentSettings", "free_port"]

TERMINAL_RUN_STATES = frozenset({"success", "failed"})
#: Task states after which nothing happens without a further event (``up_for_retry`` waits for a retry).
SETTLED_TASK_STATES = frozenset({"success", "failed", "up_for_retry", "upstream_failed", "skipped", "removed"})


class DeploymentError(AssertionError):
    """The deployment did not start, or a run did not reach the expected state in time (with logs)."""


class ApiError(DeploymentError):
    """The api-server answered with an HTTP error."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class AirflowDeployment:
    """Airflow's processes in ``home``; :meth:`start` blocks until they are healthy and the DAGs are parsed."""

    def __init__(
        self,
        home: Path,
        dag_folders: Mapping[str, Path],
        env: Mapping[str, str],
        settings: DeploymentSettings | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        settings = settings or DeploymentSettings()
        if settings.celery and not settings.broker_url:
            raise ValueError("CeleryExecutor needs a broker: set DeploymentSettings.broker_url (a redis:// URL)")
        self.home = home
        self.settings = settings
        self.ledger = ledger or Ledger()
        self.ledger.homes.add(str(home))
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}"
        self.components = {c.name: c for c in settings.components()}
        #: The running components by name (a component stopped by :meth:`stop_component` leaves it).
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.timings: dict[str, float] = {}
        #: (dag_id, run_id) of every run :meth:`trigger` made (the failure report shows their task logs).
        self.triggered: list[tuple[str, str]] = []
        self.log_dir = self._log_dir = home / "component-logs"
        self._log_dir.mkdir(parents=True, exist_ok=True)
        self.env = self._environment(dag_folders, env)
        #: conn_id -> connection (JSON) to import into the metadata DB: every ``AIRFLOW_CONN_*`` of ``env``, moved.
        self.connections: dict[str, str] = {}
        if settings.connections_in_db:
            for name in [k for k in self.env if k.startswith("AIRFLOW_CONN_")]:
                self.connections[name.removeprefix("AIRFLOW_CONN_").lower()] = self.env.pop(name)

    # -- set-up -------------------------------------------------------------------------------------

    def _environment(self, dag_folders: Mapping[str, Path], extra: Mapping[str, str]) -> dict[str, str]:
        """The test process's environment without its own Airflow/osscse settings, plus the deployment's."""
        own = ("AIRFLOW", "_AIRFLOW", "OSSCSE_", "PYTEST_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(own)}
        bundle = "airflow.dag_processing.bundles.local.LocalDagBundle"
        bundles = [{"name": n, "classpath": bundle, "kwargs": {"path": str(p)}} for n, p in dag_folders.items()]
        from cryptography.fernet import Fernet

        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__EXECUTOR": self.settings.executor,
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.settings.sql_alchemy_conn
                or f"sqlite:///{self.home / 'airflow.db'}",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                # Paused until a test triggers them (trigger() unpauses): a run due at once (compliance_export's
                # catch-up) could otherwise start before the api-server serves the execution API, and its
                # task would fail with a ReadTimeout there (seen: the processes start together).
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__CORE__PARALLELISM": str(self.settings.parallelism),
                "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__BASE_URL": self.api_url,
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),  # >= 64 bytes: no PyJWT key-length warning
                "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles),
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
                # The scheduler and triggerer serve logs on fixed ports by default: two deployments on one
                # machine (two sessions, two xdist workers) would collide.
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                # The task supervisor polls for its child's exit at this interval once the child has closed its
                # sockets: at the default (5 s) many tasks linger 5 s after they end. Heartbeats are this often.
                "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
                # How late a deferred task's timeout is noticed (default 15 s): a sensor's timeout, within ~2 s.
                "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "2",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.settings.celery:
            assert self.settings.broker_url is not None  # checked in __init__
            # The result backend defaults to the metadata DB (``db+`` + sql_alchemy_conn): PostgreSQL here.
            env["AIRFLOW__CELERY__BROKER_URL"] = self.settings.broker_url
        env.update(self.settings.extra_env)
        env.update(extra)
        return env

    def start(self, expected_dags: Iterable[str], timeout: float = 180) -> AirflowDeployment:
        """Migrate the DB, start the components, import the connections (while the components start: no DAG
        runs before a test triggers it), wait for health, the workers and for ``expected_dags`` to be parsed."""
        started = time.monotonic()
        migrate = self.cli("db", "migrate", timeout=timeout)
        (self._log_dir / "db-migrate.log").write_text(migrate.stdout + migrate.stderr)
        if migrate.returncode != 0:
            raise DeploymentError(f"airflow db migrate exited {migrate.returncode}:\n{self._tail('db-migrate')}")
        self.timings["db_migrate"] = time.monotonic() - started
        for name in self.components:
            self.start_component(name)
        if self.connections:
            self._import_connections()
            self.timings["connections_import"] = time.monotonic() - started - self.timings["db_migrate"]
        self._wait_until_ready(set(expected_dags), started, started + timeout)
        self.timings["start"] = time.monotonic() - started
        return self

    def _import_connections(self) -> None:
        """``airflow connections import`` of :attr:`connections` (stored encrypted with the Fernet key).

        The file holds secrets, so it lives outside the home (which the leak scan reads) and only for the import.
        """
        folder = Path(tempfile.mkdtemp(prefix="osscse-connections-"))
        try:
            path = folder / "connections.json"
            path.touch(mode=0o600)
            path.write_text(json.dumps({conn_id: json.loads(c) for conn_id, c in self.connections.items()}))
            imported = self.cli("connections", "import", str(path), timeout=120)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        (self._log_dir / "connections-import.log").write_text(imported.stdout + imported.stderr)
        if imported.returncode != 0 or "Could not import" in imported.stdout + imported.stderr:
            raise DeploymentError(f"airflow connections import failed:\n{self._tail('connections-import')}")

    def start_component(self, name: str) -> None:
        """Start the component ``name`` (see :attr:`components`); a restart appends to its log."""
        component = self.components[name]
        with (self._log_dir / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "airflow", *component.command],
                env={**self.env, **component.env},
                cwd=self.home,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, ended as one at stop()
            )
        self.processes[name] = process
        self.ledger.add_process(process.pid, f"airflow {name}")

    def stop_component(self, name: str, grace: float = 10) -> None:
        """End one component (SIGTERM: a graceful stop, as a restart in production) and its descendants."""
        process = self.processes.pop(name)
        self.ledger.add_process(process.pid, f"airflow {name}")  # with the descendants it has now
        self.timings[f"killed_after_grace_{name}"] = terminate_tree(process.pid, grace, group=True)
        process.wait(timeout=5)  # reap: no zombie left behind

    def _wait_until_ready(self, expected_dags: set[str], started: float, deadline: float) -> None:
        missing: set[str] = set(expected_dags)
        health: Any = None
        unready: list[str] = []
        while time.monotonic() < deadline:
            self.check_processes()
            try:
                health = self.api("GET", "/api/v2/monitor/health")
                if "execution_api_ready" not in self.timings:
                    # The execution API (Cadwyn) builds its versioned routes at its first request, blocking the
                    # api-server 10-20 s on 2 cores: the first task's calls time out and retry. Here, not in a test.
                    self.api("GET", "/execution/health", timeout=max(1.0, deadline - time.monotonic()))
                    self.timings["execution_api_ready"] = time.monotonic() - started
                errors = self.api("GET", "/api/v2/importErrors")
                if errors["total_entries"]:
                    raise DeploymentError(f"DAG import errors: {json.dumps(errors['import_errors'], indent=1)}")
                dags = self.api("GET", "/api/v2/dags?limit=200")
                missing = expected_dags - {d["dag_id"] for d in dags["dags"]}
            except (OSError, urllib.error.URLError):
                time.sleep(0.5)  # the api-server is not listening yet
                continue
            except ApiError as error:
                if error.status < 500:
                    raise
                time.sleep(0.5)  # listening, not serving yet
                continue
            healthy = all(
                (health.get(part) or {}).get("status") == "healthy"
                for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
            )
            unready = self._workers_not_ready()
            if healthy and not missing and not unready:
                return
            time.sleep(0.5)
        raise DeploymentError(
            f"Airflow not ready after the start-up timeout: health {health}, DAGs not parsed {sorted(missing)}, "
            f"Celery workers not ready {unready}\n" + self.diagnostics()
        )

    def _workers_not_ready(self) -> list[str]:
        """The Celery workers that have not yet logged that they consume (the health endpoint does not show them)."""
        return [
            name
            for name, component in self.components.items()
            if component.command[:2] == ("celery", "worker") and " ready." not in self._tail(name, 400)
        ]

    def ports(self) -> dict[int, str]:
        """The loopback ports the components listen on (checked closed at the end of the tier)."""
        logs = {
            int(self.env[f"AIRFLOW__LOGGING__{k}_LOG_SERVER_PORT"]): f"{k.lower()} log server"
            for k in ("WORKER", "TRIGGER")
        }
        return {self.port: "the api-server", **logs}

    def check_processes(self) -> None:
        """Raise (with its log) if a component has exited: everything after would only time out."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise DeploymentError(f"airflow {name} exited with {process.returncode}:\n{self._tail(name, 80)}")

    # -- stop ---------------------------------------------------------------------------------------

    def stop(self, grace: float = 5) -> None:
        """End every component and its descendants, all at once (see :func:`terminate_trees`)."""
        started = time.monotonic()
        for name, process in self.processes.items():
            self.ledger.add_process(process.pid, f"airflow {name}")  # with the descendants it has now
        self.timings["killed_after_grace"] = terminate_trees([p.pid for p in self.processes.values()], grace, True)
        for process in self.processes.values():
            process.wait(timeout=5)  # reap: no zombie left behind
        self.processes.clear()
        self.timings["stop"] = time.monotonic() - started

    # -- REST API -----------------------------------------------------------------------------------

    def api(self, method: str, path: str, body: Any = None, timeout: float = 30) -> Any:
        """One call of the api-server (JSON in, JSON out); an HTTP error raises with the response body."""
        request = urllib.request.Request(
            self.api_url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as error:
            body = error.read().decode(errors="replace")
            raise ApiError(f"{method} {path}: HTTP {error.code}: {body}", error.code) from None
        return json.loads(payload) if payload else None

    def trigger(
        self, dag_id: str, conf: Mapping[str, Any] | None = None, logical_date: str | None = None
    ) -> dict[str, Any]:
        """Unpause ``dag_id`` and trigger it, by default as the UI's Trigger button does: no logical date
        (else an ISO-8601 one, as ``--logical-date``). Returns the DAG run."""
        self.unpause(dag_id)
        body = {"logical_date": logical_date, "conf": dict(conf or {})}
        run = self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)
        self.triggered.append((dag_id, run["dag_run_id"]))
        return dict(run)

    def unpause(self, dag_id: str) -> None:
        """DAGs start paused (see ``DAGS_ARE_PAUSED_AT_CREATION`` above); a paused DAG's runs stay queued."""
        self.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``airflow <args>`` against this deployment (a fresh process: ~3 s of Airflow import)."""
        return subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100")["dag_runs"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{_quote(run_id)}/taskInstances?limit=200"
        return list(self.api("GET", path)["task_instances"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 120) -> dict[str, Any]:
        """Poll until the run is ``success`` or ``failed``; return it."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{_quote(run_id)}")
            if run["state"] in TERMINAL_RUN_STATES:
                return dict(run)
            if time.monotonic() > deadline:
                raise DeploymentError(f"{dag_id} {run_id} still {run['state']} after {timeout:.0f} s")
            self.check_processes()
            time.sleep(0.3)

    def wait_for_task(
        self, dag_id: str, run_id: str, task_id: str, states: Iterable[str], timeout: float = 90
    ) -> dict[str, Any]:
        """Poll until the task is in one of ``states`` or settled (see :data:`SETTLED_TASK_STATES`)."""
        wanted = set(states)
        deadline = time.monotonic() + timeout
        seen: list[str | None] = []
        while True:
            ti = next(t for t in self.task_instances(dag_id, run_id) if t["task_id"] == task_id)
            if not seen or seen[-1] != ti["state"]:
                seen.append(ti["state"])
            if ti["state"] in wanted or ti["state"] in SETTLED_TASK_STATES:
                ti["states_seen"] = seen
                return dict(ti)
            if time.monotonic() > deadline:
                raise DeploymentError(f"{dag_id}.{task_id} in {run_id}: states {seen}, none of {sorted(wanted)}")
            self.check_processes()
            time.sleep(0.2)

    def wait_for_deferral_exit(self, dag_id: str, run_id: str, task_id: str, timeout: float = 30) -> None:
        """Wait until the scheduler has processed the executor's ``success`` event of the workload that deferred.

        Airflow 3.3 race: that event arrives when the task's supervisor exits, which can be seconds after the
        task deferred. If the trigger fires first and the resumed task is already ``running`` when the event
        is processed, the scheduler takes it for a task killed externally and marks it ``up_for_retry``
        (seen here, a violation then "retried"). A test that makes a trigger fire waits for this first.
        """
        needle = (
            "Received executor event with state success for task instance "
            f"TaskInstanceKey(dag_id='{dag_id}', task_id='{task_id}', run_id='{run_id}'"
        )
        deadline = time.monotonic() + timeout
        while needle not in (self._log_dir / "scheduler.log").read_text(errors="replace"):
            if time.monotonic() > deadline:
                raise DeploymentError(f"the scheduler saw no executor event for {dag_id}.{task_id} in {run_id}")
            self.check_processes()
            time.sleep(0.2)

    # -- logs ---------------------------------------------------------------------------------------

    def task_log_files(self, dag_id: str, run_id: str, task_id: str | None = None) -> list[Path]:
        """Every log file of the run (or of one task): attempts, mapped indexes and trigger logs."""
        run_dir = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
        pattern = f"task_id={task_id}/**/*" if task_id else "**/*"
        return sorted(p for p in run_dir.glob(pattern) if p.is_file())

    def _tail(self, name: str, lines: int = 40) -> str:
        return diagnostics.tail(self._log_dir / f"{name}.log", lines)

    def diagnostics(self, runs: Iterable[tuple[str, str]] = ()) -> str:
        """Which component's log to read, the end of each, and the task logs of ``runs`` ((dag_id, run_id) pairs)."""
        return diagnostics.report(self, runs)


def _quote(run_id: str) -> str:
    return urllib.parse.quote(run_id, safe="")
