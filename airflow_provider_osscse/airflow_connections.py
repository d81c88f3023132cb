"""How the provider reads Airflow connections: the fields it uses, and who looks them up.

The key providers (a KMS connection) and the hook (the OSS connection) need a handful of a
connection's fields, not Airflow itself. They take a :data:`ConnectionLookup`, a callable from a
connection id to an object with those fields. Inside Airflow it is Airflow's own lookup
(:func:`airflow_connection`, what ``BaseHook.get_connection`` does: secrets backend, environment
variables, metadata DB). The ``osscse`` command line passes a lookup that answers the same without
importing Airflow when it can prove the answer is the same (see ``cli_connections``), because the
import alone costs about three seconds per command.

Airflow is imported lazily, only when a connection is actually looked up through it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, Protocol

from airflow_provider_osscse.exceptions import ConnectionNotFoundError


class ConnectionFields(Protocol):
    """The fields of an Airflow connection this provider reads (``airflow.sdk.Connection`` has them)."""

    @property
    def conn_id(self) -> str: ...

    @property
    def conn_type(self) -> str | None: ...

    @property
    def host(self) -> str | None: ...

    @property
    def login(self) -> str | None: ...

    @property
    def password(self) -> str | None: ...

    @property
    def schema(self) -> str | None: ...

    @property
    def port(self) -> int | None: ...

    @property
    def extra_dejson(self) -> dict[str, Any]: ...


#: Connection id -> its fields; raises when the connection is not defined.
ConnectionLookup = Callable[[str], ConnectionFields]


def airflow_connection(conn_id: str) -> ConnectionFields:
    """The connection as Airflow resolves it for the running process (imports Airflow)."""
    from airflow.sdk import BaseHook

    conn: ConnectionFields = BaseHook.get_connection(conn_id)
    return conn


def is_connection_not_found(exc: BaseException) -> bool:
    """Whether ``exc`` says a connection is not defined: Airflow's ``AirflowNotFoundException``
    (checked only when Airflow is already imported; nothing is imported to answer) or the
    :class:`~airflow_provider_osscse.exceptions.ConnectionNotFoundError` of a non-Airflow lookup."""
    if isinstance(exc, ConnectionNotFoundError):
        return True
    if "airflow.sdk.exceptions" not in sys.modules:
        return False
    from airflow.sdk.exceptions import AirflowNotFoundException  # what airflow.exceptions re-exports

    return isinstance(exc, AirflowNotFoundException)


__all__ = ["ConnectionFields", "ConnectionLookup", "airflow_connection", "is_connection_not_found"]
