"""The leak scan would catch a leak: keys planted in every encoding are found, in files and DB dumps.

tests/deployment/test_zz_no_secret_leaks.py asserts that the scan of a real deployment finds nothing;
that proves something only if the scan finds what is there. Here secrets are planted, each form built
independently of :func:`~tests.deployment.leak_scan.encodings` (raw, hex, HEX, base64 and base64url,
padded and unpadded, inside larger base64 blobs at every byte offset), into files, a SQLite dump and a
PostgreSQL dump, at every offset modulo the scanner's window, and each must be found where it was put.
The last test proves the independent unwrapping (tests/deployment/data_keys.py) recovers the keys the
provider wrote with each CMK kind, by decrypting the bodies at rest with them.
"""

from __future__ import annotations

import base64
import contextlib
import os
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook
from airflow_provider_osscse.testing.kms_server import LocalKMSServer
from airflow_provider_osscse.testing.openbao import OpenBaoServer
from tests.deployment import leak_scan
from tests.deployment.data_keys import KeyCustody, encrypted_objects, kms_client, rsa_private_secrets
from tests.deployment.leak_scan import (
    GRAM,
    LeakScanner,
    Secret,
    base64_core,
    dump_metadata_db,
    encodings,
    service_log_files,
)
from tests.operators.fixtures import KV_CMK, TRANSIT_CMK, postgres_server  # noqa: F401 - a fixture

DATA_KEY = Secret("data key", "planted data key", bytes(range(200, 232)))
#: Bytes 8..11 zero, as every IV of the format; its base64 has "+" and "/", so base64url differs.
IV = Secret("IV", "planted IV", bytes.fromhex("fbffbffbffbf3ef800000000fbefbeff"))
TOKEN = Secret("Vault token", "planted token", b"s.planted-" + base64.urlsafe_b64encode(os.urandom(24)))
SECRETS = (DATA_KEY, IV, TOKEN)


def planted_forms(value: bytes) -> dict[str, bytes]:
    """How a leak could print ``value``, built without the scanner's code; base64 blobs around it start
    at offsets 0..5 (all three alignments, twice) and end at different offsets too."""
    forms = {
        "raw": value,
        "hex": value.hex().encode(),
        "HEX": value.hex().upper().encode(),
        "base64": base64.b64encode(value),
        "base64 unpadded": base64.b64encode(value).rstrip(b"="),
        "base64url": base64.urlsafe_b64encode(value),
        "base64url unpadded": base64.urlsafe_b64encode(value).rstrip(b"="),
    }
    for before in range(6):
        blob = os.urandom(before) + value + os.urandom(5 + before)
        forms[f"base64 blob, {before} bytes before"] = base64.b64encode(blob)
        forms[f"base64url blob, {before} bytes before"] = base64.urlsafe_b64encode(blob)
    return forms


CASES = [(s, form) for s in SECRETS for form in planted_forms(s.value)]


@pytest.mark.parametrize(("secret", "form"), CASES, ids=[f"{s.kind}-{f}" for s, f in CASES])
def test_a_secret_planted_in_a_file_is_found_in_every_encoding_at_every_offset(
    secret: Secret, form: str, tmp_path: Path
) -> None:
    scanner = LeakScanner(SECRETS)
    planted = planted_forms(secret.value)[form]
    line = b'[2026-01-01] INFO {"value": "'
    for shift in range(GRAM + 1):  # every offset modulo the scanner's window
        path = tmp_path / f"task-{shift}.log"
        path.write_bytes(b"x" * shift + line + planted + b'"}\n' + os.urandom(64))
        findings = scanner.scan_file("task logs", path)
        assert {f.secret.label for f in findings} == {secret.label}, (form, shift)
        assert min(f.offset for f in findings) >= shift + len(line)  # where it was planted, not earlier


def test_a_clean_haystack_has_no_findings_and_the_tally_counts_what_was_read(tmp_path: Path) -> None:
    scanner = LeakScanner(SECRETS)
    clean = tmp_path / "scheduler.log"
    clean.write_bytes(base64.b64encode(os.urandom(300_000)) + os.urandom(300_000))
    assert scanner.scan_file("component logs", clean) == []
    assert scanner.scan("XCom", "xcom a", b'{"keys": ["transfer/a.csv"]}') == []
    assert (scanner.tally["component logs"].items, scanner.tally["component logs"].size) == (1, 700_000)
    assert scanner.tally["XCom"].items == 1
    assert "component logs: 1 item(s), 700,000 bytes" in scanner.summary()


def test_a_secret_across_a_chunk_boundary_is_found_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(leak_scan, "CHUNK", 64)
    scanner = LeakScanner(SECRETS)
    hexed = DATA_KEY.value.hex().encode()
    for start in range(40, 72):  # the 64-character hex form straddles the 64-byte chunk boundary
        path = tmp_path / f"big-{start}.log"
        path.write_bytes(b"." * start + hexed + b"." * 200)
        findings = scanner.scan_file("task logs", path)
        assert [(f.offset, f.encoding) for f in findings] == [(start, "hex")], start


def test_findings_name_the_secret_but_never_print_its_value() -> None:
    scanner = LeakScanner(SECRETS)
    findings = scanner.scan(
        "task logs", "a.log", b"key=" + base64.b64encode(DATA_KEY.value) + b" iv=" + IV.value.hex().encode()
    )
    text = "\n".join(map(str, findings)) + repr(findings)
    assert "planted data key" in text and "planted IV" in text
    for secret in SECRETS:
        assert not any(form.decode("latin-1") in text for form in encodings(secret.value).values())


