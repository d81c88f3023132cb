"""Many small objects (issue 13) and fleet rotation (issue 14), side by side in one run.

    .venv/bin/python bench/many_objects.py [--objects 2000] [--size 4K] [--threads 1,8] [--repeat 1]
        [--rows per-object,bulk,rotation,memory,latency,<tools>] [--json FILE]

Services run as their own processes (``bench/services.py``): the local OSS server with an on-disk
store, the local KMS server, OpenBao with a file audit log; every OSS request, KMS call and Vault call
is counted where it is served. Each measurement is a fresh client process
(``bench/many_objects_child.py``): one per (tool, threads) runs upload, read and download in turn, each
timed and counted on its own, as one task would (a process per direction would pay the Airflow import
three times). Imports, CMK set-up and one warm-up object come before any clock. Peak RSS: the child's
``ru_maxrss``. Tools are interleaved per thread count; ``--repeat`` gives best and median (ratios use
the best). A failed child is reported on stderr and its rows marked; the run goes on.

Sections (``--rows`` picks sections and/or tools):

``per-object``  objects/s for upload (from memory), read (``hook.read``: download to memory) and
                download (``hook.download``: to files) with 1 and 8 threads (a ThreadPoolExecutor-like
                pool calling the per-object API, one hook or bucket shared): plain oss2, oss2
                ``CryptoBucket`` + ``RsaProvider``, and ``EncryptedOSSHook`` with RSA, Transit,
                Transit + data-key cache, KMS, KMS + cache (the caches are write-side: uploads only)
``bulk``        the same through ``upload_many`` / ``read_many`` / ``download_many`` (``n/a`` until
                the API exists; ``many_objects_child.bulk_outcomes`` holds the call sites)
``rotation``    a Transit key rotated before each row, then: the floor (plain oss2 HEAD + one copy with
                REPLACE metadata), ``hook.rewrap`` in a loop, ``rewrap_many``, ``osscse rewrap
                oss://bench/rot/`` (a child process, timed spawn to exit: start-up included), and
                no-op re-runs (everything current)
``memory``      peak RSS of one process uploading then downloading N and 10·N objects (issue: ≤ 1.10)
``latency``     cached writes with the key service behind a relay adding 20 ms per request
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from many_objects_child import BULK_METHODS, child
from services import CountedServer, LatencyProxy, audit_offset, connections, spawn, vault_calls, write_rsa_key
from transfer_throughput import BUCKET, machine, parse_size

from airflow_provider_osscse.testing.openbao import OpenBaoServer

TOOLS = ("plain", "cryptobucket", "hook-rsa", "hook-transit", "hook-transit-cache", "hook-kms", "hook-kms-cache")
SECTIONS = ("per-object", "bulk", "rotation", "memory", "latency")
DIRECTIONS = ("upload", "read", "download")
TRANSIT_KEY, ROTATION_KEY, KMS_ALIAS = "bench", "bench-rot", "alias/bench"
LATENCY_S = 0.020
Spec = dict[str, Any]  # what a child is told to do (JSON)
RowKey = Callable[[str], tuple[str, ...]]  # operation -> the row its sample belongs to


@dataclass
class Sample:
    seconds: float
    objects: int
    peak_rss_kib: int  # the client process's peak so far (``ru_maxrss``)
    statuses: dict[str, int] = field(default_factory=dict)
    oss: dict[str, int] = field(default_factory=dict)  # requests the OSS server served, by operation
    kms: dict[str, int] = field(default_factory=dict)  # calls the KMS server served, by action
    vault: dict[str, int] = field(default_factory=dict)  # Vault calls, from OpenBao's audit log

    @property
    def rate(self) -> float:
        return self.objects / self.seconds


@dataclass
class Bench:
    """What every measurement needs: services, connections, options; and the samples so far."""

    args: argparse.Namespace
    key_file: str
    oss: CountedServer
    kms: CountedServer
    bao: OpenBaoServer
    audit_log: str
    env: dict[str, str]
    tools: list[str]
    threads: list[int]
    bulk: dict[str, bool]
    uploaded: set[str] = field(default_factory=set)  # prefixes holding --objects objects
    failed: set[tuple[str, ...]] = field(default_factory=set)  # rows whose child failed
    results: dict[tuple[str, ...], list[Sample]] = field(default_factory=dict)

    def spec(self, tool: str, ops: list[str], threads: int, prefix: str, mode: str = "each", **extra: Any) -> Spec:
        kind, cmk, cache = tool_cmk(tool, self.key_file, slow=extra.pop("slow", False))
        return {
            "tool": tool, "kind": kind, "cmk": cmk, "cache": cache, "ops": ops, "mode": mode, "threads": threads,
            "objects": extra.pop("objects", self.args.objects), "size": parse_size(self.args.size), "prefix": prefix,
            "endpoint": self.oss.url, "key_file": self.key_file, "oss_url": self.oss.url,
            "kms_url": self.kms.url, "audit_log": self.audit_log, **extra,
        }  # fmt: skip

    def run(self, spec: Spec, key: RowKey | None = None) -> list[Sample]:
        """One fresh child, a sample per operation (recorded under ``key(op)``); the last sample's
        peak RSS is the child's own from ``wait4``."""
        label = f"{spec['tool']} {spec['threads']} thr {spec['mode']} {','.join(spec['ops'])} {spec['prefix']}"
        _, peak, out, error = spawn([sys.executable, __file__, "--child", json.dumps(spec)], self.env, label)
        if error is not None:
            for row in (key(op) for op in spec["ops"]) if key is not None else ():
                self.failed.add(row)
                self.results.setdefault(row, [])
            return []
        reports = json.loads(out.strip().splitlines()[-1])
        samples = [Sample(objects=spec["objects"], **{k: v for k, v in r.items() if k != "op"}) for r in reports]
        samples[-1].peak_rss_kib = peak
        for report, sample in zip(reports, samples, strict=True):
            if key is not None:
                self.results.setdefault(key(report["op"]), []).append(sample)
        return samples

    def command(self, argv: list[str], objects: int, key: tuple[str, ...]) -> None:
        """A command (``osscse``) timed from spawn to exit, with what the servers counted meanwhile."""
        before = (self.oss.counts(), self.kms.counts(), audit_offset(self.audit_log))
        seconds, peak, out, error = spawn(argv, self.env, " ".join(argv[1:3]))
        if error is not None:
            self.failed.add(key)
            self.results.setdefault(key, [])
            return
        summary = out.strip().splitlines()[-1]  # "N rewrapped, N already current, N skipped, N failed"
        statuses = {part.split(" ", 1)[1]: int(part.split(" ", 1)[0]) for part in summary.split(", ")}
        sample = Sample(seconds, objects, peak, statuses, dict(self.oss.counts() - before[0]))
        sample.kms = dict(self.kms.counts() - before[1])
        sample.vault = dict(vault_calls(self.audit_log, before[2], audit_offset(self.audit_log)))
        self.results.setdefault(key, []).append(sample)


