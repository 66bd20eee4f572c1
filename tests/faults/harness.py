"""What the fault tests share: private services they may break, the app as real processes, the
Shopify emulator as the store, a load of real orders, and the invariants checked afterwards.

* :class:`PrivatePostgres`: a PostgreSQL cluster of the test's own (``initdb`` + ``pg_ctl`` from
  ``/usr/lib/postgresql/*/bin``, on a free port, in a temporary folder), which the test may stop,
  crash and restart. The shared server other agents and processes use is never touched.
* :class:`PrivateRedis`: a ``redis-server`` of the test's own, which the test may wipe.
* :class:`App`: ``ambassador serve`` (gunicorn) and ``ambassador worker`` (RQ + scheduler:
  the sweeper runs every 30 s) as subprocesses, talking to the emulator through
  ``SHOPIFY_API_BASE_URL``, with the emulator's webhooks going to the served app.
* :class:`Store`: the shop installed through the app home (token exchange), ambassadors enrolled
  through the JSON API (codes issued by the worker into the emulator), and a load of checkouts,
  partial refunds and cancellations made in the emulator, whose signed webhooks go to the app.
* :func:`check_invariants`: every webhook Shopify saw acknowledged is stored once and applied,
  nothing waits or failed, and each order's ledger equals the reward computed independently from
  the order's final state in the emulator (``ledger = f(final order states)``).
"""

from __future__ import annotations

import base64
import glob
import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import API_KEY, API_SECRET, SHOP

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
RATE = Decimal(10)  # the program's default commission rate (no tiers are configured)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str, every: float = 0.2) -> float:
    """Poll ``check`` until true; returns the seconds it took; fails the test after ``timeout``."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)
    return time.monotonic() - started


# --- a private PostgreSQL ----------------------------------------------------------------------


def _pg_bin() -> Path:
    found = sorted(
        (Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not found or not (found[-1] / "pg_ctl").exists():
        pytest.fail(
            "the fault tests start a private PostgreSQL cluster (they restart it) and need "
            "initdb and pg_ctl in /usr/lib/postgresql/<version>/bin (Debian/Ubuntu package "
            "postgresql-<version>); none found"
        )
    return found[-1]


class PrivatePostgres:
    """A throw-away PostgreSQL cluster on a free loopback port. As root, the server runs as the
    ``postgres`` user (initdb refuses root)."""

    def __init__(self) -> None:
        self.bin = _pg_bin()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="ambassador-faults-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as: list[str] = []
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                pytest.fail("running as root: `runuser` is needed to run initdb as postgres")
            try:
                import pwd

                pw = pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail("running as root: initdb needs a non-root `postgres` user")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A",
                  "trust", "--no-sync", "-E", "UTF8")

    def _run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([*self._as, *cmd], capture_output=True, text=True, timeout=120,
                                check=False)
        if check and result.returncode != 0:
            pytest.fail(f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}\n"
                        f"{self.log.read_text() if self.log.exists() else ''}")
        return result

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c max_connections=100 -c fsync=off -c full_page_writes=off"
        )
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                  "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """``immediate`` is a crash (no shutdown checkpoint, in-flight transactions lost)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop",
                  check=False)

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    try:
        pg.start()
        yield pg
    finally:
        pg.destroy()


# --- a private Redis ---------------------------------------------------------------------------


class PrivateRedis:
    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("the fault tests start a private redis-server (they wipe it); none found")
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="ambassador-faults-redis-"))
        self.log = self.root / "redis.log"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.root), "--maxmemory-policy", "noeviction"],
            stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
        )
        import redis

        self.client = redis.Redis(port=self.port)
        wait_until(self._up, 20, "the private redis-server")

    def _up(self) -> bool:
        import redis

        try:
            return bool(self.client.ping())
        except redis.ConnectionError:
            return False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def destroy(self) -> None:
        self.client.close()
        stop_process(self.proc)
        shutil.rmtree(self.root, ignore_errors=True)


