"""Webhook intake on this machine: gunicorn, PostgreSQL and Redis, ours next to a naive handler.

What is measured, for each of two apps served by the same gunicorn settings:

* **ours**: ``entrypoints.wsgi:create_app()``: ``POST /webhooks/shopify`` verifies, stores the
  delivery durably in ``webhook_deliveries`` (one INSERT, one commit), triggers a worker with
  one Redis ``SET NX`` and answers; processing happens later in a worker (none runs here).
* **naive**: ``bench/naive_app.py``: verifies, opens a database connection, stores *and
  processes* the order inline, commits, answers (see its docstring).

Load, from processes separate from the server's (``wrk`` when installed, else Python):

1. warm-up: a short closed loop, not reported;
2. **steady 100/s**: an open loop at a constant rate (Python, always: ``wrk`` cannot hold a
   rate); latency from each request's scheduled send time (no coordinated omission);
   achieved rate = accepted answers / the time from the first scheduled send to the last
   answer (at least the scheduled span);
3. **sweep**: closed loops at 1, 2, 4, ... connections, a few seconds each. The **knee** is the
   level with the highest throughput whose p99 stays within :data:`KNEE_P99_BOUND_MS` with no
   error. Throughput = accepted answers per second of wall time.

After every run the inbox table is checked: every webhook answered 200 "accepted" must be in it
(by id with the Python generator; by count with ``wrk``, which cannot report ids).

Every run also reports the CPU milliseconds per webhook spent by gunicorn, PostgreSQL, Redis and
the generator (from /proc), and the share of the machine other processes took meanwhile: on a
shared machine the rates drop, the CPU per webhook does not, so a warning says when the rates
were measured with company.

gunicorn: ``--workers`` defaults to 2 × cores + 1 threaded workers (gthread, 4 threads), what
``ambassador serve`` runs in production (sync workers let an idle keep-alive connection hold a
whole worker). Intake is short and CPU-bound with a few millisecond-long waits (the commit's
fsync, Redis); ``--worker-class sync`` is there to compare (one run each, 2026-12-03, 2 cores:
gthread 953 webhooks/s at the knee, sync 731).

The bench is self-contained: it creates a fresh database (``ambassador_bench_<pid>``), migrates
it with ``ambassador migrate``, uses a Redis database index of its own (flushed before and
after), starts gunicorn on a free loopback port, and drops everything at the end. It prints one
table and writes it as Markdown to ``bench/results/webhook_intake.md``.

    .venv/bin/python bench/webhook_intake.py            # about 2.5 minutes
    .venv/bin/python bench/webhook_intake.py --quick    # about 30 seconds
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: make ``bench`` importable like the app's packages

from bench import loadgen  # noqa: E402
from bench.common import (  # noqa: E402
    CLK_TCK,
    HEADINGS,
    RESULTS,
    VENV_BIN,
    bench_redis,
    create_database,
    drop_database,
    idle_check,
    machine_cpu,
    migrate,
    render_text,
    write_json,
)
from bench.common import gunicorn as _gunicorn  # noqa: E402
from bench.common import libpq as _libpq  # noqa: E402
from bench.naive_app import SCHEMA as NAIVE_SCHEMA  # noqa: E402
from bench.naive_app import TABLE as NAIVE_TABLE  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "shopify" / "order_with_discount_code_TENOFF.json"

TOPIC = "orders/create"
SHOP = "ambassador-bench.myshopify.com"
API_VERSION = "2026-07"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
#: Database 13: not the app's default (0) nor the tests' (14). Flushed before and after.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"

STEADY_RATE = 100.0  # webhooks/s: the "steady 100/s"
#: The knee: the best throughput whose p99 stays within this bound (and without errors).
KNEE_P99_BOUND_MS = 250.0
# The targets for ours.
TARGET_KNEE_RATE = 800.0  # webhooks/s at the knee
TARGET_STEADY_P99_MS = 100.0
#: "Holds 100/s": the achieved rate may fall short of the offered one by scheduling jitter only.
STEADY_RATE_TOLERANCE = 0.99

#: Other processes' share of the machine worth a note on a run, and a warning on the results.
OTHER_LOAD_NOTE = 0.05
OTHER_LOAD_WARN = 0.10
PAUSE_S = 0.5  # between runs: lets the server drain in-flight work and PostgreSQL settle
#: Lines of gunicorn's (and the app's) log worth reporting: the app logs problems at WARNING+.
SERVER_LOG_PROBLEM = re.compile(r"Traceback|\bWARNING\b|\bERROR\b|\bCRITICAL\b")


@dataclass(frozen=True)
class Plan:
    """Durations and sizes of one benchmark run (``--quick`` or full)."""

    name: str
    warmup_s: int
    steady_s: float
    level_s: int
    levels: tuple[int, ...]
    max_requests_per_level: int  # a hard bound on each sweep level, far above what 2 cores do

    @classmethod
    def full(cls) -> Plan:
        # 20 s at 100/s: 2,000 samples, so the p99 rests on the 20 slowest, not on one.
        return cls("full", 2, 20.0, 5, (1, 2, 4, 8, 16, 32), 25_000)

    @classmethod
    def quick(cls) -> Plan:
        return cls("quick", 1, 5.0, 2, (1, 4, 16), 10_000)


@dataclass(frozen=True)
class AppSpec:
    name: str
    wsgi: str  # gunicorn's APP_MODULE
    count_sql: str  # stored rows among the ids %s (a list)
    count_prefix_sql: str  # stored rows whose id matches the LIKE pattern %s


OURS = AppSpec(
    "ours",
    "entrypoints.wsgi:create_app()",
    "SELECT count(DISTINCT webhook_id) FROM webhook_deliveries"
    f" WHERE topic = '{TOPIC}' AND webhook_id = ANY(%s)",
    f"SELECT count(*) FROM webhook_deliveries WHERE topic = '{TOPIC}' AND webhook_id LIKE %s",
)
NAIVE = AppSpec(
    "naive",
    "bench.naive_app:create_app()",
    f"SELECT count(DISTINCT webhook_id) FROM {NAIVE_TABLE}"
    " WHERE status = 'processed' AND webhook_id = ANY(%s)",
    f"SELECT count(*) FROM {NAIVE_TABLE} WHERE status = 'processed' AND webhook_id LIKE %s",
)


@dataclass(frozen=True)
class ServerConfig:
    workers: int
    worker_class: str
    threads: int

    def describe(self) -> str:
        threads = f", {self.threads} threads each" if self.worker_class == "gthread" else ""
        return f"{self.workers} × {self.worker_class}{threads}"

    def args(self) -> list[str]:
        extra = ["--threads", str(self.threads)] if self.worker_class == "gthread" else []
        return ["-w", str(self.workers), "-k", self.worker_class, *extra]


@dataclass
class AppResult:
    app: AppSpec
    steady: loadgen.Run
    sweep: list[loadgen.Run] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)

    @property
    def knee(self) -> loadgen.Run | None:
        ok = [
            r
            for r in self.sweep
            if r.errors == 0 and r.p99_ms is not None and r.p99_ms <= KNEE_P99_BOUND_MS
        ]
        return max(ok, key=lambda r: r.throughput, default=None)

    @property
    def runs(self) -> list[loadgen.Run]:
        return [self.steady, *self.sweep]


# --- CPU accounting from /proc -----------------------------------------------------------------

#: A PostgreSQL client backend's process title names its client: "... 127.0.0.1(5432) idle".
PG_CLIENT_BACKEND = re.compile(r"\(\d+\) |\[local\]")


@dataclass(frozen=True)
class CpuProbe:
    """CPU seconds spent by the bench's components, read from /proc (Linux).

    ``web``: the gunicorn master and its workers; ``postgres``: the server's shared processes and
    the backends of the bench database (not other databases' backends; backends that ended count
    in the postmaster, whoever they served); ``redis``; ``machine``: everything, so that
    ``machine`` minus the components is what *other* processes took from the benchmark.
    """

    gunicorn_pid: int
    dbname: str

    def sample(self) -> dict[str, float]:
        totals = {"web": 0.0, "postgres": 0.0, "redis": 0.0}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                raw = Path(entry.path, "stat").read_text()
                comm = raw[raw.index("(") + 1 : raw.rindex(")")]
                if comm.startswith("postgres") and self._other_backend(entry.path):
                    continue
            except OSError:  # the process ended meanwhile
                continue
            fields = raw[raw.rindex(")") + 2 :].split()
            pid, ppid = int(entry.name), int(fields[1])
            # utime, stime, cutime, cstime: fields 14-17 of proc(5); children that ended count
            # in their parent (PostgreSQL's per-connection backends in the postmaster).
            seconds = sum(int(x) for x in fields[11:15]) / CLK_TCK
            if self.gunicorn_pid in (pid, ppid):
                totals["web"] += seconds
            elif comm.startswith("postgres"):
                totals["postgres"] += seconds
            elif comm.startswith("redis-server"):
                totals["redis"] += seconds
        totals["machine"] = machine_cpu()[0]
        return totals

    def _other_backend(self, proc_dir: str) -> bool:
        title = Path(proc_dir, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        return bool(PG_CLIENT_BACKEND.search(title)) and self.dbname not in title

    def measured(self, load: Callable[[], loadgen.Run]) -> loadgen.Run:
        """Run ``load``; attach the CPU seconds each component spent meanwhile to its result,
        and the share of the machine that other processes took (``other``)."""
        before, t0 = self.sample(), time.monotonic()
        run = load()
        after, wall = self.sample(), time.monotonic() - t0
        cpu = {k: after[k] - before[k] for k in ("web", "postgres", "redis")}
        cpu["gen"] = run.gen_cpu_s
        run.extra["cpu_s"] = cpu
        other = after["machine"] - before["machine"] - sum(cpu.values())
        run.extra["other"] = max(0.0, other) / (wall * (os.cpu_count() or 1))
        return run


# --- services ----------------------------------------------------------------------------------


@contextmanager
def bench_database(admin_url: str) -> Iterator[str]:
    """A fresh database for this run, migrated and with the naive table; dropped at the end."""
    name = f"ambassador_bench_{os.getpid()}"
    url = create_database(admin_url, name)
    try:
        migrate(url)
        with psycopg.connect(url) as conn:
            conn.execute(NAIVE_SCHEMA)
        yield url
    finally:
        drop_database(admin_url, name)


@contextmanager
def gunicorn(
    app: AppSpec, config: ServerConfig, env: dict[str, str], logdir: Path
) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    """gunicorn serving ``app`` on a free loopback port, answering ``/healthz`` 200."""
    with _gunicorn(app.name, app.wsgi, config.args(), env, logdir) as served:
        yield served


# --- the runs ----------------------------------------------------------------------------------


def signed_target(port: int, secret: str) -> loadgen.Target:
    order = json.loads(FIXTURE.read_text())["order"]
    body = json.dumps(order, separators=(",", ":")).encode()
    signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": TOPIC,
        "X-Shopify-Hmac-Sha256": signature.decode(),
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-API-Version": API_VERSION,
        "X-Shopify-Triggered-At": "2026-07-01T12:00:00.000000000Z",
    }
    return loadgen.Target("127.0.0.1", port, body, headers)


def verify_stored(db_url: str, app: AppSpec, run: loadgen.Run) -> None:
    """Count the accepted webhooks of ``run`` that are in the app's inbox table."""
    with psycopg.connect(db_url) as conn:
        if run.accepted_ids is not None:
            row = conn.execute(app.count_sql, (run.accepted_ids,)).fetchone()
        else:
            row = conn.execute(app.count_prefix_sql, (f"{run.id_prefix}-%",)).fetchone()
    run.stored = int(row[0]) if row else 0