def by_op(section: str, threads: str, tool: str) -> RowKey:
    return lambda op: (section, op, threads, tool)


def fixed(*row: str) -> RowKey:
    return lambda _op: row


def tool_cmk(tool: str, key_file: str, *, slow: bool = False) -> tuple[str, str | None, bool]:
    """(child kind, CMK reference, data-key cache on) of a tool; ``slow``: through the latency relay."""
    if tool in ("plain", "cryptobucket"):
        return tool, None, False
    if "rsa" in tool:
        ref = f"rsa-file://{key_file}"
    elif "transit" in tool:
        name = ROTATION_KEY if tool.endswith("-rot") else TRANSIT_KEY
        ref = f"vault-transit://vault_{'slow' if slow else 'default'}/transit/{name}"
    else:
        ref = f"kms://kms_{'slow' if slow else 'default'}/{KMS_ALIAS}"
    return "hook", ref, tool.endswith("-cache")


# --------------------------------------------------------------------------- sections
def per_object(bench: Bench, mode: str) -> None:
    """A child per (tool, threads): upload, read, download in turn; tools interleaved per thread count."""
    section = "per-object" if mode == "each" else "bulk"
    tools = [t for t in bench.tools if mode == "each" or t.startswith("hook")]
    for _ in range(bench.args.repeat):
        for threads in bench.threads:
            for tool in tools:  # interleaved: drift in the machine's load hits every tool alike
                prefix = f"obj/{tool}"
                ops = ["upload"] if tool.endswith("-cache") else list(DIRECTIONS)  # the cache is write-side
                if mode == "bulk":
                    for op in ops:
                        bench.results.setdefault((section, op, str(threads), tool), [])  # n/a rows stay
                    ops = [op for op in ops if bench.bulk[op]]
                    if ops and ops[0] != "upload" and prefix not in bench.uploaded:
                        bench.run(bench.spec(tool, ["upload"], max(bench.threads), prefix))  # objects to read
                spec = bench.spec(tool, ops, threads, prefix, mode)
                if ops and bench.run(spec, by_op(section, str(threads), tool)):
                    bench.uploaded.add(prefix)


