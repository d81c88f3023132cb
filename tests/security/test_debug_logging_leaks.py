"""1,000 objects through every path with every logger at DEBUG: no data key, IV or long-lived secret logged.

Data keys are not registered with Airflow's secrets masker (its cost grew with every object a process
touched, issue 13), so nothing would redact one that reached a log: they must stay out by
construction. This test is the proof at fleet size. Root, Airflow, oss2, hvac, urllib3, requests,
the KMS SDK's cores (``alibabacloud-tea``, ``darabonba-core``, with their HTTP debug switched on by
``DEBUG=sdk``) and this package all log at DEBUG while 1,000 small objects (a few multipart) go
through upload, read, stream, download to a file, ranged read, copy (tag re-bound), rewrap (native
Transit ``rewrap``, KMS ``ReEncrypt``, and unwrap + wrap across kinds) and inspect, under each CMK kind
and with the write-side data-key cache where it applies. Only afterwards does the test unwrap every
stored object's data key itself, from its headers, with CMKs of its own, and look for every form of
every data key and IV (and of the tokens, PEMs and secrets) in everything captured.

The services are the session's (local OSS and KMS servers, OpenBao); the test adds a Transit key
(rotated between writes and rewraps, so Transit's rewrap really moves versions) and a second KMS key
(the ``ReEncrypt`` target).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import sys
import uuid
import warnings
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_osscse.envelope.headers import parse_envelope
from airflow_provider_osscse.envelope.keywrap import Cmk
from airflow_provider_osscse.keys.data_key_cache import DataKeyCacheLimits
from airflow_provider_osscse.keys.reference import resolve_cmk

from .conftest import BUCKET, PART, SecurityEnv, leaked, redact_text, secret_forms

#: Objects uploaded in total (copies made by the copy path come on top and are checked too).
OBJECTS = 1000
#: Small: the point is the number of objects and paths, not bytes.
SMALL_SIZES = (200, 777, 1500, 4096)
#: Above the security tests' multipart threshold (200 KiB): three parts of 100 KiB.
MULTIPART_SIZE = 2 * PART + 50 * 1024
#: Every object after its upload takes one of these (by its index), inspect on every third.
OPERATIONS = ("read", "stream", "download", "ranged-read", "copy", "rewrap")
#: Lanes (CMK kinds) run concurrently, each with its own hooks.
LANE_THREADS = 3
#: A small write cache so that several data keys and several IV batches are made per lane.
CACHE = DataKeyCacheLimits(max_objects=40, iv_batch_size=16)


@dataclass
class Lane:
    """Objects written by one CMK (optionally through the data-key cache) and rewrapped onto another."""

    name: str
    cmk: str  # CMK reference that writes
    rewrap_to: str  # CMK reference the rewrap path moves data keys to
    objects: int
    cache: bool = False
    multipart: int = 1
    keys: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)  # paths taken (per lane: lanes run in threads)


@dataclass
class Fleet:
    """The lanes and where each stored object's data key is wrapped now (object key -> CMK reference)."""

    lanes: list[Lane]
    wrapped_by: dict[str, str] = field(default_factory=dict)

    def counts(self) -> Counter[str]:
        return sum((lane.counts for lane in self.lanes), Counter())


def _lanes(env: SecurityEnv, transit_ref: str, kms_target_ref: str) -> list[Lane]:
    rsa, kv, kms = env.cmks["rsa-file"], env.cmks["vault-kv"], env.cmks["kms"]
    lanes = [
        Lane("rsa-file", rsa, kv, 170),  # unwrap + wrap: RSA -> Vault KV
        Lane("rsa-file+cache", rsa, kms, 100, cache=True),  # unwrap + KMS Encrypt of the raw data key
        Lane("vault-transit", transit_ref, transit_ref, 170),  # native Transit rewrap v1 -> v2
        Lane("vault-transit+cache", transit_ref, transit_ref, 100, cache=True),
        Lane("vault-kv", kv, rsa, 160),  # unwrap + wrap: Vault KV -> RSA file
        Lane("kms", kms, kms_target_ref, 170),  # native KMS ReEncrypt to another key
        Lane("kms+cache", kms, transit_ref, 130, cache=True),  # KMS Decrypt + Transit encrypt
    ]
    assert sum(lane.objects for lane in lanes) == OBJECTS
    return lanes


