"""Find secrets in what a deployment wrote: raw bytes, hex and base64 forms, at every byte alignment.

Why a scanner of its own rather than ``grep``: a data key is 32 random bytes that a careless log line
would print as hex, base64 or base64url, padded or not, and a serialiser could bury it inside a larger
base64 blob, where its text depends on its offset modulo 3. :func:`encodings` derives every such
form (the *core* of the base64 text at each alignment, the characters that depend on the secret
alone), and :class:`LeakScanner` looks for all of them at once.

The search indexes every 8-byte window of every needle and probes the haystack only at offsets that
are multiples of 8: any occurrence of a needle of 15 bytes or more covers one such aligned window, so
nothing is missed and the cost does not grow with the number of needles (hundreds of data keys times
a dozen forms each). Findings name the secret by its label, the encoding and the place, never by value.

What the deployment wrote comes from :func:`files_under` (task and component logs, the Airflow home),
:func:`dump_metadata_db` (``pg_dump``, or SQLite's ``iterdump``), :func:`xcom_values` (the REST API)
and :func:`redis_dump` (a Celery broker on Redis).
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Bytes per indexed window (one machine word: the haystack is read as 64-bit integers); needles
#: shorter than ``2 * GRAM - 1`` are searched one by one instead.
GRAM = 8
#: Files are read in chunks of this size (a multiple of GRAM), overlapping by the longest needle.
CHUNK = 8 << 20


@dataclass(frozen=True)
class Secret:
    """One value that must not appear; ``label`` says what it is (an object key, a service), never its value."""

    kind: str
    label: str
    value: bytes = field(repr=False)


@dataclass(frozen=True)
class Finding:
    """Where a secret was found, in a form safe to print: its kind, label and encoding, never its value."""

    source: str
    offset: int
    secret: Secret
    encoding: str

    def __str__(self) -> str:
        return f"{self.secret.kind} ({self.secret.label}) as {self.encoding} in {self.source} at byte {self.offset}"


def base64_core(value: bytes, shift: int, encode: Callable[[bytes], bytes] = base64.b64encode) -> bytes:
    """The base64 characters that depend on ``value`` alone when it starts ``shift`` bytes (mod 3) into a
    larger encoded blob: the first characters mix in the preceding bytes, the last ones the following."""
    text = encode(b"\0" * shift + value)
    first = -(-8 * shift // 6)  # the first character made only of the value's bits
    end = 8 * (shift + len(value)) // 6  # past the last character made only of the value's bits
    return text[first:end]


def encodings(value: bytes) -> dict[str, bytes]:
    """Every form of ``value`` the scan looks for, by name (forms equal to an earlier one are dropped)."""
    forms: dict[str, bytes] = {"raw": value, "hex": value.hex().encode(), "HEX": value.hex().upper().encode()}
    for name, encode in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
        whole = encode(value)
        forms[f"{name} padded"] = whole
        forms[f"{name} unpadded"] = whole.rstrip(b"=")
        for shift in (0, 1, 2):
            forms[f"{name} inside a larger blob (offset {shift} mod 3)"] = base64_core(value, shift, encode)
        forms[f"{name} percent-encoded"] = urllib.parse.quote(whole.decode(), safe="").encode()
    unique: dict[str, bytes] = {}
    for name, form in forms.items():
        if form and form not in unique.values():
            unique[name] = form
    return unique


def _index(words: list[int], word: int, start: int) -> int:
    try:
        return words.index(word, start)
    except ValueError:
        return -1


def raw_only(value: bytes) -> dict[str, bytes]:
    """The forms of a canary (a public value that must be found): itself only."""
    return {"raw": value}


@dataclass
class Tally:
    items: int = 0
    size: int = 0


class LeakScanner:
    """Looks for every form of every secret in each haystack it is given, and counts what it read."""

    def __init__(self, secrets: Iterable[Secret], forms: Callable[[bytes], Mapping[str, bytes]] = encodings) -> None:
        unique: dict[bytes, Secret] = {}
        for secret in secrets:  # the same value from two sources (a fixture, a connection): looked for once
            unique.setdefault(secret.value, secret)
        self.secrets = list(unique.values())
        self._needles: dict[bytes, list[tuple[Secret, str]]] = {}
        for secret in self.secrets:
            for name, needle in forms(secret.value).items():
                self._needles.setdefault(needle, []).append((secret, name))
        self._windows: dict[bytes, set[tuple[int, int]]] = {}
        self._short: list[bytes] = []
        for needle in self._needles:
            if len(needle) < 2 * GRAM - 1:
                self._short.append(needle)
                continue
            for offset in range(len(needle) - GRAM + 1):
                self._windows.setdefault(needle[offset : offset + GRAM], set()).add((offset, len(needle)))
        self._words = {int.from_bytes(window, sys.byteorder) for window in self._windows}
        self.longest = max((len(n) for n in self._needles), default=0)
        self.tally: dict[str, Tally] = {}

    @property
    def needle_count(self) -> int:
        return len(self._needles)

    def scan(self, category: str, source: str, data: bytes, *, base: int = 0, count: bool = True) -> list[Finding]:
        """Every occurrence of a needle in ``data`` (``base``: the offset of ``data`` in its source)."""
        if count:
            tally = self.tally.setdefault(category, Tally())
            tally.items += 1
            tally.size += len(data)
        windows, needles = self._windows, self._needles
        found: dict[tuple[int, bytes], None] = {}
        # Every aligned window as one integer, in C: a Python loop over 8-byte slices is ~5x slower.
        words = memoryview(data)[: len(data) - len(data) % GRAM].cast("Q").tolist()
        for word in self._words.intersection(words):
            window = word.to_bytes(GRAM, sys.byteorder)
            index = -1
            while (index := _index(words, word, index + 1)) != -1:
                for offset, length in windows[window]:
                    start = index * GRAM - offset
                    if start >= 0 and data[start : start + length] in needles:
                        found[(start, data[start : start + length])] = None
        for needle in self._short:
            start = data.find(needle)
            while start != -1:
                found[(start, needle)] = None
                start = data.find(needle, start + 1)
        return [
            Finding(source, base + start, secret, name)
            for start, needle in sorted(found, key=lambda f: f[0])
            for secret, name in needles[needle]
        ]

    def scan_file(self, category: str, path: Path) -> list[Finding]:
        """A file in chunks (overlapping by the longest needle, so a secret across a boundary is found)."""
        tally = self.tally.setdefault(category, Tally())
        tally.items += 1
        overlap = -(-self.longest // GRAM) * GRAM
        findings: dict[tuple[int, str, str], Finding] = {}
        with path.open("rb") as stream:
            base, carry = 0, b""
            while chunk := stream.read(CHUNK):
                tally.size += len(chunk)
                data = carry + chunk
                for finding in self.scan(category, str(path), data, base=base, count=False):
                    findings[(finding.offset, finding.secret.label, finding.encoding)] = finding
                keep = min(overlap, len(data))
                carry, base = data[len(data) - keep :], base + len(data) - keep
        return list(findings.values())

    def found_labels(self, findings: Iterable[Finding]) -> set[str]:
        return {f.secret.label for f in findings}

    def summary(self) -> str:
        """What was read, per category: ``task logs: 123 files, 4.5 MB``."""
        lines = [f"  {name}: {t.items} item(s), {t.size:,} bytes" for name, t in sorted(self.tally.items())]
        items, size = sum(t.items for t in self.tally.values()), sum(t.size for t in self.tally.values())
        return "\n".join([*lines, f"  in all: {items} item(s), {size:,} bytes"])


# -- what the deployment wrote -------------------------------------------------------------------------


def files_under(*roots: Path) -> Iterator[Path]:
    """Every regular file below ``roots`` (symlinks not followed), once, in a stable order."""
    seen: set[Path] = set()
    for root in roots:
        if not root.exists():
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink() and path not in seen:
                seen.add(path)
                yield path


def postgres_binary(name: str) -> str:
    """A PostgreSQL client next to the ``initdb`` the tests use (a dump needs a ``pg_dump`` at least as
    new as the server): ``initdb`` on PATH resolved, else the newest ``/usr/lib/postgresql/*/bin``."""
    initdb = shutil.which("initdb")
    candidates = [Path(initdb).resolve().parent / name] if initdb else []
    candidates += sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]))[::-1]
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"no {name} found next to initdb or under /usr/lib/postgresql; install PostgreSQL")
    return found


def dump_metadata_db(sql_alchemy_conn: str, timeout: float = 120) -> bytes:
    """The whole metadata DB as SQL text: ``pg_dump`` for PostgreSQL, ``iterdump`` for SQLite."""
    from sqlalchemy.engine import make_url

    url = make_url(sql_alchemy_conn)
    dialect = url.get_backend_name()
    if dialect == "sqlite":
        path = Path(url.database or "").resolve()
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
            return "\n".join(db.iterdump()).encode("utf-8", "surrogateescape")
    if dialect == "postgresql":
        # libpq takes the URL without SQLAlchemy's +driver
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        dump = subprocess.run(
            [postgres_binary("pg_dump"), "--no-owner", "--no-privileges", f"--dbname={dsn}"],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if dump.returncode != 0:
            raise RuntimeError(f"pg_dump exited {dump.returncode}: {dump.stderr.decode(errors='replace')[-2000:]}")
        return dump.stdout
    raise ValueError(f"no dump for a {dialect!r} metadata DB; the leak scan knows PostgreSQL and SQLite")


def service_log_files(port: int) -> list[Path]:
    """The log files of the server listening on ``port`` (PostgreSQL, Redis), found through the process:
    ``*.log`` in its working directory (PostgreSQL: the data directory; Redis: its ``--dir``), in a
    ``log``/``pg_log`` folder below it and, for a PostgreSQL data directory, in the folder above it.
    Empty if no such process is visible."""
    import psutil

    try:
        pids = {c.pid for c in psutil.net_connections("tcp") if c.laddr and c.laddr.port == port and c.pid}
    except psutil.AccessDenied:
        return []
    found: list[Path] = []
    for pid in sorted(pids):
        try:
            cwd = Path(psutil.Process(pid).cwd())
        except (psutil.Error, OSError):
            continue
        folders = [cwd, cwd / "log", cwd / "pg_log"]
        if (cwd / "PG_VERSION").exists() and cwd.parent != Path(tempfile.gettempdir()):
            folders.append(cwd.parent)  # ``pg_ctl -l`` beside the data directory, as the tests' clusters do
        for folder in folders:
            found += sorted(p for p in folder.glob("*.log") if p.is_file() and p not in found)
    return found


def _get(api_url: str, path: str, timeout: float = 30) -> bytes:
    request = urllib.request.Request(api_url + path, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return bytes(response.read())


def xcom_values(api_url: str, page: int = 100) -> Iterator[tuple[str, bytes]]:
    """(``dag.run.task[map_index].key``, the REST API's JSON answer) for every XCom entry of every run.

    The list endpoint (``~`` for every DAG, run and task) names the entries; each value is then read at
    ``/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}``, as stored
    (``deserialize=false``) and as the UI shows it (``deserialize=true``)."""
    offset = 0
    while True:
        listing = json.loads(
            _get(api_url, f"/api/v2/dags/~/dagRuns/~/taskInstances/~/xcomEntries?limit={page}&offset={offset}")
        )
        entries: list[dict[str, Any]] = listing["xcom_entries"]
        for entry in entries:
            quoted = [urllib.parse.quote(str(entry[k]), safe="") for k in ("dag_id", "run_id", "task_id", "key")]
            path = "/api/v2/dags/{}/dagRuns/{}/taskInstances/{}/xcomEntries/{}".format(*quoted)
            name = f"{entry['dag_id']}.{entry['run_id']}.{entry['task_id']}[{entry['map_index']}].{entry['key']}"
            for deserialize in ("false", "true"):
                yield name, _get(api_url, f"{path}?map_index={entry['map_index']}&deserialize={deserialize}")
        offset += len(entries)
        if not entries or offset >= listing["total_entries"]:
            return


def redis_dump(url: str) -> bytes:
    """Every key and value of a Redis database (a Celery broker or result backend), as one blob."""
    import redis

    client: Any = redis.Redis.from_url(url)  # redis-py's types mix its sync and async answers
    parts: list[bytes] = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        parts.append(key)
        values: Any = []
        if kind == b"string":
            values = [client.get(key) or b""]
        elif kind == b"list":
            values = client.lrange(key, 0, -1)
        elif kind == b"hash":
            values = [part for pair in client.hgetall(key).items() for part in pair]
        elif kind == b"set":
            values = client.smembers(key)
        elif kind == b"zset":
            values = client.zrange(key, 0, -1)
        parts.extend(values)
    client.close()
    return b"\n".join(parts)


def connection_secrets(conn_id: str, connection: Mapping[str, Any]) -> list[Secret]:
    """The secret fields of one Airflow connection (its JSON form): the password, and every ``extra``
    whose name says secret, token or password (the OSS ``access_key_secret``, a Vault token...)."""
    found = []
    password = connection.get("password")
    if isinstance(password, str) and password:
        found.append(
            Secret(f"connection {connection.get('conn_type')} password", f"{conn_id}.password", password.encode())
        )
    extra = connection.get("extra") or {}
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except ValueError:
            extra = {}
    for name, value in dict(extra).items():
        if isinstance(value, str) and value and any(w in name.lower() for w in ("secret", "token", "password")):
            found.append(Secret(f"connection extra {name}", f"{conn_id}.extra.{name}", value.encode()))
    return found