def rotation(bench: Bench) -> None:
    """Issue 14's rows: the key is rotated before each rewrap row, so every object is stale again."""
    args, top = bench.args, max(bench.threads)
    n = args.rotation_objects or min(1000, args.objects)
    ref = tool_cmk("hook-transit-rot", bench.key_file)[1] or ""
    transit = bench.bao.client().secrets.transit

    def run(tool: str, op: str, threads: int, row: str | None, mode: str = "each", rotate: bool = False) -> None:
        key = ("rotation", row or "", str(threads))
        if mode == "bulk" and not bench.bulk["rewrap"]:
            bench.results.setdefault(key, [])  # printed as n/a
            return
        if rotate:
            transit.rotate_key(ROTATION_KEY)
        spec = bench.spec(tool, [op], threads, "floor" if tool == "plain" else "rot", mode, objects=n)
        bench.run(spec, fixed(*key) if row else None)

    run("hook-transit-rot", "upload", top, None)  # the objects to rotate
    run("plain", "upload", top, None)  # the floor's objects
    osscse = str(Path(sys.executable).parent / "osscse")
    cli_help = subprocess.run([osscse, "rewrap", "--help"], check=True, env=bench.env, capture_output=True, text=True)
    flag = next((f for f in ("--concurrency", "--workers", "--threads") if f in cli_help.stdout), None)
    cli_threads = top if flag else 1
    cli = [osscse, "rewrap", f"oss://{BUCKET}/rot/", "--cmk", ref, *([flag, str(top)] if flag else [])]
    for _ in range(args.repeat):
        for threads in bench.threads:
            run("plain", "floor", threads, "floor: HEAD + copy")
        for threads in bench.threads:
            run("hook-transit-rot", "rewrap", threads, "hook.rewrap loop", rotate=True)
        for threads in bench.threads:
            run("hook-transit-rot", "rewrap", threads, "rewrap_many", "bulk", rotate=True)
        transit.rotate_key(ROTATION_KEY)
        bench.command(cli, n, ("rotation", "osscse rewrap (start-up incl.)", str(cli_threads)))
        bench.command(cli, n, ("rotation", "no-op: osscse rewrap", str(cli_threads)))
        run("hook-transit-rot", "rewrap", top, "no-op: hook.rewrap loop")
        run("hook-transit-rot", "rewrap", top, "no-op: rewrap_many", "bulk")


def memory(bench: Bench) -> None:
    """Peak RSS of one process uploading then downloading N objects, for N and 10·N (issue 13)."""
    base = min(1000, bench.args.objects)
    counts = [int(c) for c in (bench.args.memory_objects or f"{base},{10 * base}").split(",")]
    mode, ops = "bulk" if bench.bulk["upload"] and bench.bulk["download"] else "each", ["upload", "download"]
    for n in counts * bench.args.repeat:
        samples = bench.run(bench.spec("hook-rsa", ops, max(bench.threads), f"mem/{n}", mode, objects=n))
        if samples:  # else the child's failure is on stderr
            statuses = dict(sum((Counter(x.statuses) for x in samples), Counter()))
            total = Sample(sum(x.seconds for x in samples), 2 * n, samples[-1].peak_rss_kib, statuses)
            bench.results.setdefault(("memory", str(n), mode), []).append(total)


def latency(bench: Bench) -> None:
    """Cached writes at the top thread count, the key service behind the +20 ms relay (issue 14)."""
    top = max(bench.threads)
    for _ in range(bench.args.repeat):
        for tool in ("hook-transit-cache", "hook-kms-cache"):
            if tool in bench.tools:
                spec = bench.spec(tool, ["upload"], top, f"lat/{tool}", slow=True)
                bench.run(spec, fixed("latency", tool, str(top)))


# --------------------------------------------------------------------------- output
def key_calls(sample: Sample) -> int:
    return sum(sample.vault.values()) + sum(sample.kms.values())


def line(label: str, samples: list[Sample], *ratios: float | None, failed: bool = False) -> str:
    """best, median objects/s, peak RSS, OSS requests and key-service calls per object, ratios."""
    if not samples:
        return f"{label}{'FAILED (see stderr)' if failed else 'n/a (API missing)':>24}"
    rates = [s.rate for s in samples]
    first = samples[0]
    oss, calls = sum(first.oss.values()) / first.objects, key_calls(first) / first.objects
    rss = max(s.peak_rss_kib for s in samples) / 1024
    extra = "".join(f"{r:>9.2f}" if r else f"{'-':>9}" for r in ratios)
    return f"{label}{max(rates):>11.1f}{statistics.median(rates):>9.1f}{rss:>9.1f}{oss:>9.2f}{calls:>10.3f}{extra}"