def _content(index: int, size: int) -> bytes:
    """Recognisable, non-random plaintext (so a leaked *data key* cannot be confused with content)."""
    line = f"object {index:05d} ".encode()
    return (line * (size // len(line) + 1))[:size]


def _source(index: int, data: bytes, tmp_path: Path, cached: bool) -> Any:
    """Every upload source kind: iterator (size unknown: spooled, never cached), file object, path."""
    if cached or index % 3 == 1:
        return io.BytesIO(data)  # a known size: what the write cache needs
    if index % 3 == 2:
        path = tmp_path / f"src-{index}.bin"
        path.write_bytes(data)
        return path
    return iter([data[: len(data) // 2], data[len(data) // 2 :]])


def _run_lane(
    lane: Lane, fleet: Fleet, make_hook: Callable[..., Any], prefix: str, tmp_path: Path, first: int
) -> Iterator[None]:
    """Upload the lane's objects, yield (the caller rotates keys between writes and rewraps), then run
    every path over them. A generator so that all lanes write before any rewraps."""
    hook = make_hook(lane.cmk, data_key_cache=CACHE if lane.cache else None)
    contents: dict[str, bytes] = {}
    for n in range(lane.objects):
        index = first + n
        multipart = n < lane.multipart
        data = _content(index, MULTIPART_SIZE if multipart else SMALL_SIZES[index % len(SMALL_SIZES)])
        key = f"{prefix}{lane.name}/{index:05d}"
        hook.upload(_source(index, data, tmp_path, lane.cache), key)
        fleet.wrapped_by[key] = lane.cmk
        contents[key] = data
        lane.keys.append(key)
    lane.counts["multipart"] += min(lane.multipart, lane.objects)
    yield
    target = make_hook(lane.rewrap_to, decrypt_cmks=[lane.cmk])
    for n, key in enumerate(lane.keys):
        data = contents[key]
        # Multipart objects take every path; the small ones one each, in turn.
        operations = OPERATIONS if n < lane.multipart else (OPERATIONS[n % len(OPERATIONS)],)
        for operation in operations:
            _operate(operation, hook, target, key, data, fleet, lane, tmp_path, check=n < 4 * len(OPERATIONS))
            lane.counts[operation] += 1
        if n % 3 == 0:
            info = hook.inspect(key)
            assert info.integrity_tag and info.cmk
            lane.counts["inspect"] += 1


def _operate(
    operation: str, hook: Any, target: Any, key: str, data: bytes, fleet: Fleet, lane: Lane, tmp_path: Path, check: bool
) -> None:
    """One path over one object; ``check``: also read a copy or a rewrapped object back (every object's
    headers are unwrapped at the end anyway, so a few read-backs per lane are enough)."""
    if operation == "read":
        assert hook.read(key) == data
    elif operation == "stream":
        with hook.stream(key) as chunks:
            assert b"".join(chunks) == data
    elif operation == "download":
        out = tmp_path / "downloads" / key.replace("/", "_")
        hook.download(key, out)
        assert out.read_bytes() == data
    elif operation == "ranged-read":
        assert hook.read(key, byte_range="10-99") == data[10:100]
    elif operation == "copy":
        hook.copy(key, f"{key}.copy")  # the bound tag is re-bound to the new name (data key unwrapped)
        fleet.wrapped_by[f"{key}.copy"] = fleet.wrapped_by[key]
        if check:
            assert hook.read(f"{key}.copy") == data
    elif operation == "rewrap":
        result = target.rewrap(key)
        assert result.status == "rewrapped", (lane.name, result)
        fleet.wrapped_by[key] = lane.rewrap_to
        if check:
            assert target.read(key) == data


def _stored_content_keys(env: SecurityEnv, wrapped_by: dict[str, str]) -> list[bytes]:
    """Every stored object's data key and IV, unwrapped test-side from its headers (as
    ``conftest.object_content_key`` does) with fresh CMKs of the test's own, one per reference."""
    cmks: dict[str, Cmk] = {reference: resolve_cmk(reference) for reference in set(wrapped_by.values())}

    def unwrap(key: str) -> tuple[bytes, bytes]:
        envelope = parse_envelope(env.oss.stored_object(BUCKET, key).metadata, object_name=key)
        data_key = cmks[wrapped_by[key]].unwrap(envelope.wrapped)
        return data_key.key, data_key.iv

    with ThreadPoolExecutor(max_workers=LANE_THREADS) as pool:
        return [secret for pair in pool.map(unwrap, sorted(wrapped_by)) for secret in pair]


def leaked_any(text: str, forms: Iterable[str], *, width: int = 8, stride: int = 8) -> list[str]:
    """``conftest.leaked`` for tens of thousands of forms and megabytes of logs, in one pass.

    ``leaked`` scans the text once per form (10,000 forms x 20 MB would take minutes). Here the
    text is sampled every ``stride`` characters and each ``width``-character sample is looked up in
    an index of every form's windows at offsets ``0 .. stride-1``: an occurrence of a form of length
    ``L >= width + stride - 1`` at any position has a sampled window inside it at one of those
    offsets. Shorter forms are searched for one by one.
    """
    unique = set(forms)
    short = {f for f in unique if len(f) < width + stride - 1}
    index: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for form in unique - short:
        for offset in range(stride):
            index[form[offset : offset + width]].append((form, offset))
    found = {f for f in short if f in text}
    for pos in range(0, len(text) - width + 1, stride):
        hits = index.get(text[pos : pos + width])
        if hits:
            found.update(f for f, offset in hits if pos >= offset and text.startswith(f, pos - offset))
    return sorted(f[:24] + "..." for f in found)


def test_leaked_any_finds_every_form_anywhere_and_nothing_else() -> None:
    """The scanner this module relies on finds what ``conftest.leaked`` finds (forms at the start, in
    the middle and at the end of a text, and forms inside other forms)."""
    forms = secret_forms(os.urandom(32), os.urandom(16))
    assert leaked_any("nothing secret " * 100, forms) == []
    for shift in range(9):  # every alignment against the sampling stride
        text = "x" * shift + forms[0] + " mid " + forms[5] + " end:" + forms[-1]
        assert len(leaked_any(text, forms)) >= 3
        assert leaked_any(text, forms) == sorted(leaked(text, forms))
    assert leaked_any("short: hvs.abcdefg.", ["hvs.abcdefg"]) == ["hvs.abcdefg..."]


@pytest.fixture
def sdks_imported() -> None:
    """Import the SDKs before ``debug_logs`` sets every logger to DEBUG: importing them sets their
    loggers' levels (the KMS SDK's credential providers' to INFO), which would undo it."""
    import alibabacloud_kms20160120.client  # noqa: F401
    import hvac  # noqa: F401
    import oss2  # noqa: F401


def test_the_capture_sees_warnings_stderr_and_sdk_loggers_that_set_their_own_level(
    sdks_imported: None, debug_logs: Callable[..., str]
) -> None:
    """What ``debug_logs`` must see besides records of loggers left at their defaults: loggers a
    library set to INFO or CRITICAL itself, warnings (pytest keeps them for its summary) and bytes
    written to the standard streams or straight to fd 2."""
    probe = f"capture-probe-{uuid.uuid4().hex}"
    logging.getLogger("credentials").debug("%s credentials", probe)  # INFO by the KMS SDK's choice
    logging.getLogger("aliyunsdkcore.vendored.requests").debug("%s vendored", probe)  # CRITICAL by its own
    warnings.warn(f"{probe} warning (a capture probe: expected)", UserWarning, stacklevel=1)
    sys.stderr.write(f"{probe} stderr\n")
    os.write(2, f"{probe} fd2\n".encode())
    text = debug_logs()
    assert [
        where for where in ("credentials", "vendored", "warning", "stderr", "fd2") if f"{probe} {where}" not in text
    ] == []


def test_an_sts_token_the_kms_sdk_prints_at_debug_is_masked_by_airflow(
    sdks_imported: None,
    security_env: SecurityEnv,
    make_hook: Callable[..., Any],
    debug_logs: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Long-lived secrets stay masked. With ``DEBUG=sdk`` the KMS SDK prints every request header,
    the STS token (``x-acs-security-token``) among them, so this one does reach a log line; it is a
    connection extra Airflow masks when the connection is read, and ``redact`` removes it."""
    monkeypatch.setenv("DEBUG", "sdk")
    kms = security_env.kms
    access_key, secret = "LTAI-debug-sts", f"sts-secret-{uuid.uuid4().hex}"
    token = "CAIS" + base64.b64encode(os.urandom(60)).decode()
    kms.add_credential(access_key, secret, security_token=token)
    extra = {"region": kms.region, "endpoint": kms.endpoint, "protocol": "http", "security_token": token}
    connection = {"conn_type": "alicloud_kms", "login": access_key, "password": secret, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_KMS_DEBUG_STS", json.dumps(connection))
    hook = make_hook(f"kms://kms_debug_sts/{security_env.kms_alias}")
    hook.upload(iter([b"sts"]), "debug-leaks/sts")
    assert hook.read("debug-leaks/sts") == b"sts"
    logged = debug_logs()
    assert token in logged, "the KMS SDK no longer prints request headers at DEBUG: this test proves nothing"
    assert leaked(redact_text(logged), secret_forms(token, secret)) == []


def test_debug_logs_of_1000_objects_through_every_path_show_no_data_key_iv_or_secret(
    sdks_imported: None,
    security_env: SecurityEnv,
    make_hook: Callable[..., Any],
    debug_logs: Callable[..., str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fleet-size proof (see the module docstring): every path, every CMK kind, every logger."""
    monkeypatch.setenv("DEBUG", "sdk")  # the KMS SDK's own HTTP debug output (darabonba / Tea), on too
    run = uuid.uuid4().hex[:8]
    transit_key = f"osscse-debug-{run}"
    security_env.vault.secrets.transit.create_key(transit_key)
    transit_ref = f"vault-transit://vault_default/transit/{transit_key}"
    kms_target_alias = f"alias/debug-target-{run}"
    security_env.kms.create_key(alias=kms_target_alias)
    fleet = Fleet(_lanes(security_env, transit_ref, f"kms://kms_default/{kms_target_alias}"))
    (tmp_path / "downloads").mkdir()

    first = 0
    runs = []
    for lane in fleet.lanes:
        runs.append(_run_lane(lane, fleet, make_hook, f"debug-leaks/{run}/", tmp_path, first))
        first += lane.objects
    # Lanes run side by side, as a task's worker threads would (and faster on a loaded machine).
    with ThreadPoolExecutor(max_workers=LANE_THREADS) as pool:
        list(pool.map(next, runs))  # every lane writes ...
        security_env.vault.secrets.transit.rotate_key(transit_key)  # ... Transit rewraps then go v1 -> v2
        list(pool.map(lambda lane_run: deque(lane_run, maxlen=0), runs))  # ... then every other path

    logged = debug_logs()
    assert sum(len(lane.keys) for lane in fleet.lanes) == OBJECTS
    counts = fleet.counts()
    assert counts["multipart"] == len(fleet.lanes)
    assert all(counts[operation] >= 100 for operation in (*OPERATIONS, "inspect")), counts
    # The capture saw every stack, and the native rewraps ran: urllib3's request lines (OSS, and Vault's
    # Transit rewrap), oss2's request debug and the KMS SDK's own header dump (ReEncrypt among them).
    markers = (f'"PUT /{BUCKET}/debug-leaks%2F{run}%2F', '"POST /v1/transit/rewrap/', "Init request, method: ")
    for marker in (*markers, "x-acs-action : ReEncrypt"):
        assert marker in logged, f"no {marker!r} in the captured DEBUG output: the capture missed a logger"

    secrets = _stored_content_keys(security_env, fleet.wrapped_by)
    assert len(secrets) == 2 * len(fleet.wrapped_by) > 2 * OBJECTS
    logged += debug_logs(new_only=True)  # the test's own unwraps logged nothing either
    assert leaked_any(logged, secret_forms(*secrets)) == []
    assert leaked_any(logged, security_env.static_forms()) == []