def stop_process(proc: subprocess.Popen[Any], timeout: float = 30) -> int:
    """SIGTERM, then SIGKILL after ``timeout``; only the process the test started."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return int(proc.returncode)


# --- the app as processes ----------------------------------------------------------------------


class App:
    """``ambassador serve`` and ``ambassador worker`` processes on one database and Redis."""

    def __init__(self, db_url: str, redis_url: str, emulator_url: str, port: int,
                 workdir: Path, **extra: str) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.workdir = workdir
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("DATABASE_", "REDIS_", "SHOPIFY_", "SALESFORCE_"))}
        self.env.update({
            "APP_ENV": "test",
            "DATABASE_URL": db_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": secrets.token_urlsafe(32),
            "ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "SHOPIFY_API_KEY": API_KEY,
            "SHOPIFY_API_SECRET": API_SECRET,
            "SHOPIFY_API_BASE_URL": emulator_url,
            "APP_URL": self.url,
            "INSTANCE_PATH": str(workdir / "instance"),
            "LOG_LEVEL": "WARNING",
            **extra,
        })
        self.web: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        migrate = subprocess.run([str(VENV_BIN / "ambassador"), "migrate"], env=self.env,
                                 capture_output=True, text=True, timeout=180, check=False)
        assert migrate.returncode == 0, migrate.stderr

    def start_web(self, workers: int = 2) -> subprocess.Popen[bytes]:
        log = (self.workdir / "web.log").open("ab")
        self.web = subprocess.Popen(
            [str(VENV_BIN / "ambassador"), "serve", "--host", "127.0.0.1", "--port",
             str(self.port), "--workers", str(workers)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
        )
        wait_until(self._healthy, 60, "the web app's /healthz")
        return self.web

    def _healthy(self) -> bool:
        assert self.web is not None
        if self.web.poll() is not None:
            pytest.fail(f"the web app exited:\n{self.logs('web')}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def start_worker(self, *args: str) -> subprocess.Popen[bytes]:
        log = (self.workdir / "worker.log").open("ab")
        proc = subprocess.Popen([str(VENV_BIN / "ambassador"), "worker", *args], env=self.env,
                                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        self.workers.append(proc)
        return proc

    def logs(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        for proc in [*self.workers, *([self.web] if self.web else [])]:
            stop_process(proc)


@dataclass
class System:
    """The app as deployed, on servers of the test's own (see :func:`running_system`)."""

    app: App
    emulator: Any
    db: str
    pg: PrivatePostgres
    redis: PrivateRedis


@contextmanager
def running_system(
    workdir: Path, shops: dict[str, str] | None = None, **env: str
) -> Iterator[System]:
    """A private PostgreSQL cluster and redis-server, the Shopify emulator serving ``shops``
    (domain → name, USD; default: ``SHOP``) over HTTP, and the app migrated on them with its
    web process started (workers: ``system.app.start_worker()``); ``env`` adds to the app's
    environment. Everything is stopped and removed at the end."""
    from adapters.shopify.emulator import ShopifyEmulator, serve_in_thread

    redis = PrivateRedis()
    port = free_port()
    emulator = ShopifyEmulator(API_KEY, API_SECRET, app_url=f"http://127.0.0.1:{port}")
    for domain, name in (shops or {SHOP: "Fault Shop"}).items():
        emulator.add_shop(domain, currency="USD", name=name)
    server, emu_url = serve_in_thread(emulator)
    app: App | None = None
    try:
        with private_postgres() as pg:
            db = pg.create_database("ambassador")
            app = App(db, redis.url, emu_url, port, workdir, **env)
            app.start_web()
            yield System(app, emulator, db, pg, redis)
    finally:
        if app is not None:
            app.stop()
        server.shutdown()
        redis.destroy()


# --- the store: install, ambassadors, orders ---------------------------------------------------


