"""What the example DAGs need to exist before they run: bucket, Transit key, KV RSA key, a
decrypt-only Vault token, the SQL source and input files.

Shared by ``scripts/demo.py`` (``make demo``) and ``tests/dags`` so the demo and the tests seed the
same way. Only real clients (oss2, hvac) over loopback; no provider code, so a seeding problem is
never confused with a provider bug.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

import hvac
import oss2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

TRANSIT_MOUNT = "transit"
TRANSIT_KEY = "osscse-demo"
KV_MOUNT = "secret"
KV_PATH = "osscse/etl-rsa"
DECRYPT_POLICY = "osscse-etl-decrypt"
ORDERS_TABLE = "orders"


def ensure_bucket(endpoint: str, access_key_id: str, access_key_secret: str, region: str, bucket: str) -> oss2.Bucket:
    """Create ``bucket`` on the OSS server if missing; return an oss2 handle for checks."""
    auth = oss2.AuthV4(access_key_id, access_key_secret)
    handle = oss2.Bucket(auth, endpoint, bucket, region=region)
    try:
        handle.get_bucket_info()
    except oss2.exceptions.NoSuchBucket:
        handle.create_bucket()
    return handle


def ensure_transit_key(client: hvac.Client, name: str = TRANSIT_KEY) -> None:
    """Enable the Transit engine and create the (AES-256-GCM) key when absent."""
    if f"{TRANSIT_MOUNT}/" not in client.sys.list_mounted_secrets_engines()["data"]:
        client.sys.enable_secrets_engine("transit", path=TRANSIT_MOUNT)
    client.secrets.transit.create_key(name=name, mount_point=TRANSIT_MOUNT)


def ensure_kv_rsa_key(client: hvac.Client, path: str = KV_PATH) -> bytes:
    """Store a fresh RSA-2048 key pair (PEM) in KV v2 unless one is there; return the private PEM.

    Fields ``private_key`` (PKCS#8 PEM) and ``public_key`` (SPKI PEM).
    """
    try:
        existing = client.secrets.kv.v2.read_secret_version(
            path=path, mount_point=KV_MOUNT, raise_on_deleted_version=True
        )
        return existing["data"]["data"]["private_key"].encode()
    except hvac.exceptions.InvalidPath:
        pass
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    client.secrets.kv.v2.create_or_update_secret(
        path=path,
        mount_point=KV_MOUNT,
        secret={"private_key": private_pem.decode(), "public_key": public_pem.decode()},
    )
    return private_pem


def decrypt_only_token(client: hvac.Client, path: str = KV_PATH) -> str:
    """A token whose policy may only read that one KV secret (nothing else, no writes)."""
    policy = f'path "{KV_MOUNT}/data/{path}" {{ capabilities = ["read"] }}\n'
    client.sys.create_or_update_policy(name=DECRYPT_POLICY, policy=policy)
    return client.auth.token.create(policies=[DECRYPT_POLICY], no_default_policy=False, ttl="2h")["auth"][
        "client_token"
    ]


def vault_connection_json(address: str, token: str) -> str:
    """``AIRFLOW_CONN_*`` JSON for a token-authenticated ``vault`` connection."""
    host, port = address.removeprefix("http://").rsplit(":", 1)
    return json.dumps(
        {
            "conn_type": "vault",
            "host": host,
            "port": int(port),
            "password": token,
            "schema": KV_MOUNT,
            "extra": {"auth_type": "token", "use_tls": False, "kv_engine_version": 2},
        }
    )


def order_rows(first_day: dt.date, days: int, per_day: int = 5) -> list[tuple[Any, ...]]:
    """Deterministic orders: ``per_day`` rows on each day, ids increasing."""
    rows = []
    customers = ["acme", "globex", "initech", "umbrella", "hooli"]
    for d in range(days):
        day = first_day + dt.timedelta(days=d)
        for i in range(per_day):
            n = d * per_day + i + 1
            created = dt.datetime.combine(day, dt.time(hour=1 + 4 * i, minute=n % 60))
            rows.append(
                (n, customers[n % len(customers)], f"{10 + n * 1.25:.2f}", created.strftime("%Y-%m-%d %H:%M:%S"))
            )
    return rows


def create_sqlite_orders(path: Path, rows: list[tuple[Any, ...]]) -> None:
    """A SQLite database with the ``orders`` table the compliance export reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute(f"DROP TABLE IF EXISTS {ORDERS_TABLE}")
        db.execute(f"CREATE TABLE {ORDERS_TABLE} (id INTEGER PRIMARY KEY, customer TEXT, amount TEXT, created_at TEXT)")
        # The table name is a module constant; the values are bound parameters.
        db.executemany(f"INSERT INTO {ORDERS_TABLE} VALUES (?, ?, ?, ?)", rows)  # noqa: S608


def sqlite_connection_json(path: Path) -> str:
    """``AIRFLOW_CONN_*`` JSON for a SQLite file (the sqlite provider reads ``host`` as the path)."""
    return json.dumps({"conn_type": "sqlite", "host": str(path)})


def write_input_files(directory: Path) -> dict[str, bytes]:
    """A few input files of different sizes (one crosses several AES blocks unevenly)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "customers.csv": b"id,name\n1,acme\n2,globex\n3,initech\n",
        "notes/readme.txt": "Confidential: client-side encrypted before it leaves the worker. \u2713\n".encode(),
        "blobs/random.bin": bytes((i * 131 + 7) % 256 for i in range(70_001)),
    }
    for name, data in files.items():
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return files