def describe_run(app: AppSpec, run: loadgen.Run) -> str:
    cpu = run.extra.get("cpu_s", {})
    per = {k: 1000 * v / run.accepted for k, v in cpu.items()} if run.accepted else {}
    total = sum(per.values())
    cpu_text = " + ".join(f"{k} {v:.2f}" for k, v in per.items())
    # The rate these costs allow if every core did nothing else: how close the run came to
    # being CPU-bound (the generator's share included: it runs on the same cores).
    ceiling = f"{(os.cpu_count() or 1) * 1000 / total:.0f}/s" if total else "—"
    stored = {True: "yes", False: "NO", None: "?"}[run.all_stored]
    line = (
        f"  {app.name:<5} {run.label:<11} {run.throughput:7.1f}/s  p50 {_ms(run.p50_ms):>7}"
        f"  p99 {_ms(run.p99_ms):>7}  max {_ms(run.max_ms):>7}  errors {run.errors:<4}"
        f" stored {stored:<3}\n        CPU ms/webhook: {cpu_text} = {total:.2f}"
        f" (all cores busy at {ceiling})"
    )
    if run.extra.get("other", 0) >= OTHER_LOAD_NOTE:
        line += f"; other processes took {run.extra['other']:.0%} of the machine"
    for sample in run.error_samples:
        line += f"\n        error: {sample}"
    return line


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}ms"