def print_tables(bench: Bench) -> None:
    res = bench.results

    def best(key: tuple[str, ...]) -> float | None:
        return max((s.rate for s in res.get(key, [])), default=None)

    def ratio(key: tuple[str, ...], other: tuple[str, ...]) -> float | None:
        mine, theirs = best(key), best(other)
        return mine / theirs if mine and theirs and key != other else None

    head = f"{'best':>11}{'median':>9}{'RSS MiB':>9}{'OSS/obj':>9}"
    for section in ("per-object", "bulk"):
        order = {name: i for i, name in enumerate((*DIRECTIONS, *TOOLS))}
        rows = sorted((k for k in res if k[0] == section), key=lambda k: (order[k[1]], int(k[2]), order[k[3]]))
        if section == "bulk" and rows and not any(res[k] for k in rows) and not bench.failed & set(rows):
            missing = ", ".join(name for op, name in BULK_METHODS.items() if not bench.bulk[op])
            print(f"\n== {section}: n/a (API missing: {missing}) ==")
            continue
        if rows:
            print(f"\n== {section}: objects/s, {bench.args.objects} objects × {bench.args.size} ==")
            print(f"{'direction':<10}{'thr':>4}  {'tool':<20}{head}{'keys/obj':>10}{'vs CB':>9}{'vs plain':>9}"
                  f"{'vs loop':>9}")  # fmt: skip
        for key in rows:
            _, direction, threads, tool = key
            others = [("per-object", direction, threads, o) for o in ("cryptobucket", "plain", tool)]
            ratios = [ratio(key, o) for o in others[: 3 if section == "bulk" else 2]]
            print(line(f"{direction:<10}{threads:>4}  {tool:<20}", res[key], *ratios, failed=key in bench.failed))
    if rows := [k for k in res if k[0] == "rotation"]:
        n = next((res[k][0].objects for k in rows if res[k]), 0)
        print(f"\n== rotation: {n} objects under a rotated Transit key (vs floor: same threads) ==")
        print(f"{'row':<34}{'thr':>4}{head}{'Vault/obj':>10}{'vs floor':>9}")
        for key in rows:
            floor = ratio(key, ("rotation", "floor: HEAD + copy", key[2]))
            print(line(f"{key[1]:<34}{key[2]:>4}", res[key], floor, failed=key in bench.failed))
    if rows := [k for k in res if k[0] == "memory"]:
        print("\n== memory: one process uploads, then downloads, N objects (hook, RSA) ==")
        print(f"{'objects':>8}  {'API':<6}{'peak RSS MiB':>14}{'obj/s':>9}")
        peaks = {int(k[1]): max(s.peak_rss_kib for s in res[k]) / 1024 for k in rows}
        for key in rows:
            print(f"{key[1]:>8}  {key[2]:<6}{peaks[int(key[1])]:>14.1f}{best(key) or 0:>9.1f}")
        if len(peaks) > 1:
            print(f"ratio {max(peaks)}/{min(peaks)}: {peaks[max(peaks)] / peaks[min(peaks)]:.3f} (issue 13: <= 1.10)")
    if rows := [k for k in res if k[0] == "latency"]:
        print(f"\n== cached writes, key service behind +{LATENCY_S * 1000:.0f} ms per request ==")
        print(f"{'tool':<20}{'thr':>4}{'best obj/s':>11}{'calls/obj':>10}{'s':>8}{'bound s':>9}{'serial s':>9}")
        for key in (k for k in rows if res[k]):
            fast = min(res[key], key=lambda x: x.seconds)
            calls, n_threads = key_calls(fast), int(key[2])
            print(f"{key[1]:<20}{key[2]:>4}{fast.rate:>11.1f}{calls / fast.objects:>10.3f}{fast.seconds:>8.2f}"
                  f"{calls * LATENCY_S / n_threads:>9.2f}{calls * LATENCY_S:>9.2f}")  # fmt: skip
        print("(bound: calls × latency / threads, round trips overlapped; serial: one round trip at a time)")
    # Every object must have done what the row says (a no-op re-run finds all current; others succeed).
    want = {"no-op": ("already",), "rotation": ("rewrapped",), "": ("ok", "rewrapped")}
    for key, samples in res.items():
        expected = want["no-op" if key[1].startswith("no-op") else "rotation" if "rewrap" in key[1] else ""]
        for sample in samples:
            done = sum(n for status, n in sample.statuses.items() if status.startswith(expected))
            if done != sample.objects or sample.statuses.get("failed"):
                print(f"WARNING: {' '.join(key)}: {sample.statuses} for {sample.objects} objects")


