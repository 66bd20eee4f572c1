"""Run every benchmark and print one combined table: ``make bench`` (``--quick`` passes through).

Each benchmark runs as its own process, one after the other (they would skew each other's
figures), prints its own output as it goes and writes its results to ``bench/results/``; this
script then reads their JSON results and prints one table (benchmark, metric, ours, naive,
ratio, target, met?) under the machine's description, and writes it as Markdown to
``bench/results/summary.md`` (``summary-quick.md`` with ``--quick``).

    .venv/bin/python bench/run_all.py            # about 9 minutes on 2 cores
    .venv/bin/python bench/run_all.py --quick    # about 2 minutes
    .venv/bin/python bench/run_all.py --only code_issuance api_list_latency
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: make ``bench`` importable like the app's packages

import redis  # noqa: E402

from bench.common import (  # noqa: E402
    DEFAULT_PG_URL,
    RESULTS,
    cleanup_on_sigterm,
    idle_check,
    libpq,
    machine_lines,
    markdown_table,
    render_text,
    result_paths,
    stop,
    wait_idle,
)

#: (name, seconds allowed for a full run, for a quick run): the order they run in.
BENCHMARKS = (
    ("webhook_intake", 300, 90),
    ("attribution_throughput", 300, 120),
    ("code_issuance", 420, 90),
    ("api_list_latency", 240, 90),
    ("ambassador_sort_latency", 240, 120),
    ("salesforce_sync", 240, 90),
    ("shop_fairness", 240, 90),
)
HEADINGS = ("benchmark", "metric", "ours", "naive", "ratio", "target", "met?")


def run(name: str, quick: bool, timeout: int) -> tuple[int, float]:
    """Run one benchmark script, its output going straight to ours; (exit code, seconds)."""
    cmd = [sys.executable, str(ROOT / "bench" / f"{name}.py"), *(["--quick"] if quick else [])]
    print(f"\n=== {name} {'(quick) ' if quick else ''}===", flush=True)
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT)
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        print(f"{name}: still running after {timeout} s: stopped", flush=True)
        code = -1
    finally:
        stop(proc, timeout=60)  # SIGTERM first: the benchmark drops its databases
    return code, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    names = [b[0] for b in BENCHMARKS]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="every benchmark's --quick")
    parser.add_argument("--only", nargs="+", choices=names, help="run only these")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_DATABASE_URL") or DEFAULT_PG_URL)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="read only")
    args = parser.parse_args(argv)
    cleanup_on_sigterm()
    plan = "quick" if args.quick else "full"

    busy = idle_check()
    client = redis.Redis.from_url(args.redis_url)
    try:
        header = machine_lines(libpq(args.pg_url), client, plan, busy)
    finally:
        client.close()
    started = time.monotonic()
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []
    failed = []
    for name, full_s, quick_s in BENCHMARKS:
        if args.only and name not in args.only:
            continue
        md, js = result_paths(name, plan)
        js.unlink(missing_ok=True)  # never report a previous run's figures as this one's
        wait_idle()  # let PostgreSQL settle after the previous one (checkpoints, dropped DBs)
        code, seconds = run(name, args.quick, quick_s if args.quick else full_s)
        if code != 0 or not js.exists():
            failed.append(name)
            rows.append((name, f"FAILED (exit code {code})", "—", "—", "—", "—", "NO"))
            continue
        result = json.loads(js.read_text())
        for row in result["rows"]:
            rows.append((name, *row))
        notes.append(f"{name}: {seconds:.0f} s; details in {md.relative_to(ROOT)}")
        notes += [f"{name}: {n}" for n in result["notes"] if n.startswith("WARNING")]
    elapsed = time.monotonic() - started

    print("\n=== summary ===")
    print("\n".join(header))
    print()
    print(render_text(rows, HEADINGS, left=2))
    print()
    print("\n".join(notes))
    met = sum(1 for r in rows if r[-1] == "yes")
    missed = [f"{r[0]}: {r[1]}" for r in rows if r[-1] == "NO"]
    verdict = f"targets met: {met} of {met + len(missed)}" + (
        "; missed: " + "; ".join(missed) if missed else ""
    )
    print(verdict)
    out = RESULTS / ("summary.md" if plan == "full" else "summary-quick.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    text = ["# Benchmarks: summary", "", *[f"- {h}" for h in header], ""]
    text += markdown_table(rows, HEADINGS, left=2)
    text += ["", *[f"{n}  " for n in notes], "", verdict, ""]
    out.write_text("\n".join(text))
    print(f"\nwritten to {out.relative_to(ROOT)} ({elapsed:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