@dataclass
class Store:
    """One shop of the emulator, installed in the app."""

    emulator: Any
    app_url: str
    shop: str
    codes: dict[str, int] = field(default_factory=dict)  # code → ambassador id
    orders: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        token = self.emulator.mint_session_token(self.shop)
        return httpx.request(method, f"{self.app_url}/api/v1{path}", timeout=60,
                             headers={"Authorization": f"Bearer {token}"}, **kwargs)

    def install(self) -> None:
        token = self.emulator.mint_session_token(self.shop)
        response = httpx.get(f"{self.app_url}/app", timeout=60,
                             params={"shop": self.shop, "host": "aG9zdA", "id_token": token})
        assert response.status_code == 200, response.text[:500]

    def enrol(self, count: int, timeout: float = 90) -> None:
        """Enrol ``count`` ambassadors; wait until the worker has issued their codes."""
        ids = []
        for i in range(count):
            response = self.api("POST", "/ambassadors", json={
                "email": f"amb{i}.{self.shop.split('.')[0]}@example.com",
                "first_name": f"Amb{i}", "last_name": "Fault"})
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])

        def issued() -> bool:
            states = [self.api("GET", f"/ambassadors/{i}").json() for i in ids]
            if all(s["code_state"] == "active" for s in states):
                self.codes = {s["code"]: s["id"] for s in states}
                return True
            return False

        wait_until(issued, timeout, "the worker to issue the ambassadors' codes", every=0.5)

    def shopping(self, rng: random.Random, count: int, pause: float = 0.0,
                 on_order: Callable[[int], None] | None = None) -> None:
        """``count`` checkouts (most with an ambassador's code, in random case), some refunded
        in part, some cancelled afterwards: each sends its signed webhooks to the app."""
        codes = list(self.codes)
        for n in range(count):
            code = rng.choice(codes) if codes and rng.random() < 0.75 else None
            if code and rng.random() < 0.5:
                code = code.lower()
            order = self.emulator.checkout(
                self.shop, customer_email=f"buyer{rng.randrange(10**9)}@example.net",
                discount_codes=[code] if code else [],
                line_items=[{"title": "Rain Shell", "price": "100.00",
                             "quantity": rng.randint(1, 3)},
                            {"title": "Wool Socks", "price": "20.00", "quantity": 1}],
            )
            with self.lock:
                self.orders.append(order["id"])
            roll = rng.random()
            if roll < 0.15:
                socks = next(li for li in order["line_items"] if li["title"] == "Wool Socks")
                self.emulator.refund(self.shop, order["id"],
                                     line_items=[{"line_item_id": socks["id"], "quantity": 1}])
            elif roll < 0.22:
                self.emulator.cancel(self.shop, order["id"], refund=rng.random() < 0.5)
            if on_order:
                on_order(n)
            if pause:
                time.sleep(pause)


# --- what must hold afterwards -----------------------------------------------------------------


def expected_ledger(store: Store) -> dict[tuple[int, int], Decimal]:
    """Each order's reward, computed from the order's final state in the emulator with the
    domain's pure functions: (order id, ambassador id) → amount (non-zero only)."""
    from connector.domain.attribution import AmbassadorIdentity, attribute
    from connector.domain.ledger import target_reward
    from connector.domain.orders import Order

    by_code = {c.upper(): AmbassadorIdentity(a, c.upper(), True) for c, a in store.codes.items()}
    expected = {}
    for order_id in store.orders:
        order = Order.from_payload(store.emulator.order(store.shop, order_id))
        decision = attribute(order, by_code)
        if decision.ambassador_id is None:
            continue
        reward = target_reward(order, RATE).amount
        if reward:
            expected[(order_id, decision.ambassador_id)] = reward
    return expected


