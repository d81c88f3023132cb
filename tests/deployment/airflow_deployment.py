"""A real Airflow 3 deployment for tests: scheduler, dag-processor, triggerer and api-server as child processes.

``dag.test()`` runs every task in the test process and has no triggerer, so it cannot show what a
user's deployment does: a run triggered by hand has no logical date, a deferred task is resumed by a
separate triggerer process, a failing task is retried (or not) by the scheduler. This module starts
the same processes a user starts, in a temporary ``AIRFLOW_HOME``:

- ``airflow db migrate`` (SQLite in the home unless ``sql_alchemy_conn`` says otherwise), then the four
  components, each in its own process group, output to ``<home>/component-logs/<name>.log``;
- configuration only through ``AIRFLOW__*`` variables (none inherited from the test process), connections
  as ``AIRFLOW_CONN_*`` variables, the DAG folders as DAG bundles (one ``LocalDagBundle`` each);
- the REST API (``/api/v2``, ``simple_auth_manager_all_admins``: no login) to trigger runs without a
  logical date and read their state;
- :meth:`AirflowDeployment.stop` ends every process it started and their descendants by PID (the
  task supervisor puts each task in a process group of its own, so a group kill alone is not enough).

:class:`DeploymentSettings` carries what a later tier changes (executor, metadata DB, extra components
such as ``celery worker``, extra configuration); :meth:`DeploymentSettings.from_env` reads them from
``OSSCSE_DEPLOYMENT_*`` variables so the same tests run against another set-up unchanged.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

COMPONENTS: tuple[tuple[str, ...], ...] = (("api-server",), ("scheduler",), ("dag-processor",), ("triggerer",))
#: What signalling a process that has already exited raises.
GONE = (ProcessLookupError, psutil.NoSuchProcess)
TERMINAL_RUN_STATES = frozenset({"success", "failed"})
#: Task states after which nothing happens without a further event (``up_for_retry`` waits for a retry).
SETTLED_TASK_STATES = frozenset({"success", "failed", "up_for_retry", "upstream_failed", "skipped", "removed"})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class DeploymentSettings:
    """What differs between deployments; the defaults are the cheapest real one (LocalExecutor, SQLite)."""

    executor: str = "LocalExecutor"
    #: ``None``: SQLite in the deployment's home.
    sql_alchemy_conn: str | None = None
    #: Further long-running components, e.g. ``("celery", "worker")``.
    extra_components: tuple[tuple[str, ...], ...] = ()
    #: Further ``AIRFLOW__SECTION__KEY`` (or any) variables for every process.
    extra_env: Mapping[str, str] = field(default_factory=dict)
    #: Task slots: LocalExecutor forks this many workers at start, so it stays small on 2 cores.
    parallelism: int = 4

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> DeploymentSettings:
        """``OSSCSE_DEPLOYMENT_EXECUTOR``, ``OSSCSE_DEPLOYMENT_SQL_ALCHEMY_CONN``,
        ``OSSCSE_DEPLOYMENT_EXTRA_COMPONENTS`` (``;``-separated command lines, e.g. ``celery worker``) and
        ``OSSCSE_DEPLOYMENT_EXTRA_ENV`` (a JSON object of further variables)."""
        extra = environ.get("OSSCSE_DEPLOYMENT_EXTRA_COMPONENTS", "")
        return cls(
            executor=environ.get("OSSCSE_DEPLOYMENT_EXECUTOR") or cls.executor,
            sql_alchemy_conn=environ.get("OSSCSE_DEPLOYMENT_SQL_ALCHEMY_CONN") or None,
            extra_components=tuple(tuple(shlex.split(c)) for c in extra.split(";") if c.strip()),
            extra_env=json.loads(environ.get("OSSCSE_DEPLOYMENT_EXTRA_ENV") or "{}"),
        )


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
        settings: DeploymentSettings = DeploymentSettings(),
    ) -> None:
        self.home = home
        self.settings = settings
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.timings: dict[str, float] = {}
        #: (dag_id, run_id) of every run :meth:`trigger` made (the failure report shows their task logs).
        self.triggered: list[tuple[str, str]] = []
        self._log_dir = home / "component-logs"
        self._log_dir.mkdir(parents=True, exist_ok=True)
        self.env = self._environment(dag_folders, env)

    # -- set-up -------------------------------------------------------------------------------------

    def _environment(self, dag_folders: Mapping[str, Path], extra: Mapping[str, str]) -> dict[str, str]:
        """The test process's environment without its own Airflow/osscse settings, plus the deployment's."""
        own = ("AIRFLOW", "_AIRFLOW", "OSSCSE_", "PYTEST_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(own)}
        bundles = [
            {
                "name": name,
                "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                "kwargs": {"path": str(p)},
            }
            for name, p in dag_folders.items()
        ]
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
        env.update(self.settings.extra_env)
        env.update(extra)
        return env

    def start(self, expected_dags: Iterable[str], timeout: float = 180) -> AirflowDeployment:
        """Migrate the DB, start the components, wait for health and for ``expected_dags`` to be parsed."""
        started = time.monotonic()
        migrate = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        (self._log_dir / "db-migrate.log").write_bytes(migrate.stdout + migrate.stderr)
        if migrate.returncode != 0:
            raise DeploymentError(f"airflow db migrate exited {migrate.returncode}:\n{self._tail('db-migrate')}")
        self.timings["db_migrate"] = time.monotonic() - started
        for command in (*COMPONENTS, *self.settings.extra_components):
            self._launch(command)
        self._wait_until_ready(set(expected_dags), started + timeout)
        self.timings["start"] = time.monotonic() - started
        return self

    def _launch(self, command: tuple[str, ...]) -> None:
        name = "-".join(command)
        with (self._log_dir / f"{name}.log").open("wb") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "airflow", *command],
                env=self.env,
                cwd=self.home,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, ended as one at stop()
            )

    def _wait_until_ready(self, expected_dags: set[str], deadline: float) -> None:
        missing: set[str] = set(expected_dags)
        health: Any = None
        while time.monotonic() < deadline:
            self.check_processes()
            try:
                health = self.api("GET", "/api/v2/monitor/health")
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
            if healthy and not missing:
                return
            time.sleep(0.5)
        raise DeploymentError(
            f"Airflow not ready after the start-up timeout: health {health}, DAGs not parsed {sorted(missing)}\n"
            + self.diagnostics()
        )

    def check_processes(self) -> None:
        """Raise (with its log) if a component has exited: everything after would only time out."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise DeploymentError(f"airflow {name} exited with {process.returncode}:\n{self._tail(name, 80)}")

    # -- stop ---------------------------------------------------------------------------------------

    def stop(self, grace: float = 5) -> None:
        """SIGTERM each component's process group and every descendant, SIGKILL what remains after ``grace``.

        Descendants are collected first, by PID: task processes run in process groups of their own.
        """
        targets: dict[int, psutil.Process] = {}
        for process in self.processes.values():
            with contextlib.suppress(*GONE):
                parent = psutil.Process(process.pid)
                targets[parent.pid] = parent
                targets.update({child.pid: child for child in parent.children(recursive=True)})
        for process in self.processes.values():
            with contextlib.suppress(*GONE):
                os.killpg(process.pid, signal.SIGTERM)  # start_new_session: the group id is the PID
        for target in targets.values():
            with contextlib.suppress(*GONE):
                target.terminate()
        _, alive = psutil.wait_procs(list(targets.values()), timeout=grace)
        self.timings["killed_after_grace"] = len(alive)  # the api-server often: uvicorn's graceful shutdown
        for process in self.processes.values():
            with contextlib.suppress(*GONE):
                os.killpg(process.pid, signal.SIGKILL)
        for target in alive:
            with contextlib.suppress(*GONE):
                target.kill()
        psutil.wait_procs(alive, timeout=5)
        for process in self.processes.values():
            process.wait(timeout=5)  # reap: no zombie left behind
        self.processes.clear()

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

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Unpause ``dag_id`` and trigger it as the UI's Trigger button does: no logical date. Returns the DAG run."""
        self.unpause(dag_id)
        run = self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": dict(conf or {})})
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
        path = self._log_dir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def diagnostics(self, runs: Iterable[tuple[str, str]] = ()) -> str:
        """The end of each component's log and the task logs of ``runs`` ((dag_id, run_id) pairs)."""
        parts = [f"== airflow {name} ({self._log_dir / name}.log) ==\n{self._tail(name)}" for name in self.processes]
        for dag_id, run_id in runs:
            for path in self.task_log_files(dag_id, run_id):
                text = path.read_text(errors="replace").splitlines()[-60:]
                parts.append(f"== {path.relative_to(self.home)} ==\n" + "\n".join(text))
        return "\n".join(parts)


def _quote(run_id: str) -> str:
    return urllib.parse.quote(run_id, safe="")
