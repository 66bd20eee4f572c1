"""Load generators for ``bench/webhook_intake.py``; each runs in processes of its own.

Three ways to send signed webhooks at a server on the loopback interface:

* :func:`open_loop` (Python): a constant arrival rate. A dispatcher schedules request *i* at
  ``start + i / rate`` and hands it to a pool of threads with keep-alive connections; latency
  is measured from the *scheduled* time, so a stalled server is charged for the requests that
  queued behind the stall (no coordinated omission).
* :func:`closed_loop` (Python): ``connections`` clients, each sending its next request as soon
  as the previous answer arrives, for a fixed time; threads in up to :data:`GEN_PROCESSES`
  processes.
* :func:`wrk_closed_loop`: the same closed loop with ``wrk`` and a generated Lua script, far
  cheaper per request than Python (it matters on a 2-core machine where the generator shares
  the CPU with the server).

Every request carries the same pre-signed body (Shopify's HMAC covers only the body) and a
unique ``X-Shopify-Webhook-Id`` ``<prefix>-...``, so the caller can find the stored rows.
A request counts as *accepted* when the answer is 200 with ``"accepted"`` in the body.
"""

from __future__ import annotations

import http.client
import json
import math
import multiprocessing as mp
import queue
import resource
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WEBHOOK_PATH = "/webhooks/shopify"
#: Per-request socket timeout. Above Shopify's own 5 s delivery timeout, so a slow answer is
#: measured as slow rather than dropped; such an answer already fails every latency target.
REQUEST_TIMEOUT_S = 10.0
#: Lets every generator process start its threads before the first request is due.
START_DELAY_S = 0.3
#: Python generator processes for the closed loop: one per core of the 2-core target machine;
#: more would only add contention with the server for the same cores.
GEN_PROCESSES = 2
#: Threads of the open-loop generator, each with its own connection: at 100/s and a few ms per
#: request one or two are busy; the rest absorb a stall (whose cost is still measured).
OPEN_LOOP_THREADS = 16
#: wrk threads (event loops): one per core at most, as for the Python generator.
WRK_THREADS = 2
#: Error descriptions kept per run, for the report (the count is always exact).
ERROR_SAMPLES = 3


@dataclass(frozen=True)
class Target:
    """Where and what to send: everything but the webhook id, which is per request."""

    host: str
    port: int
    body: bytes
    headers: dict[str, str]

    def request_headers(self, webhook_id: str) -> dict[str, str]:
        return {**self.headers, "X-Shopify-Webhook-Id": webhook_id}


@dataclass
class Run:
    """The outcome of one load run (one concurrency level, or the steady rate)."""

    label: str
    generator: str
    id_prefix: str
    sent: int
    accepted: int
    errors: int
    elapsed_s: float
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    gen_cpu_s: float
    accepted_ids: list[str] | None = None  # None when the generator cannot tell (wrk)
    error_samples: list[str] = field(default_factory=list)
    stored: int | None = None  # filled in by the caller after the run
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        """Accepted webhooks per second of wall time."""
        return self.accepted / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def all_stored(self) -> bool | None:
        if self.stored is None:
            return None
        if self.accepted_ids is not None:
            return self.stored == len(self.accepted_ids)
        # wrk: only counts. Requests cut off at the end of the run may be stored unanswered.
        return self.stored >= self.accepted


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values (``None`` for no values)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


# --- one request -------------------------------------------------------------------------------


def _post(conn: http.client.HTTPConnection, target: Target, webhook_id: str) -> str | None:
    """Send one webhook; ``None`` when accepted, else a short description of the failure."""
    try:
        conn.request(
            "POST", WEBHOOK_PATH, body=target.body, headers=target.request_headers(webhook_id)
        )
        response = conn.getresponse()
        data = response.read()
        if response.will_close:  # e.g. gunicorn's sync workers: the next request reconnects
            conn.close()
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        return f"{type(exc).__name__}: {exc}"
    if response.status == 200 and b'"accepted"' in data:
        return None
    return f"HTTP {response.status}: {data[:100]!r}"


