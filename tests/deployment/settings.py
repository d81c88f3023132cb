"""What differs between deployments of the tier (:class:`DeploymentSettings`) and the processes each one runs
(:class:`Component`): the executor, the metadata DB, the Celery workers, further components and configuration.

The defaults are the issue's deployment (CeleryExecutor, two workers, PostgreSQL, Redis, connections in the
metadata DB); :meth:`DeploymentSettings.from_env` selects another one, e.g. the cheapest (LocalExecutor on
SQLite), without changing a test.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

COMPONENTS: tuple[tuple[str, ...], ...] = (("api-server",), ("scheduler",), ("dag-processor",), ("triggerer",))
#: Imported by the Celery workers (``[core] hostname_callable``): each reports its own name as a TI's hostname.
WORKER_SITE = Path(__file__).with_name("worker_site")


@dataclass(frozen=True)
class DeploymentSettings:
    """What differs between deployments; the defaults are the issue's: CeleryExecutor with two workers,
    PostgreSQL as the metadata DB, Redis as the broker, connections in the metadata DB."""

    executor: str = "CeleryExecutor"
    #: ``postgresql``: a throw-away cluster of the tier's own (tests/deployment/conftest.py); ``sqlite``: a
    #: file in the home. Ignored when ``sql_alchemy_conn`` is set.
    metadata_db: str = "postgresql"
    #: The metadata DB's URL; ``None``: as ``metadata_db`` says (the tier's fixture fills it in).
    sql_alchemy_conn: str | None = None
    #: The Celery broker; ``None`` with CeleryExecutor: a throw-away ``redis-server`` (the tier's fixture).
    broker_url: str | None = None
    #: One ``airflow celery worker`` per name (CeleryExecutor only); the name is its TI ``hostname``.
    celery_workers: tuple[str, ...] = ("worker-a", "worker-b")
    #: Task slots per worker: two workers of two fill ``parallelism``, so wide mappings use both.
    worker_concurrency: int = 2
    #: Import the connections into the metadata DB (``False``: ``AIRFLOW_CONN_*`` variables, as before).
    connections_in_db: bool = True
    #: Further long-running components, as command lines after ``airflow``.
    extra_components: tuple[tuple[str, ...], ...] = ()
    #: Further ``AIRFLOW__SECTION__KEY`` (or any) variables for every process.
    extra_env: Mapping[str, str] = field(default_factory=dict)
    #: Task slots of the whole deployment (LocalExecutor forks this many workers at start): small on 2 cores.
    parallelism: int = 4

    @property
    def celery(self) -> bool:
        return self.executor == "CeleryExecutor"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> DeploymentSettings:
        """``OSSCSE_DEPLOYMENT_EXECUTOR``, ``..._METADATA_DB`` (``postgresql``/``sqlite``),
        ``..._SQL_ALCHEMY_CONN``, ``..._BROKER_URL``, ``..._CELERY_WORKERS`` (comma-separated names),
        ``..._WORKER_CONCURRENCY``, ``..._CONNECTIONS_IN_DB`` (``0`` for variables),
        ``..._EXTRA_COMPONENTS`` (``;``-separated command lines) and ``..._EXTRA_ENV`` (a JSON object).
        E.g. ``OSSCSE_DEPLOYMENT_EXECUTOR=LocalExecutor OSSCSE_DEPLOYMENT_METADATA_DB=sqlite``: the cheapest one."""

        def get(name: str) -> str | None:
            return environ.get(f"OSSCSE_DEPLOYMENT_{name}") or None

        extra = get("EXTRA_COMPONENTS") or ""
        workers = get("CELERY_WORKERS")
        return cls(
            executor=get("EXECUTOR") or cls.executor,
            metadata_db=get("METADATA_DB") or cls.metadata_db,
            sql_alchemy_conn=get("SQL_ALCHEMY_CONN"),
            broker_url=get("BROKER_URL"),
            celery_workers=tuple(w.strip() for w in workers.split(",") if w.strip()) if workers else cls.celery_workers,
            worker_concurrency=int(get("WORKER_CONCURRENCY") or cls.worker_concurrency),
            connections_in_db=(get("CONNECTIONS_IN_DB") or "1") != "0",
            extra_components=tuple(tuple(shlex.split(c)) for c in extra.split(";") if c.strip()),
            extra_env=json.loads(get("EXTRA_ENV") or "{}"),
        )

    def components(self) -> tuple[Component, ...]:
        """Every long-running process, in start order."""
        workers = [
            Component(
                f"celery-{name}",
                (
                    *("celery", "worker", "--celery-hostname", name, "--concurrency", str(self.worker_concurrency)),
                    # Logs are read from the shared folder (a shared volume, in a real cluster): no log server per
                    # worker, which would need a port each. No mingle/gossip: less chatter, a faster start.
                    *("--skip-serve-logs", "--without-mingle", "--without-gossip"),
                ),
                {
                    "OSSCSE_DEPLOYMENT_WORKER_HOSTNAME": name,
                    "AIRFLOW__CORE__HOSTNAME_CALLABLE": "osscse_deployment_hostname.hostname",
                    "PYTHONPATH": os.pathsep.join(filter(None, [str(WORKER_SITE), os.environ.get("PYTHONPATH")])),
                },
            )
            for name in (self.celery_workers if self.celery else ())
        ]
        own = [Component("-".join(command), command) for command in (*COMPONENTS, *self.extra_components)]
        return (*own, *workers)


@dataclass(frozen=True)
class Component:
    """One long-running ``airflow <command>`` process; ``env`` adds to (overrides) the deployment's."""

    name: str
    command: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