def bench_app(
    app: AppSpec,
    plan: Plan,
    config: ServerConfig,
    env: dict[str, str],
    db_url: str,
    closed: Callable[..., loadgen.Run],
    logdir: Path,
) -> AppResult:
    with gunicorn(app, config, env, logdir) as (proc, port, log):
        probe = CpuProbe(proc.pid, urlsplit(db_url).path.lstrip("/"))
        target = signed_target(port, env["SHOPIFY_API_SECRET"])
        warm = closed(target, "warm-up", f"{app.name}-warm", 4, plan.warmup_s, 2_000)
        if warm.accepted == 0:
            raise RuntimeError(f"{app.name}: warm-up accepted nothing: {warm.error_samples}")

        steady = probe.measured(
            lambda: loadgen.open_loop(
                target, f"{STEADY_RATE:.0f}/s", f"{app.name}-steady", STEADY_RATE, plan.steady_s
            ),
        )
        verify_stored(db_url, app, steady)
        print(describe_run(app, steady), flush=True)
        result = AppResult(app, steady)

        for connections in plan.levels:
            time.sleep(PAUSE_S)
            run = probe.measured(
                lambda c=connections: closed(
                    target,
                    f"{c} conn",
                    f"{app.name}-c{c}",
                    c,
                    plan.level_s,
                    plan.max_requests_per_level,
                ),
            )
            verify_stored(db_url, app, run)
            result.sweep.append(run)
            print(describe_run(app, run), flush=True)
    text = log.read_text(errors="replace")
    result.server_errors = [x for x in text.splitlines() if SERVER_LOG_PROBLEM.search(x)]
    return result