def parse_rows(text: str) -> tuple[list[str], list[str]]:
    names = [n for n in text.split(",") if n]
    unknown = [n for n in names if n not in SECTIONS and n not in TOOLS]
    if unknown:
        raise SystemExit(f"--rows: unknown {unknown}; sections {SECTIONS}, tools {TOOLS}")
    sections = [s for s in SECTIONS if s in names] or list(SECTIONS)
    tools = [t for t in TOOLS if t in names] or list(TOOLS)
    return sections, tools


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--size", default="4K")
    parser.add_argument("--threads", default="1,8")
    parser.add_argument("--repeat", type=int, default=1, help="runs per row, interleaved (best and median)")
    parser.add_argument("--rows", default="", help=f"subset: sections {','.join(SECTIONS)} and/or tools")
    parser.add_argument("--rotation-objects", type=int, default=None, help="default: min(1000, --objects)")
    parser.add_argument("--memory-objects", default=None, help="default: N,10N with N = min(1000, --objects)")
    parser.add_argument("--dir", default=None, help="where the server's data dir and temp files go")
    parser.add_argument("--json", default=None, help="also write every sample here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    sections, tools = parse_rows(args.rows)
    threads = [int(t) for t in args.threads.split(",")]
    started = time.perf_counter()
    print(f"# {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}  {machine()}")
    print(f"# {args.objects} objects × {args.size}, threads {threads}, repeat {args.repeat}; local OSS (on-disk "
          f"store), KMS and OpenBao (audit log) are separate processes on the same {os.cpu_count()} cores")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="osscse-many-", dir=args.dir) as tmp:
        key_file = os.path.join(tmp, "cmk.pem")
        write_rsa_key(key_file)
        oss = CountedServer("oss", "--data-dir", os.path.join(tmp, "data"), "--bucket", BUCKET)
        kms = CountedServer("kms", "--create-key", KMS_ALIAS)
        audit_log = os.path.join(tmp, "bao-audit.log")
        bao = OpenBaoServer(audit_log=audit_log).start()
        proxies = [LatencyProxy(bao.address.split("://")[1], LATENCY_S), LatencyProxy(kms.host_port, LATENCY_S)]
        try:
            client = bao.client()
            client.sys.enable_secrets_engine("transit")
            for name in (TRANSIT_KEY, ROTATION_KEY):
                client.secrets.transit.create_key(name)
            env = {**os.environ, "AIRFLOW_HOME": os.path.join(tmp, "airflow-home"), "TMPDIR": tmp}  # all removed
            env.update(connections(oss.url, bao, kms.host_port))
            slow_bao = SimpleNamespace(address=f"http://{proxies[0].host_port}", root_token=bao.root_token)
            env.update(connections(oss.url, slow_bao, proxies[1].host_port, suffix="SLOW"))
            from airflow_provider_osscse.hooks.encrypted_oss_operations import EncryptedOSSOperations as Ops

            bulk = {op: hasattr(Ops, name) for op, name in BULK_METHODS.items()}  # on the class: no Airflow
            bench = Bench(args, key_file, oss, kms, bao, audit_log, env, tools, threads, bulk)
            api = ", ".join(f"{BULK_METHODS[op]} {'yes' if there else 'missing'}" for op, there in bench.bulk.items())
            print(f"# bulk API: {api}")
            for section in sections:
                if section in ("per-object", "bulk"):
                    per_object(bench, "each" if section == "per-object" else "bulk")
                else:
                    {"rotation": rotation, "memory": memory, "latency": latency}[section](bench)
        finally:
            for proxy in proxies:
                proxy.stop()
            bao.stop()
            kms.stop()
            oss.stop()
    print_tables(bench)
    print(f"\n# total {time.perf_counter() - started:.0f} s")
    if args.json:
        rows = [
            {"key": list(k), "samples": [{**s.__dict__, "rate": s.rate} for s in v]} for k, v in bench.results.items()
        ]
        Path(args.json).write_text(json.dumps({"machine": machine(), "args": vars(args), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