def test_the_base64_core_is_inside_every_blob_that_encloses_the_value() -> None:
    value = os.urandom(16)
    for before in range(9):
        for after in range(4):
            blob = base64.b64encode(os.urandom(before) + value + os.urandom(after))
            assert base64_core(value, before % 3) in blob, (before, after)


def test_secrets_planted_in_a_sqlite_metadata_db_are_found_in_its_dump(tmp_path: Path) -> None:
    path = tmp_path / "airflow.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE xcom (key TEXT, value BLOB)")
        db.execute("CREATE TABLE log (event TEXT)")
        db.execute("INSERT INTO xcom VALUES ('raw', ?)", (DATA_KEY.value,))  # dumped as X'...' (HEX)
        db.execute("INSERT INTO log VALUES (?)", (f"iv {base64.urlsafe_b64encode(IV.value).decode()}",))
        db.execute("INSERT INTO log VALUES (?)", (f"connection password {TOKEN.value.decode()}",))
        db.commit()
    scanner = LeakScanner(SECRETS)
    findings = scanner.scan("metadata DB dump", "sqlite", dump_metadata_db(f"sqlite:///{path}"))
    assert {(f.secret.label, f.encoding) for f in findings} >= {
        ("planted data key", "HEX"),
        ("planted IV", "base64url padded"),
        ("planted token", "raw"),
    }


def test_secrets_planted_in_a_postgresql_metadata_db_are_found_in_its_pg_dump(postgres_server: dict[str, Any]) -> None:  # noqa: F811
    import psycopg2  # type: ignore[import-untyped]

    dsn = f"postgresql://{postgres_server['user']}@{postgres_server['host']}:{postgres_server['port']}"
    database = f"leak_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(f"{dsn}/postgres")
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {database}")
    try:
        with contextlib.closing(psycopg2.connect(f"{dsn}/{database}")) as db, db.cursor() as cursor:
            cursor.execute("CREATE TABLE xcom (key text, value bytea, doc jsonb)")
            doc = '{"blob": "%s"}' % base64.b64encode(b"ab" + IV.value + b"cdef").decode()  # noqa: UP031
            cursor.execute("INSERT INTO xcom VALUES ('k', %s, %s)", (DATA_KEY.value, doc))  # bytea: \x... (hex)
            db.commit()
        dump = dump_metadata_db(f"postgresql+psycopg2://{dsn.removeprefix('postgresql://')}/{database}")
    finally:
        admin.cursor().execute(f"DROP DATABASE {database}")
        admin.close()
    findings = LeakScanner(SECRETS).scan("metadata DB dump", "pg_dump", dump)
    assert [p.name for p in service_log_files(postgres_server["port"])] == ["server.log"]  # found by its process
    assert {(f.secret.label, f.encoding) for f in findings} >= {
        ("planted data key", "hex"),
        ("planted IV", "base64 inside a larger blob (offset 2 mod 3)"),
    }


def test_an_unknown_metadata_db_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="mysql"):
        dump_metadata_db("mysql+mysqldb://airflow@localhost/airflow")


@pytest.fixture
def rsa_file_cmk(tmp_path: Path) -> tuple[str, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "cmk.pem"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return f"rsa-file://{path}", key


def test_independent_unwrap_recovers_the_keys_the_provider_wrote_with_each_cmk_kind(
    osscse_services: dict[str, Any],
    osscse_openbao: OpenBaoServer,
    osscse_kms_server: LocalKMSServer,
    rsa_file_cmk: tuple[str, rsa.RSAPrivateKey],
) -> None:
    prefix = f"leak-scan-unwrap/{uuid.uuid4().hex}/"
    kms = osscse_kms_server
    cmks = {"vault-transit": TRANSIT_CMK, "vault-kv": KV_CMK, "kms": f"kms://kms_default/{kms.create_key()}"}
    cmks["rsa-file"] = rsa_file_cmk[0]
    plaintexts = {}
    for kind, cmk in cmks.items():
        plaintexts[f"{prefix}{kind}.bin"] = os.urandom(1000 + len(kind))  # not a whole number of AES blocks
        EncryptedOSSHook("oss_default", cmk=cmk).upload(
            [plaintexts[f"{prefix}{kind}.bin"]], f"{prefix}{kind}.bin", osscse_services["bucket_name"]
        )
    kv_key, kv_secrets = rsa_private_secrets("kv", osscse_services["kv_private_pem"].decode())
    custody = KeyCustody(
        vault=osscse_openbao.client(),
        rsa_keys=[rsa_file_cmk[1], kv_key],
        kms=kms_client(kms.endpoint, kms.access_key_id, kms.access_key_secret, kms.region),
    )
    envelopes = list(encrypted_objects(osscse_services["bucket"], prefix))
    assert len(envelopes) == len(cmks)
    for envelope in envelopes:
        key = envelope.where.split("/", 1)[1]
        unwrapped = custody.unwrap(envelope)
        at_rest = osscse_services["oss"].stored_object(osscse_services["bucket_name"], key).data
        assert at_rest != plaintexts[key] and unwrapped.decrypt(at_rest) == plaintexts[key], key
    assert {s.label for s in kv_secrets} >= {"kv (d)", "kv (p)", "kv (q)"} and len(kv_secrets) > 10
    with pytest.raises(ValueError, match="none of the 1 RSA key"):
        KeyCustody(rsa_keys=[rsa_file_cmk[1]]).unwrap(next(e for e in envelopes if e.where.endswith("vault-kv.bin")))
