"""Helpers shared by the benchmark scripts in ``bench/``.

Every benchmark follows the same conventions (set by ``bench/webhook_intake.py``):

* a fresh PostgreSQL database per run (``ambassador_bench_<pid>...``), migrated with
  ``ambassador migrate``, dropped at the end; a Redis database index of its own, flushed before
  and after; processes started on loopback ports and stopped at the end;
* a header describing the machine, then **one table**: metric, ours, naive, ratio, target, met?
  (absolute figures next to a naive baseline measured in the same run; never a timed assertion);
* the same table in Markdown in ``bench/results/<name>.md`` (``<name>-quick.md`` with
  ``--quick``), and in JSON next to it (``.json``) for ``bench/run_all.py``.
"""

from __future__ import annotations

import base64
import json
import math
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
VENV_BIN = Path(sys.executable).parent
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

HEALTH_TIMEOUT_S = 30.0  # gunicorn boot plus the app's first database connection
STOP_TIMEOUT_S = 15.0  # SIGTERM, then SIGKILL


# --- database and Redis ------------------------------------------------------------------------


def libpq(url: str) -> str:
    """Any spelling of a PostgreSQL URL as the plain one libpq (psycopg) accepts."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1).replace(
        "postgres://", "postgresql://", 1
    )


def sqlalchemy_url(url: str) -> str:
    """The SQLAlchemy spelling (psycopg 3 driver), as the app's settings produce it."""
    return "postgresql+psycopg://" + libpq(url).removeprefix("postgresql://")