def booked_ledger(db_url: str, shop: str) -> dict[tuple[int, int], Decimal]:
    with psycopg.connect(libpq(db_url)) as conn:
        rows = conn.execute(
            "SELECT e.order_id, e.ambassador_id, sum(e.amount) FROM ledger_entries e"
            " JOIN shops s ON s.id = e.shop_id WHERE s.domain = %s GROUP BY 1, 2", (shop,)
        ).fetchall()
    return {(o, a): Decimal(t).quantize(Decimal("0.01")) for o, a, t in rows if Decimal(t)}


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def inbox_counts(db_url: str) -> dict[str, int]:
    with psycopg.connect(libpq(db_url)) as conn:
        return dict(conn.execute(  # type: ignore[arg-type]
            "SELECT status, count(*) FROM webhook_deliveries GROUP BY status").fetchall())


def drained(db_url: str) -> bool:
    counts = inbox_counts(db_url)
    return not counts.get("pending") and not counts.get("processing")


def acknowledged(emulator: Any) -> set[tuple[str, str]]:
    """(topic, webhook id) of every delivery the app acknowledged with a 2xx."""
    return {(d["topic"], d["webhook_id"]) for d in emulator.deliveries if d["ok"]}


def unacknowledged(emulator: Any) -> set[tuple[str, str]]:
    latest: dict[tuple[str, str], bool] = {}
    for d in emulator.deliveries:
        latest[(d["topic"], d["webhook_id"])] = d["ok"]
    return {k for k, ok in latest.items() if not ok}


@dataclass
class Verdict:
    orders: int
    credited: int
    deliveries: int


def check_invariants(db_url: str, stores: list[Store]) -> Verdict:
    """Nothing lost, nothing doubled: see the module docstring."""
    with psycopg.connect(libpq(db_url)) as conn:
        stored = conn.execute(
            "SELECT topic, webhook_id, status FROM webhook_deliveries").fetchall()
        keys = conn.execute(
            "SELECT count(*), count(DISTINCT idempotency_key) FROM ledger_entries").fetchone()
        balances = conn.execute(
            "SELECT s.ambassador_id, s.balance, coalesce(sum(e.amount), 0)"
            " FROM ambassador_stats s LEFT JOIN ledger_entries e"
            " ON e.ambassador_id = s.ambassador_id GROUP BY 1, 2").fetchall()
    seen: dict[tuple[str, str], str] = {}
    for topic, webhook_id, status in stored:
        assert (topic, webhook_id) not in seen, f"stored twice: {topic} {webhook_id}"
        seen[(topic, webhook_id)] = status
    order_topics = ("orders/", "refunds/")
    emulators = {id(s.emulator): s.emulator for s in stores}
    from connector.domain.webhooks import KNOWN_TOPICS

    acked = {k for e in emulators.values() for k in acknowledged(e) if k[0] in KNOWN_TOPICS}
    lost = {k for k in acked if k not in seen}
    assert not lost, f"{len(lost)} acknowledged webhooks not stored, e.g. {sorted(lost)[:3]}"
    unapplied = {k: v for k, v in seen.items() if k[0].startswith(order_topics)
                 and v != "processed"}
    assert not unapplied, f"{len(unapplied)} deliveries not applied: {list(unapplied.items())[:5]}"
    never = set().union(*(unacknowledged(e) for e in emulators.values()))
    assert not never, f"{len(never)} webhooks never acknowledged, e.g. {sorted(never)[:3]}"
    assert keys is not None and keys[0] == keys[1], "an idempotency key repeats"
    for ambassador_id, balance, total in balances:
        assert Decimal(balance) == Decimal(total), f"ambassador {ambassador_id}: stats drifted"
    credited = 0
    for store in stores:
        expected = expected_ledger(store)
        booked = booked_ledger(db_url, store.shop)
        diff = {k: (booked.get(k), expected.get(k)) for k in set(booked) | set(expected)
                if booked.get(k) != expected.get(k)}
        assert not diff, f"{store.shop}: ledger ≠ f(final orders) for {len(diff)} orders " \
                         f"(booked, expected): {dict(list(diff.items())[:5])}"
        credited += len(expected)
    assert credited > 0, "no order was credited: the check proved nothing"
    return Verdict(sum(len(s.orders) for s in stores), credited, len(seen))


def json_dumps(value: Any) -> str:
    return json.dumps(value, default=str)
