"""Memory benchmark: RSS of a real ``ledger serve`` before, during and after rounds of maximum-size requests.

Starts ``ledger serve`` on a free loopback port in a temporary LEDGER_HOME (its own embedded PostgreSQL),
sends ``--rounds`` rounds of ``--concurrency`` concurrent POSTs of each body kind, samples the server's RSS
every 20 ms, and records RSS before the first round, the peak during each round and RSS after each round
(once the server is idle again). Everything is removed afterwards except the JSON result.

    python benchmarks/bench_memory.py                         # 3 rounds x 8 concurrent, every body kind
    python benchmarks/bench_memory.py --rounds 2 --concurrency 4 --kinds empty-objects

Body kinds, each as close to the body limit (LEDGER_MAX_BODY_BYTES, default 16 MiB) as the kind allows:
  empty-objects  a batch of ``{}``: the worst JSON amplification (millions of items), refused with 422
                 after the array is split, before any item is parsed (a batch holds at most 5,000 events)
  events         the most a batch may hold: 5,000 valid synthetic events padded with extension attributes
                 to the body limit, recorded (201)
  oversize       a body four times the limit, refused with 413 before it is read
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_ingest import machine_info, publish  # noqa: E402
from ledger.domain.fields import MAX_BATCH_EVENTS, MAX_EXTENSION_LENGTH, MAX_EXTENSIONS  # noqa: E402

MiB = 1024 * 1024
KINDS = ("empty-objects", "events", "oversize")
LEDGER = Path(sys.executable).with_name("ledger")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    """Resident set size of ``pid`` in MiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Sampler:
    """Samples a process's RSS in a thread; ``peak()`` since the last ``reset()``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            with contextlib.suppress(OSError, ValueError):
                self._peak = max(self._peak, rss_mib(self.pid))

    def reset(self) -> None:
        self._peak = rss_mib(self.pid)

    def peak(self) -> float:
        return self._peak

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def ledger_serve(home: Path, env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A real ``ledger serve`` in ``home``; yields the process and its base URL."""
    port = free_port()
    log = (home / "serve.log").open("wb")
    proc = subprocess.Popen([str(LEDGER), "serve", "--port", str(port)], env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # the first start initialises the embedded PostgreSQL
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"ledger serve exited {proc.returncode}; see {home / 'serve.log'}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("ledger serve did not answer /health within 120 s")
            time.sleep(0.2)
        yield proc, url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def body_of(kind: str, limit: int, tenant: str, nonce: int) -> bytes:
    """The request body of ``kind`` (see the module docstring)."""
    if kind == "empty-objects":
        count = (limit - 2) // 3
        return b"[" + b",".join([b"{}"] * count) + b"]"
    if kind == "oversize":
        return b" " * (4 * limit)
    from ledger.synth.project import generate

    # The most events a batch may hold, each padded with extension attributes (at most 2,048 characters
    # each) so that the batch comes as close to the body limit as the rules allow.
    per_event = (limit - 1024) // MAX_BATCH_EVENTS - 1
    events: list[bytes] = []
    for raw in generate(tenant=tenant, events=MAX_BATCH_EVENTS, seed=nonce):
        raw["id"] = f"{raw['id']}-m{nonce}"
        room = per_event - len(json.dumps(raw).encode())
        for i in range(MAX_EXTENSIONS):
            take = min(room - 12, MAX_EXTENSION_LENGTH)  # 12: the quotes, colon and comma of `"padN":"…",`
            if take <= 0:
                break
            raw[f"pad{i}"] = "x" * take
            room -= take + 12
        events.append(json.dumps(raw).encode())
    return b"[" + b",".join(events) + b"]"


def one_round(url: str, token: str, bodies: list[bytes]) -> dict[int, int]:
    """Post every body at once; the count of each status answered."""
    headers = {"authorization": f"Bearer {token}", "content-type": "application/cloudevents-batch+json"}

    def post(body: bytes) -> int:
        with httpx.Client(timeout=600) as http:
            try:
                return http.post(f"{url}/v1/events", content=body, headers=headers).status_code
            except httpx.HTTPError:
                return -1  # e.g. the server closed a 413 connection before reading the body

    with ThreadPoolExecutor(len(bodies)) as pool:
        statuses = list(pool.map(post, bodies))
    return {s: statuses.count(s) for s in sorted(set(statuses))}


def settle(pid: int, url: str, timeout: float = 300.0) -> float:
    """RSS once it has stopped moving: unchanged (within 1 MiB) over five readings 2 s apart, each after
    /health answered. After a large request the server collects garbage and trims its heap; the
    collection holds the interpreter, so /health answering means it is done."""
    deadline = time.monotonic() + timeout
    readings: list[float] = []
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(f"{url}/health", timeout=120)
        readings = [*readings[-4:], rss_mib(pid)]
        if len(readings) == 5 and max(readings) - min(readings) < 1.0:
            break
        time.sleep(2.0)
    return round(readings[-1], 1)


def run(rounds: int, concurrency: int, kinds: list[str], limit: int) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="ledger-bench-memory-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update({"LEDGER_HOME": str(home), "LEDGER_MAX_BODY_BYTES": str(limit)})
    try:
        token = subprocess.run(
            [str(LEDGER), "token", "--role", "ingest", "--tenant", "bench", "--ttl", "3600"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        with ledger_serve(home, env) as (proc, url):
            sampler = Sampler(proc.pid)
            before = settle(proc.pid, url)
            print(f"ledger serve pid {proc.pid} on {url}: {before} MiB before the first round")
            results = []
            for kind in kinds:
                for r in range(rounds):
                    bodies = [body_of(kind, limit, "bench", 1000 * r + i) for i in range(concurrency)]
                    sampler.reset()
                    started = time.monotonic()
                    statuses = one_round(url, token, bodies)
                    elapsed = time.monotonic() - started
                    del bodies
                    after = settle(proc.pid, url)
                    row = {
                        "kind": kind,
                        "round": r + 1,
                        "body_mib": round(len(body_of(kind, limit, "bench", 0)) / MiB, 1),
                        "statuses": statuses,
                        "seconds": round(elapsed, 1),
                        "peak_rss_mib": round(sampler.peak(), 1),
                        "rss_after_mib": after,
                    }
                    results.append(row)
                    print(
                        f"{kind:14} round {r + 1}: statuses {statuses}, {elapsed:5.1f} s, "
                        f"peak {row['peak_rss_mib']:7.1f} MiB, after {after:7.1f} MiB"
                    )
            sampler.stop()
            final = settle(proc.pid, url)
        return {
            "benchmark": "memory",
            "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "machine": machine_info("embedded"),
            "body_limit_mib": limit / MiB,
            "concurrency": concurrency,
            "rss_before_mib": before,
            "rounds": results,
            "rss_final_mib": final,
        }
    finally:
        shutil.rmtree(home, ignore_errors=True)


def render(result: dict[str, Any]) -> str:
    lines = [
        f"RSS of ledger serve (MiB), body limit {result['body_limit_mib']:g} MiB, "
        f"{result['concurrency']} concurrent requests per round",
        f"before: {result['rss_before_mib']}",
        f"{'kind':14} {'round':>5} {'body MiB':>8} {'peak':>8} {'after':>8}  statuses",
    ]
    for row in result["rounds"]:
        lines.append(
            f"{row['kind']:14} {row['round']:>5} {row['body_mib']:>8} {row['peak_rss_mib']:>8} "
            f"{row['rss_after_mib']:>8}  {row['statuses']}"
        )
    lines.append(f"final (idle): {result['rss_final_mib']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--limit-mib", type=float, default=16, help="LEDGER_MAX_BODY_BYTES in MiB")
    parser.add_argument("--json", type=Path, help="default benchmarks/results/memory-<UTC date>.json")
    args = parser.parse_args(argv)
    result = run(args.rounds, args.concurrency, args.kinds, int(args.limit_mib * MiB))
    path = args.json or ROOT / "benchmarks" / "results" / f"memory-{datetime.now(UTC):%Y-%m-%d}.json"
    publish(render(result), result, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