def with_dbname(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def dbname(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def migrate(url: str) -> None:
    """``ambassador migrate`` on ``url``, as the release phase runs it."""
    result = subprocess.run(
        [str(VENV_BIN / "ambassador"), "migrate"],
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"ambassador migrate failed:\n{result.stderr}")


def create_database(admin_url: str, name: str, template: str | None = None) -> str:
    """(Re)create database ``name`` (a copy of ``template`` if given); returns its URL."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if template:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        else:
            conn.execute(f'CREATE DATABASE "{name}"')
    return with_dbname(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def databases(admin_url: str) -> Iterator[Callable[..., str]]:
    """A factory of fresh databases for this run (``make(suffix, template=None, migrated=True)``
    returns a URL); every database it made is dropped at the end."""
    made: list[str] = []

    def make(suffix: str, template: str | None = None, migrated: bool = True) -> str:
        name = f"ambassador_bench_{os.getpid()}_{suffix}"
        made.append(name)
        url = create_database(admin_url, name, template)
        if migrated and template is None:
            migrate(url)
        return url

    try:
        yield make
    finally:
        for name in reversed(made):
            drop_database(admin_url, name)


@contextmanager
def bench_redis(url: str) -> Iterator[redis.Redis]:
    """A Redis database index for this run: flushed before and after."""
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- processes ---------------------------------------------------------------------------------


def app_env(db_url: str, redis_url: str | None, workdir: Path, **extra: str) -> dict[str, str]:
    """The environment of an app process as deployed: production settings, explicit secrets."""
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "APP_ENV": "production",  # as deployed: explicit secrets, https APP_URL
        "APP_URL": "https://ambassador-bench.invalid",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "SHOPIFY_API_KEY": "ambassador-bench",
        "SHOPIFY_API_SECRET": secrets.token_hex(16),
        "INSTANCE_PATH": str(workdir / "instance"),
        **extra,
    }
    if redis_url:
        env["REDIS_URL"] = redis_url
    else:
        env.pop("REDIS_URL", None)
    return env


def stop(proc: subprocess.Popen[Any], timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM, then SIGKILL after ``timeout``: only this process (started by the bench)."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def gunicorn(
    name: str, wsgi: str, args: Sequence[str], env: dict[str, str], logdir: Path
) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    """gunicorn serving ``wsgi`` on a free loopback port, answering ``/healthz`` 200."""
    port = free_port()
    log = logdir / f"gunicorn-{name}.log"
    cmd = [
        str(VENV_BIN / "gunicorn"),
        *args,
        "-b",
        f"127.0.0.1:{port}",
        "--graceful-timeout",
        "5",
        "--log-level",
        "warning",
        wsgi,
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn ({name}) exited:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn ({name}) not healthy:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield proc, port, log
    finally:
        stop(proc)


def _sigterm(*_: Any) -> None:
    raise SystemExit(143)  # run the cleanup (processes, databases, Redis) as on Ctrl-C


def cleanup_on_sigterm() -> None:
    signal.signal(signal.SIGTERM, _sigterm)


# --- the machine -------------------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """(busy, elapsed) CPU seconds of the whole machine since boot, from /proc/stat."""
    user, nice, system, idle, iowait, irq, softirq, steal = (
        int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    # Interrupt time is left out of "busy": it is mostly the loopback traffic of the bench itself,
    # which no process is charged for. Steal (the hypervisor's other guests) stays in.
    busy = user + nice + system + steal
    return busy / CLK_TCK, (busy + idle + iowait + irq + softirq) / CLK_TCK


def idle_check(seconds: float = 1.0) -> float:
    """The share of the machine in use while nothing of the bench runs yet."""
    busy0, total0 = machine_cpu()
    time.sleep(seconds)
    busy1, total1 = machine_cpu()
    return (busy1 - busy0) / max(total1 - total0, 1e-9)


def wait_idle(threshold: float = 0.10, timeout: float = 20.0) -> float:
    """Wait (up to ``timeout``) until the machine is below ``threshold`` busy over a second,
    e.g. while PostgreSQL settles after the previous benchmark; returns the last reading."""
    deadline = time.monotonic() + timeout
    busy = idle_check()
    while busy >= threshold and time.monotonic() < deadline:
        busy = idle_check()
    return busy


def busy_notes(busy: float, threshold: float = 0.10) -> list[str]:
    """A warning for the results when the machine was shared when the run began."""
    if busy < threshold:
        return []
    return [
        f"WARNING: the machine was {busy:.0%} busy before the run (another workload): rates "
        "are understated and latencies overstated."
    ]


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    return next(
        (x.split(":", 1)[1].strip() for x in cpuinfo.splitlines() if x.startswith("model name")),
        platform.processor() or "unknown",
    )


def code_revision() -> str:
    """The commit measured, and whether the work tree had changes (the app's own files)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                ":!bench",
                ":!Makefile",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"git {head}" + (" + uncommitted changes" if dirty else "")


def machine_lines(
    db_url: str | None, client: redis.Redis | None, plan: str, busy: float | None
) -> list[str]:
    """The header lines every benchmark prints first: date, machine, services."""
    mem_kib = next(
        int(x.split()[1])
        for x in Path("/proc/meminfo").read_text().splitlines()
        if x.startswith("MemTotal:")
    )
    busy_text = f"; {busy:.0%} busy before the run" if busy is not None else ""
    lines = [
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, run: {plan}, code: {code_revision()}",
        f"machine: {os.cpu_count()} cores ({cpu_model()}), {mem_kib / 1024 / 1024:.1f} GiB "
        f"memory, Linux {platform.release()}, Python {platform.python_version()}{busy_text}",
    ]
    services = []
    if db_url:
        with psycopg.connect(libpq(db_url)) as conn:
            pg = {
                name: conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
                for name in ("server_version", "fsync", "synchronous_commit")
            }
        services.append(
            f"PostgreSQL {pg['server_version']} (fsync={pg['fsync']}, "
            f"synchronous_commit={pg['synchronous_commit']})"
        )
    if client is not None:
        services.append(f"Redis {client.info('server')['redis_version']}")
    if services:
        lines.append(", ".join(services) + ", all on this machine over loopback")
    return lines


# --- figures and tables ------------------------------------------------------------------------

Row = tuple[str, str, str, str, str, str]
HEADINGS: Row = ("metric", "ours", "naive", "ratio", "target", "met?")


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank ``q``-th percentile (0..100) of sorted values, as ``bench/loadgen.py``."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def ratio(a: float | None, b: float | None, digits: int = 2) -> str:
    return "—" if a is None or not b else f"{a / b:,.{digits}f}×"


def met(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "NO")


def render_text(
    rows: Sequence[Sequence[str]], headings: Sequence[str] = HEADINGS, left: int = 1
) -> str:
    """A plain-text table: the first ``left`` columns aligned left, the others right."""
    widths = [max(len(r[i]) for r in [headings, *rows]) for i in range(len(headings))]
    lines = []
    for k, row in enumerate([headings, *rows]):
        cells = [
            c.ljust(w) if i < left else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(
    rows: Sequence[Sequence[str]], headings: Sequence[str] = HEADINGS, left: int = 1
) -> list[str]:
    """A Markdown table: the first ``left`` columns aligned left, the others right."""
    align = "|" + "---|" * left + "---:|" * (len(headings) - left)
    out = ["| " + " | ".join(headings) + " |", align]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return out


def result_paths(name: str, plan: str) -> tuple[Path, Path]:
    stem = name if plan == "full" else f"{name}-{plan}"
    return RESULTS / f"{stem}.md", RESULTS / f"{stem}.json"


def write_json(
    name: str,
    title: str,
    plan: str,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    notes: Sequence[str],
    elapsed_s: float,
) -> Path:
    """The machine-readable copy of a benchmark's table, read by ``bench/run_all.py``."""
    _, path = result_paths(name, plan)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "name": name,
        "title": title,
        "run": plan,
        "header": list(header),
        "rows": [list(r) for r in rows],
        "notes": list(notes),
        "elapsed_s": round(elapsed_s, 1),
    }
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    return path


def write_results(
    name: str,
    title: str,
    plan: str,
    header: Sequence[str],
    rows: Sequence[Row],
    notes: Sequence[str],
    elapsed_s: float,
    extra_markdown: Sequence[str] = (),
) -> Path:
    """Print nothing; write ``bench/results/<name>[-quick].md`` and ``.json``; return the .md."""
    md, _ = result_paths(name, plan)
    md.parent.mkdir(parents=True, exist_ok=True)
    out = [f"# {title}", "", *[f"- {x}" for x in header], ""]
    out += markdown_table(rows)
    out += ["", *[f"{n}  " for n in notes]]
    if extra_markdown:
        out += ["", *extra_markdown]
    md.write_text("\n".join(out).rstrip() + "\n")
    write_json(name, title, plan, header, rows, notes, elapsed_s)
    return md


def report(
    name: str,
    title: str,
    plan: str,
    header: Sequence[str],
    rows: Sequence[Row],
    notes: Sequence[str],
    started: float,
    extra_markdown: Sequence[str] = (),
) -> None:
    """Print the table and its notes, and write the results files."""
    elapsed = time.monotonic() - started
    print()
    print(render_text(rows))
    for note in notes:
        print(note)
    path = write_results(name, title, plan, header, rows, notes, elapsed, extra_markdown)
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    print(f"\nwritten to {shown} ({elapsed:.0f} s)", flush=True)
