"""One string names a CMK; :func:`resolve_cmk` turns it into a :class:`Cmk`.

Forms (see ``docs/key-custody.md``)::

    vault-transit://<vault_conn_id>/<mount>/<key_name>
    vault-kv://<vault_conn_id>/<mount>/<secret_path>[?version=N][&allow_weak_key_for_unwrap=1]
    kms://<kms_conn_id>/<key id | alias/NAME>
    rsa-file:///absolute/path/key.pem[?allow_weak_key_for_unwrap=1]

``allow_weak_key_for_unwrap=1`` is the explicit, dangerous opt-in to *read* with an RSA key under
2048 bits (to rewrap what it protects under a new key); such a key never wraps.

The connection id says *how to reach* the key service from this deployment; it is deliberately not
part of the matdesc written into objects (a reader elsewhere may use another connection id for the
same key). Vault connections are the hashicorp provider's ``vault`` connections, authenticated only
through ``VaultHook(vault_conn_id=...).get_conn()`` so all its auth methods work. Airflow is
imported lazily, only when a connection is actually resolved.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from airflow_provider_osscse.airflow_connections import ConnectionLookup, airflow_connection, is_connection_not_found
from airflow_provider_osscse.envelope.keywrap import Cmk
from airflow_provider_osscse.exceptions import CmkConnectionNotFoundError, CmkReferenceError, ConnectionNotFoundError
from airflow_provider_osscse.keys.retry import DEFAULT_RETRY, RetryPolicy

if TYPE_CHECKING:
    import hvac

SCHEMES = ("vault-transit", "vault-kv", "kms", "rsa-file")
_WEAK = "allow_weak_key_for_unwrap"
_CONN_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class CmkReference:
    """A parsed CMK reference. ``conn_id`` is empty for ``rsa-file``; ``version`` only for ``vault-kv``."""

    raw: str
    scheme: str
    conn_id: str
    mount: str
    name: str
    version: int | None = None
    #: ``?allow_weak_key_for_unwrap=1`` (RSA references only): read with an RSA key under 2048 bits.
    allow_weak_key_for_unwrap: bool = False


def parse_cmk_reference(reference: str) -> CmkReference:
    """Parse and validate ``reference``; raise :class:`CmkReferenceError` naming it when malformed."""

    def bad(why: str) -> CmkReferenceError:
        return CmkReferenceError(f"invalid CMK reference {reference!r}: {why}")

    candidate: object = reference  # callers may be untyped (DAG code): check at run time
    if not isinstance(candidate, str) or "://" not in reference:
        raise bad(f"expected <scheme>://..., with scheme one of {', '.join(SCHEMES)}")
    parts = urlsplit(reference)
    scheme = parts.scheme
    if scheme not in SCHEMES:
        raise bad(f"unknown scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    if parts.fragment:
        raise bad("fragments are not allowed")
    weak = False
    query: dict[str, list[str]] = {}
    if parts.query:
        if scheme not in ("vault-kv", "rsa-file"):
            raise bad("only vault-kv and rsa-file references take a query")
        try:
            query = parse_qs(parts.query, strict_parsing=True)
        except ValueError:
            raise bad("malformed query") from None
        allowed = {"version", _WEAK} if scheme == "vault-kv" else {_WEAK}
        if not set(query) <= allowed or any(len(v) != 1 for v in query.values()):
            raise bad(f"the only query parameters are {' and '.join(sorted(allowed))}, each once")
        if _WEAK in query:
            if query[_WEAK][0] != "1":
                raise bad(f"{_WEAK} takes the value 1")
            weak = True
    if scheme == "rsa-file":
        if parts.netloc or not parts.path.startswith("/"):
            raise bad("expected rsa-file:///absolute/path/key.pem")
        return CmkReference(reference, scheme, "", "", parts.path, allow_weak_key_for_unwrap=weak)

    conn_id = parts.netloc
    if not conn_id or not _CONN_ID.match(conn_id):
        raise bad("missing or invalid connection id after '//'")
    segments = parts.path.split("/")
    if segments[:1] == [""]:
        segments = segments[1:]
    if any(s == "" for s in segments):
        raise bad("empty path segment")
    version: int | None = None
    if "version" in query:
        if not query["version"][0].isdigit() or int(query["version"][0]) < 1:
            raise bad("version must be a positive integer")
        version = int(query["version"][0])
    if scheme == "kms":
        name = "/".join(segments)
        if (
            not segments
            or (segments[0] == "alias" and len(segments) != 2)
            or (segments[0] != "alias" and len(segments) != 1)
        ):
            raise bad("expected kms://<conn_id>/<key id> or kms://<conn_id>/alias/<name>")
        return CmkReference(reference, scheme, conn_id, "", name)
    if len(segments) < 2:
        what = "key_name" if scheme == "vault-transit" else "secret_path"
        raise bad(f"expected {scheme}://<conn_id>/<mount>/<{what}>")
    if scheme == "vault-transit":
        return CmkReference(reference, scheme, conn_id, "/".join(segments[:-1]), segments[-1])
    return CmkReference(reference, scheme, conn_id, segments[0], "/".join(segments[1:]), version, weak)


@contextmanager
def _connection_defined(ref: CmkReference) -> Iterator[None]:
    """Turn "connection not found" inside the block into :class:`CmkConnectionNotFoundError`.

    The message names the reference and the connection id, so the user knows which one to define.
    """
    try:
        yield
    except Exception as exc:
        if not is_connection_not_found(exc):
            raise
        detail = f": {exc}" if isinstance(exc, ConnectionNotFoundError) else ""
        raise CmkConnectionNotFoundError(
            f"CMK reference {ref.raw!r}: Airflow connection {ref.conn_id!r} is not defined{detail}"
        ) from None


def _vault_client(ref: CmkReference, retry: RetryPolicy) -> hvac.Client:
    """An authenticated hvac client from the ``vault`` connection.

    ``get_conn()`` may already talk to Vault (a login, or a token lookup), so it goes through
    :func:`vault_call` like every other Vault request: an unreachable Vault is retried within
    ``retry`` and then reported as ``KeyServiceUnavailableError`` naming the reference, never as a
    raw ``requests`` error, and a rejected login becomes ``KeyPermissionError``.
    """
    from airflow.providers.hashicorp.hooks.vault import VaultHook

    from airflow_provider_osscse.keys.vault_calls import vault_call

    def connect() -> hvac.Client:
        with _connection_defined(ref):
            return VaultHook(vault_conn_id=ref.conn_id).get_conn()

    return vault_call(connect, reference=ref.raw, path="auth/token/lookup-self", capability="read", retry=retry)


def resolve_cmk(
    reference: str,
    *,
    matdesc: Mapping[str, str] | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
    connections: ConnectionLookup = airflow_connection,
) -> Cmk:
    """Build the CMK named by ``reference`` from Airflow connections (``matdesc``: extra user entries).

    ``connections`` looks up the KMS connection of a ``kms://`` reference (default: Airflow's lookup).
    Vault connections are always read by the hashicorp provider's ``VaultHook``, which owns Vault auth.
    """
    ref = parse_cmk_reference(reference)
    if ref.scheme == "vault-transit":
        from airflow_provider_osscse.keys.vault_transit import VaultTransitKey

        return VaultTransitKey(
            _vault_client(ref, retry),
            mount=ref.mount,
            key_name=ref.name,
            reference=ref.raw,
            matdesc=matdesc,
            retry=retry,
        )
    if ref.scheme == "vault-kv":
        from airflow_provider_osscse.keys.vault_kv import VaultKvRsaKey

        return VaultKvRsaKey(
            _vault_client(ref, retry),
            mount=ref.mount,
            secret_path=ref.name,
            version=ref.version,
            reference=ref.raw,
            matdesc=matdesc,
            retry=retry,
            allow_weak_key_for_unwrap=ref.allow_weak_key_for_unwrap,
        )
    if ref.scheme == "kms":
        # The connection is read here, not through the hooks layer's AlicloudKmsHook (keys sit below
        # hooks); both build the CMK through KmsConnectionSettings.cmk.
        from airflow_provider_osscse.keys.alicloud_kms_connection import KmsConnectionSettings

        with _connection_defined(ref):
            conn = connections(ref.conn_id)
        settings = KmsConnectionSettings.from_connection_fields(
            ref.conn_id, conn.login, conn.password, conn.extra_dejson
        )
        return settings.cmk(ref.name, reference=ref.raw, matdesc=matdesc, retry=retry)
    from airflow_provider_osscse.keys.rsa_file import load_rsa_file_key

    return load_rsa_file_key(
        ref.name, reference=ref.raw, matdesc=matdesc, allow_weak_key_for_unwrap=ref.allow_weak_key_for_unwrap
    )
