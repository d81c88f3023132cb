"""The host name a Celery worker of the deployment tier reports for its task instances (Airflow's
``[core] hostname_callable``).

In a real Celery cluster each worker runs on its own machine, so a task instance's ``hostname`` (shown in
the UI and the REST API) tells which worker ran it. The tier's two workers share this machine, so each
is started with ``OSSCSE_DEPLOYMENT_WORKER_HOSTNAME`` set to its own name and this directory on its
``PYTHONPATH``; the task processes it forks inherit both. Outside such a worker it is the machine's name.
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return os.environ.get("OSSCSE_DEPLOYMENT_WORKER_HOSTNAME") or socket.getfqdn()