class _Records:
    """Thread-safe collection of one process's results."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies_ms: list[float] = []
        self.accepted_ids: list[str] = []
        self.errors = 0
        self.error_samples: list[str] = []
        self.last_done = 0.0

    def add(self, webhook_id: str, error: str | None, latency_ms: float, done: float) -> None:
        with self.lock:
            self.latencies_ms.append(latency_ms)
            self.last_done = max(self.last_done, done)
            if error is None:
                self.accepted_ids.append(webhook_id)
            else:
                self.errors += 1
                if len(self.error_samples) < ERROR_SAMPLES and error not in self.error_samples:
                    self.error_samples.append(error)

    def result(self) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "latencies_ms": self.latencies_ms,
            "accepted_ids": self.accepted_ids,
            "errors": self.errors,
            "error_samples": self.error_samples,
            "last_done": self.last_done,
            "cpu_s": usage.ru_utime + usage.ru_stime,
        }


def _combine(
    label: str, prefix: str, start: float, parts: list[dict[str, Any]], generator: str
) -> Run:
    latencies = sorted(x for p in parts for x in p["latencies_ms"])
    accepted_ids = [x for p in parts for x in p["accepted_ids"]]
    last_done = max((p["last_done"] for p in parts), default=start)
    return Run(
        label=label,
        generator=generator,
        id_prefix=prefix,
        sent=len(latencies),
        accepted=len(accepted_ids),
        errors=sum(p["errors"] for p in parts),
        elapsed_s=max(last_done - start, 1e-9),
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        max_ms=latencies[-1] if latencies else None,
        gen_cpu_s=sum(p["cpu_s"] for p in parts),
        accepted_ids=accepted_ids,
        error_samples=[s for p in parts for s in p["error_samples"]][:ERROR_SAMPLES],
    )


def _run_processes(target_fn: Any, args_list: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Run ``target_fn(*args, out)`` in one process per ``args`` and collect their results."""
    ctx = mp.get_context("fork")  # Linux only (as is the rest of the bench: /proc)
    out: Any = ctx.Queue()
    procs = [ctx.Process(target=target_fn, args=(*args, out), daemon=True) for args in args_list]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]  # before join: a large result must be drained first
    for p in procs:
        p.join()
    return results


# --- open loop (constant rate) -----------------------------------------------------------------


def _open_loop_process(
    target: Target, prefix: str, rate: float, count: int, start: float, out: Any
) -> None:
    jobs: queue.SimpleQueue[tuple[int, float] | None] = queue.SimpleQueue()
    records = _Records()

    def worker() -> None:
        conn = http.client.HTTPConnection(target.host, target.port, timeout=REQUEST_TIMEOUT_S)
        while (job := jobs.get()) is not None:
            i, due = job
            webhook_id = f"{prefix}-{i}"
            error = _post(conn, target, webhook_id)
            done = time.monotonic()
            records.add(webhook_id, error, (done - due) * 1000, done)
        conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(OPEN_LOOP_THREADS)]
    for t in threads:
        t.start()
    for i in range(count):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        jobs.put((i, due))
    for _ in threads:
        jobs.put(None)
    for t in threads:
        t.join()
    out.put(records.result())


def open_loop(target: Target, label: str, prefix: str, rate: float, duration_s: float) -> Run:
    """``rate`` requests per second for ``duration_s``, latency from each scheduled send time.

    One process suffices at the rates this is meant for (hundreds per second).
    """
    count = round(rate * duration_s)
    start = time.monotonic() + START_DELAY_S
    parts = _run_processes(_open_loop_process, [(target, prefix, rate, count, start)])
    run = _combine(label, prefix, start, parts, "python open-loop")
    # Requests go out at 0, 1/rate, ... (count-1)/rate: a server that keeps up answers `count`
    # in count/rate seconds, not in the shorter span from the first send to the last answer.
    run.elapsed_s = max(run.elapsed_s, count / rate)
    return run


# --- closed loop (fixed concurrency) -----------------------------------------------------------


def _closed_loop_process(
    target: Target,
    prefix: str,
    connections: int,
    start: float,
    duration_s: float,
    per_connection_cap: int,
    out: Any,
) -> None:
    records = _Records()
    stop_at = start + duration_s

    def client(k: int) -> None:
        conn = http.client.HTTPConnection(target.host, target.port, timeout=REQUEST_TIMEOUT_S)
        time.sleep(max(0.0, start - time.monotonic()))
        for n in range(per_connection_cap):
            sent_at = time.monotonic()
            if sent_at >= stop_at:
                break
            webhook_id = f"{prefix}-{k}-{n}"
            error = _post(conn, target, webhook_id)
            done = time.monotonic()
            records.add(webhook_id, error, (done - sent_at) * 1000, done)
        conn.close()

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(records.result())


