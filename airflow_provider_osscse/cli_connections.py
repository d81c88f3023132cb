"""Connections for ``osscse``: what ``airflow connections get`` sees, without Airflow when possible.

``osscse`` runs one operation per process, and importing Airflow costs about three seconds and
130 MB, more than most commands themselves. So a connection is read without Airflow when the
answer is provably the one Airflow would give:

* Airflow searches, in order, the configured secrets backend (``[secrets] backend``), the
  environment variables ``AIRFLOW_CONN_<ID>``, then the metadata DB;
* so when no secrets backend is configured and ``AIRFLOW_CONN_<ID>`` holds the JSON form, that
  variable is the answer, and it is read here (JSON is the form the docs use; Airflow's JSON reading
  is a plain mapping of the keys ``conn_type``, ``host``, ``login``, ``password``, ``schema``, ``port``
  and ``extra``);
* anything else (a URI in the variable, a secrets backend, the metadata DB) goes to Airflow itself,
  in the *server* process context that ``airflow connections get`` uses, which includes the metadata DB.

Vault connections are always read by the hashicorp provider's ``VaultHook`` (it owns Vault auth), so a
``vault-transit://`` or ``vault-kv://`` CMK costs the Airflow import.

A variable that starts with ``{`` but is not valid JSON is reported here, naming the variable, where
Airflow would only say the connection is not defined.
"""

from __future__ import annotations

import configparser
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_provider_osscse.airflow_connections import ConnectionFields, is_connection_not_found
from airflow_provider_osscse.exceptions import ConnectionNotFoundError
from airflow_provider_osscse.hooks.encrypted_oss_operations import EncryptedOSSOperations

#: The secrets options that make Airflow search a backend before the environment variables.
_BACKEND_OPTIONS = ("backend", "backend_cmd", "backend_secret")


@dataclass(frozen=True)
class JsonConnection:
    """A connection read from the JSON form of ``AIRFLOW_CONN_<ID>`` (the fields this provider reads)."""

    conn_id: str
    conn_type: str | None = None
    host: str | None = None
    login: str | None = None
    password: str | None = None
    schema: str | None = None
    port: int | None = None
    extra_dejson: dict[str, Any] = field(default_factory=dict)


def env_name(conn_id: str) -> str:
    """The environment variable Airflow reads for ``conn_id``."""
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def cli_connection(conn_id: str) -> ConnectionFields:
    """The connection ``conn_id`` as ``airflow connections get`` would return it."""
    variable = env_name(conn_id)
    value = os.environ.get(variable)
    if value is not None and value.lstrip().startswith("{"):
        conn = _from_json(conn_id, variable, value)  # malformed JSON: named here, whatever the path
        if not secrets_backend_configured():
            return conn
    return _from_airflow(conn_id, variable)


def _from_json(conn_id: str, variable: str, value: str) -> JsonConnection:
    try:
        fields = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ConnectionNotFoundError(
            f"{variable} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            f'expected e.g. {{"conn_type": "oss_cse", "schema": "BUCKET", "extra": {{...}}}} or a URI'
        ) from None
    if not isinstance(fields, dict):
        raise ConnectionNotFoundError(
            f"{variable} must be a JSON object of connection fields, not {type(fields).__name__}"
        )
    extra = fields.get("extra") or {}
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except json.JSONDecodeError as exc:
            raise ConnectionNotFoundError(
                f"{variable}: its 'extra' is a string but not valid JSON ({exc.msg})"
            ) from None
    if not isinstance(extra, dict):
        raise ConnectionNotFoundError(f"{variable}: 'extra' must be a JSON object")
    port = fields.get("port")
    try:
        port = int(port) if port not in (None, "") else None
    except (TypeError, ValueError):
        raise ConnectionNotFoundError(f"{variable}: 'port' must be an integer, got {port!r}") from None
    return JsonConnection(
        conn_id=conn_id,
        conn_type=fields.get("conn_type"),
        host=fields.get("host"),
        login=fields.get("login"),
        password=fields.get("password"),
        schema=fields.get("schema"),
        port=port,
        extra_dejson=extra,
    )


def _from_airflow(conn_id: str, variable: str) -> ConnectionFields:
    """Airflow's own lookup, as ``airflow connections get`` does it (server context: metadata DB too)."""
    os.environ.setdefault("_AIRFLOW_PROCESS_CONTEXT", "server")
    from airflow_provider_osscse.airflow_connections import airflow_connection

    try:
        return airflow_connection(conn_id)
    except Exception as exc:
        if not is_connection_not_found(exc):
            raise
        raise ConnectionNotFoundError(
            f"Airflow connection {conn_id!r} is not defined: set {variable} (JSON or URI), or add it with "
            f"`airflow connections add {conn_id} ...` (metadata DB) or to the configured secrets backend"
        ) from None


def secrets_backend_configured() -> bool:
    """Whether Airflow's ``[secrets] backend`` is set (environment, or the ``airflow.cfg`` Airflow reads)."""
    if any(os.environ.get(f"AIRFLOW__SECRETS__{option.upper()}") for option in _BACKEND_OPTIONS):
        return True
    home = Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow").expanduser()
    config_file = Path(os.environ.get("AIRFLOW_CONFIG") or home / "airflow.cfg").expanduser()
    if not config_file.is_file():
        return False
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read(config_file, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return True  # cannot tell: let Airflow decide (slower, never wrong)
    return any(parser.get("secrets", option, fallback="").strip() for option in _BACKEND_OPTIONS)


class CommandLineOSS(EncryptedOSSOperations):
    """``EncryptedOSSHook``'s operations on the connections ``osscse`` reads (see the module docstring)."""

    def _connection(self, conn_id: str) -> ConnectionFields:
        return cli_connection(conn_id)


__all__ = ["CommandLineOSS", "JsonConnection", "cli_connection", "env_name", "secrets_backend_configured"]
