"""What a failed deployment test prints: which component's log to read first, then the ends of the logs.

Six processes write six logs, and a task's own logs live in a third place; a failure report that only
pastes them all leaves the reader to guess. So the report starts with one line per component (running,
stopped, or exited: read that one first) and one line per task instance of the test's runs that did not
succeed, naming the component that last had it (the worker its ``hostname`` names, the triggerer for a
deferred task, the scheduler for one not yet handed to an executor) and the folder of its own logs.
"""

from __future__ import annotations

import urllib.error
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.deployment.airflow_deployment import AirflowDeployment

#: Task states in which the scheduler (not yet an executor, a worker or the triggerer) has the task.
SCHEDULER_STATES = frozenset({None, "none", "scheduled", "upstream_failed", "skipped", "removed"})


def tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(errors="replace") if path.exists() else "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def component_of(deployment: AirflowDeployment, ti: dict[str, Any]) -> str:
    """The component whose log tells what happened to the task instance ``ti`` (a REST API record)."""
    workers = {c.env.get("OSSCSE_DEPLOYMENT_WORKER_HOSTNAME"): name for name, c in deployment.components.items()}
    if ti["state"] == "deferred":
        return "triggerer"
    if ti.get("hostname") in workers:
        return workers[ti["hostname"]]
    if ti["state"] == "queued" and deployment.settings.celery:
        return "the Celery workers (queued: sent to the broker, not yet started)"
    # LocalExecutor runs tasks in the scheduler's children; a task never started was the scheduler's.
    return "scheduler"


def where_to_look(deployment: AirflowDeployment, runs: Iterable[tuple[str, str]]) -> list[str]:
    """One line per component and per task instance of ``runs`` that did not succeed (see the module doc)."""
    lines = []
    for name in deployment.components:
        process = deployment.processes.get(name)
        if process is None:
            state = "stopped"
        elif process.poll() is None:
            state = f"running, PID {process.pid}"
        else:
            state = f"EXITED with {process.returncode}: read this log first"
        lines.append(f"airflow {name} ({state}): {deployment.log_dir / f'{name}.log'}")
    for dag_id, run_id in runs:
        try:
            instances = deployment.task_instances(dag_id, run_id)
        except (AssertionError, OSError, urllib.error.URLError) as error:  # the api-server is down, or the run gone
            lines.append(f"{dag_id} {run_id}: task instances unknown ({error}); read the api-server's log")
            continue
        for ti in instances:
            if ti["state"] == "success":
                continue
            task = f"{dag_id}.{ti['task_id']}" + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else "")
            folder = deployment.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={ti['task_id']}"
            lines.append(
                f"{task} in {run_id}: {ti['state']} (try {ti['try_number']}, host {ti.get('hostname') or '-'}): "
                f"read airflow {component_of(deployment, ti)}'s log, and the task's logs in {folder}"
            )
    return lines


def report(deployment: AirflowDeployment, runs: Iterable[tuple[str, str]] = ()) -> str:
    """Where to look, the end of each component's log, and the task logs of ``runs`` ((dag_id, run_id) pairs)."""
    runs = list(runs)
    logs = [deployment.log_dir / f"{name}.log" for name in deployment.components]
    parts = ["== where to look ==", *where_to_look(deployment, runs)]
    parts += [f"== airflow {path.stem} ({path}) ==\n{tail(path)}" for path in logs]
    for dag_id, run_id in runs:
        parts += [
            f"== {p.relative_to(deployment.home)} ==\n{tail(p, 60)}" for p in deployment.task_log_files(dag_id, run_id)
        ]
    return "\n".join(parts)