def closed_loop(
    target: Target, label: str, prefix: str, connections: int, duration_s: float, max_requests: int
) -> Run:
    """``connections`` clients back to back for ``duration_s`` (at most ``max_requests``)."""
    procs = min(connections, GEN_PROCESSES)
    shares = [connections // procs + (1 if i < connections % procs else 0) for i in range(procs)]
    cap = math.ceil(max_requests / connections)
    start = time.monotonic() + START_DELAY_S
    args = [
        (target, f"{prefix}-p{i}", share, start, duration_s, cap) for i, share in enumerate(shares)
    ]
    parts = _run_processes(_closed_loop_process, args)
    return _combine(label, prefix, start, parts, "python closed-loop")


# --- wrk ---------------------------------------------------------------------------------------

_WRK_SCRIPT = r"""
-- Generated by bench/loadgen.py: signed webhooks with a unique X-Shopify-Webhook-Id each.
-- args: id prefix, body file, requests cap per thread, then header name/value pairs.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  prefix = args[1] .. "-t" .. tid .. "-"
  local f = assert(io.open(args[2], "rb"))
  wrk.body = f:read("*a")
  f:close()
  cap = tonumber(args[3])
  wrk.method = "POST"
  for i = 4, #args, 2 do
    wrk.headers[args[i]] = args[i + 1]
  end
  counter = 0
  accepted = 0
  failed = 0
end

function request()
  counter = counter + 1
  wrk.headers["X-Shopify-Webhook-Id"] = prefix .. counter
  return wrk.format(nil, "/webhooks/shopify")
end

function response(status, headers, body)
  if status == 200 and string.find(body, '"accepted"', 1, true) then
    accepted = accepted + 1
  else
    failed = failed + 1
  end
  if accepted + failed >= cap then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local acc, fail = 0, 0
  for _, t in ipairs(threads) do
    acc = acc + t:get("accepted")
    fail = fail + t:get("failed")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"accepted":%d,"failed":%d,'
    .. '"socket_errors":%d,"timeouts":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, acc, fail,
    e.connect + e.read + e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def wrk_closed_loop(
    wrk: str,
    workdir: Path,
    target: Target,
    label: str,
    prefix: str,
    connections: int,
    duration_s: int,
    max_requests: int,
) -> Run:
    """The closed loop with ``wrk`` (``duration_s`` whole seconds, at most ``max_requests``)."""
    script = workdir / "webhook.lua"
    body_file = workdir / "body.json"
    if not script.exists():
        script.write_text(_WRK_SCRIPT)
        body_file.write_bytes(target.body)
    threads = min(connections, WRK_THREADS)
    cap = math.ceil(max_requests / threads)
    header_args = [x for item in target.headers.items() for x in item]
    cmd = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration_s}s",
        f"--timeout={int(REQUEST_TIMEOUT_S)}s",
        "-s",
        str(script),
        f"http://{target.host}:{target.port}",
        "--",
        prefix,
        str(body_file),
        str(cap),
        *header_args,
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    stats = json.loads(line.removeprefix("BENCH_JSON "))
    errors = stats["failed"] + stats["socket_errors"] + stats["timeouts"]
    samples = []
    if stats["failed"]:
        samples.append(f"{stats['failed']} answers other than 200 accepted")
    if stats["socket_errors"] or stats["timeouts"]:
        samples.append(f"{stats['socket_errors']} socket errors, {stats['timeouts']} timeouts")
    run = Run(
        label=label,
        generator="wrk",
        id_prefix=prefix,
        sent=stats["requests"],
        accepted=stats["accepted"],
        errors=errors,
        elapsed_s=stats["duration_us"] / 1e6,
        p50_ms=stats["p50_us"] / 1000,
        p99_ms=stats["p99_us"] / 1000,
        max_ms=stats["max_us"] / 1000,
        gen_cpu_s=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        error_samples=samples,
    )
    if stats["requests"] >= cap * threads:
        # The threads stopped early but wrk reports its full duration: the rate is understated.
        run.error_samples.append("request cap reached: wrk's rate for this run is understated")
    return run