# --- report ------------------------------------------------------------------------------------


def machine_header(
    db_url: str, client: redis.Redis, config: ServerConfig, generator: str, plan: Plan, busy: float
) -> list[str]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (x.split(":", 1)[1].strip() for x in cpuinfo.splitlines() if x.startswith("model name")),
        platform.processor() or "unknown",
    )
    mem_kib = next(
        int(x.split()[1])
        for x in Path("/proc/meminfo").read_text().splitlines()
        if x.startswith("MemTotal:")
    )
    with psycopg.connect(db_url) as conn:
        pg = {
            name: conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
            for name in ("server_version", "fsync", "synchronous_commit")
        }
    redis_version = client.info("server")["redis_version"]
    gunicorn_version = subprocess.run(
        [str(VENV_BIN / "gunicorn"), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    body_size = len(signed_target(0, "x").body)
    return [
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, run: {plan.name}",
        f"machine: {os.cpu_count()} cores ({model}), {mem_kib / 1024 / 1024:.1f} GiB memory, "
        f"Linux {platform.release()}, Python {platform.python_version()}; "
        f"{busy:.0%} busy before the run",
        f"PostgreSQL {pg['server_version']} (fsync={pg['fsync']}, "
        f"synchronous_commit={pg['synchronous_commit']}), Redis {redis_version}, "
        f"all on this machine over loopback",
        f"server: {gunicorn_version}, {config.describe()} workers (same settings for both apps)",
        f"load: {generator}; steady {STEADY_RATE:.0f}/s for {plan.steady_s:.0f} s (Python "
        f"open loop); sweep {', '.join(map(str, plan.levels))} connections × {plan.level_s} s",
        f"webhook: {TOPIC}, {body_size:,} bytes ({FIXTURE.name}), unique id per request",
        f"knee: the sweep level with the highest throughput, p99 ≤ {KNEE_P99_BOUND_MS:.0f} ms "
        f"and no error",
    ]


Row = tuple[str, str, str, str, str, str]


def knee_cpu(result: AppResult) -> float | None:
    """CPU milliseconds per accepted webhook at the knee, all components together."""
    knee = result.knee
    if knee is None or not knee.accepted or "cpu_s" not in knee.extra:
        return None
    return 1000 * sum(knee.extra["cpu_s"].values()) / knee.accepted


def summary_rows(ours: AppResult, naive: AppResult) -> list[Row]:
    def fmt(value: float | None, digits: int = 1) -> str:
        return "—" if value is None else f"{value:,.{digits}f}"

    def ratio(a: float | None, b: float | None) -> str:
        return "—" if a is None or not b else f"{a / b:.2f}×"

    def met(ok: bool | None) -> str:
        return "—" if ok is None else ("yes" if ok else "NO")

    def knee_attr(result: AppResult, attr: str) -> float | None:
        knee = result.knee
        return None if knee is None else getattr(knee, attr)

    rows: list[Row] = []
    o_rate, n_rate = ours.steady.throughput, naive.steady.throughput
    rows.append(
        (
            f"steady {STEADY_RATE:.0f}/s: achieved rate (webhooks/s)",
            fmt(o_rate),
            fmt(n_rate),
            ratio(o_rate, n_rate),
            f"≥ {STEADY_RATE * STEADY_RATE_TOLERANCE:.0f}",
            met(o_rate >= STEADY_RATE * STEADY_RATE_TOLERANCE and ours.steady.errors == 0),
        )
    )
    for name, attr, target in (("p50", "p50_ms", None), ("p99", "p99_ms", TARGET_STEADY_P99_MS)):
        o, n = getattr(ours.steady, attr), getattr(naive.steady, attr)
        rows.append(
            (
                f"steady {STEADY_RATE:.0f}/s: {name} latency (ms)",
                fmt(o),
                fmt(n),
                ratio(o, n),
                "—" if target is None else f"≤ {target:.0f}",
                "—" if target is None else met(o is not None and o <= target),
            )
        )
    o, n = knee_attr(ours, "throughput"), knee_attr(naive, "throughput")
    rows.append(
        (
            "knee: throughput (webhooks/s)",
            fmt(o, 0),
            fmt(n, 0),
            ratio(o, n),
            f"≥ {TARGET_KNEE_RATE:.0f}",
            met(o is not None and o >= TARGET_KNEE_RATE),
        )
    )
    o_c = ours.knee.label if ours.knee else "—"
    n_c = naive.knee.label if naive.knee else "—"
    rows.append(("knee: at", o_c, n_c, "—", "—", "—"))
    for name, attr in (("p50", "p50_ms"), ("p99", "p99_ms")):
        o, n = knee_attr(ours, attr), knee_attr(naive, attr)
        rows.append((f"knee: {name} latency (ms)", fmt(o), fmt(n), ratio(o, n), "—", "—"))
    o, n = knee_cpu(ours), knee_cpu(naive)
    rows.append(("knee: CPU per webhook (ms)", fmt(o, 2), fmt(n, 2), ratio(o, n), "—", "—"))
    o_err, n_err = sum(r.errors for r in ours.runs), sum(r.errors for r in naive.runs)
    rows.append(("errors, all runs", str(o_err), str(n_err), "—", "0", met(o_err == 0)))
    o_ok = all(r.all_stored for r in ours.runs)
    n_ok = all(r.all_stored for r in naive.runs)
    rows.append(
        (
            "every accepted webhook stored",
            "yes" if o_ok else "NO",
            "yes" if n_ok else "NO",
            "—",
            "yes",
            met(o_ok),
        )
    )
    return rows


def result_notes(results: list[AppResult]) -> list[str]:
    """What the reader needs next to the table: how to read it, and anything that taints it."""
    notes = [
        "ratio = ours ÷ naive (higher is better for rates, lower for latencies and CPU); "
        "CPU per webhook counts the server, PostgreSQL, Redis and the load generator."
    ]
    worst = max(
        (r.extra.get("other", 0.0), res.app.name, r.label) for res in results for r in res.runs
    )
    if worst[0] >= OTHER_LOAD_WARN:
        notes.append(
            f"WARNING: other processes took up to {worst[0]:.0%} of the machine during a run "
            f"({worst[1]}, {worst[2]}): rates are understated; CPU per webhook is not affected."
        )
    for result in results:
        if result.server_errors:
            notes.append(
                f"{result.app.name}: {len(result.server_errors)} warning/error lines in the "
                f"server log, the first: {result.server_errors[0][:200]}"
            )
    return notes


def render_markdown(
    header: list[str], rows: list[Row], notes: list[str], results: list[AppResult]
) -> str:
    out = ["# Webhook intake benchmark", "", *[f"- {x}" for x in header], ""]
    out.append("| " + " | ".join(HEADINGS) + " |")
    out.append("|" + "---|" + "---:|" * (len(HEADINGS) - 1))
    out += ["| " + " | ".join(r) + " |" for r in rows]
    out += ["", *notes, ""]
    out += [
        "## Sweep",
        "",
        "| app | load | webhooks/s | p50 ms | p99 ms | errors | stored | CPU ms/webhook "
        "| other processes |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for result in results:
        for run in result.runs:
            cpu = 1000 * sum(run.extra.get("cpu_s", {}).values()) / max(run.accepted, 1)
            out.append(
                f"| {result.app.name} | {run.label} | {run.throughput:,.1f} | "
                f"{_ms(run.p50_ms).removesuffix('ms')} | {_ms(run.p99_ms).removesuffix('ms')} | "
                f"{run.errors} | {'yes' if run.all_stored else 'NO'} | {cpu:.2f} | "
                f"{run.extra.get('other', 0.0):.0%} |"
            )
    return "\n".join(out) + "\n"


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a ~30 s run (fewer, shorter runs)")
    parser.add_argument(
        "--generator",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="closed-loop load generator (auto: wrk when installed)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2 * cores + 1,
        help="gunicorn workers (default: 2 × cores + 1, as `ambassador serve`)",
    )
    parser.add_argument("--worker-class", choices=("sync", "gthread"), default="gthread")
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_DATABASE_URL") or DEFAULT_PG_URL,
        help="a PostgreSQL database where the user may create databases",
    )
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help="flushed before and after")
    parser.add_argument("--out", type=Path, help="Markdown output (default: bench/results/)")
    return parser.parse_args(argv)


def _sigterm(*_: Any) -> None:
    raise SystemExit(143)  # run the cleanup (gunicorn, database, Redis) as on Ctrl-C


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    plan = Plan.quick() if args.quick else Plan.full()
    config = ServerConfig(args.workers, args.worker_class, args.threads)
    wrk = shutil.which("wrk") if args.generator in ("auto", "wrk") else None
    if args.generator == "wrk" and wrk is None:
        print("wrk is not installed", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="ambassador-bench-") as tmp:
        workdir = Path(tmp)
        if wrk:
            generator = f"wrk ({wrk}), {loadgen.WRK_THREADS} threads"

            def closed(target: loadgen.Target, *a: Any) -> loadgen.Run:
                return loadgen.wrk_closed_loop(wrk, workdir, target, *a)
        else:
            generator = (
                f"Python http.client closed loop, {loadgen.GEN_PROCESSES} processes (wrk not found)"
            )
            closed = loadgen.closed_loop

        admin_url = _libpq(args.pg_url)
        t0 = time.monotonic()
        busy = idle_check()
        with bench_database(admin_url) as db_url, bench_redis(args.redis_url) as client:
            header = machine_header(db_url, client, config, generator, plan, busy)
            print("\n".join(header), flush=True)
            print(flush=True)
            env = {
                **os.environ,
                "DATABASE_URL": db_url,
                "REDIS_URL": args.redis_url,
                "APP_ENV": "production",  # as deployed: explicit secrets, https APP_URL
                "APP_URL": "https://ambassador-bench.invalid",
                "SECRET_KEY": secrets.token_urlsafe(32),
                "ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
                "SHOPIFY_API_KEY": "ambassador-bench",
                "SHOPIFY_API_SECRET": secrets.token_hex(16),
                "INSTANCE_PATH": str(workdir / "instance"),
            }
            results = [
                bench_app(app, plan, config, env, db_url, closed, workdir) for app in (OURS, NAIVE)
            ]
        elapsed = time.monotonic() - t0

    ours, naive = results
    rows = summary_rows(ours, naive)
    notes = result_notes(results)
    print()
    print(render_text(rows))
    print("\n".join(notes))
    out = args.out or RESULTS / (
        "webhook_intake.md" if plan.name == "full" else "webhook_intake-quick.md"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_markdown(header, rows, notes, results))
    if args.out is None:  # the copy that bench/run_all.py reads
        write_json("webhook_intake", "Webhook intake", plan.name, header, rows, notes, elapsed)
    print(
        f"\nwritten to {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}"
        f" ({elapsed:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
