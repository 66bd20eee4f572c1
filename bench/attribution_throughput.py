"""Attribution throughput: queued order events applied by one worker process, ours next to naive.

The issue: "10,000 queued order events on this machine: events per second applied by one worker
process, next to the naive design (one RQ job per webhook on RQ's default (forking) Worker)
measured in the same run. Target: ≥ 1,000 events/s per worker process, ≥ 20 × the naive design,
and the ledger identical in both."

The data, built deterministically (``--seed``) and inserted with the app's own repositories:

* one installed shop with three tiers (8 %, 10 %, 12.5 %) and ~200 active ambassadors (plus a
  few paused ones), each with a code;
* orders made from Shopify's own order fixture (~11 KB bodies, 1-3 lines): ~60 % carry an
  ambassador's code typed in random case (a few of them the ambassador's own order: a
  self-referral, a few a paused ambassador's code), ~10 % an unknown code, the rest none;
  buyers drawn from a pool, so some are returning customers;
* per order: ``orders/create`` (pending or paid), ``orders/paid`` (the same order again),
  ``orders/updated`` for about a third (a cancellation for some), ``refunds/create`` for about
  one in eight (with an ``orders/updated`` carrying the refund for half of those), and ~3 %
  duplicate deliveries (same event, new webhook id); arrival times are jittered, so some
  events arrive out of order (a refund before its order, a stale update after a newer one);
* the first ``--events`` of them in arrival order, stored in the inbox with ``uow.inbox.add``
  (the intake's own INSERT), in a template database that every run below copies.

The runs (each on its own copy of the template, so all start from the same state and ids):

* **ours**: one ``ambassador worker --burst`` process (``REDIS_URL`` set; one
  ``process_inbox`` job triggered the way intake triggers it), which drains the inbox the way
  the app's ``connector.services.inbox`` does it at the time of the run (batches claimed
  with ``SKIP LOCKED``; the table reports the commits per event it made).
* **naive**: one RQ job per delivery (``bench/naive_jobs.py``: the app's own handler for one
  delivery, one transaction each; the app's modules and container preloaded before forking, a
  new database connection in every horse) on RQ's default forking ``Worker`` in burst mode. It
  is much slower, so it gets the first ``--naive-events`` deliveries only (said in the table);
  its rate is what one worker sustains, which does not depend on N.
* **ledger check**: the same first ``--naive-events`` deliveries applied by ours (in-process,
  with a statement counter) on a third copy; that ledger must equal the naive one: the
  non-zero sum per (ambassador, order), the attribution record of every order (ambassador,
  reason, reward, base), every ambassador's statistics, the holds of rewarded orders, and the
  delivery statuses. (Not the number of entries, nor the statistics' ``reversed`` total of
  reversal entries: one at a time, an order credited and then partly refunded within what a
  batch applies together books a commission and a reversal where the batch books the net
  commission.)

Rates are measured in the database: the events applied after the first commit ÷ (last
``processed_at`` − first) (the deliveries of one batch share one ``processed_at``, the moment
they were applied), i.e. the sustained rate of the worker once started; the wall time of the
worker process, start-up and shutdown included, is reported next to it. CPU per event: the
worker process with its children (``getrusage``), and PostgreSQL (``/proc``: its shared
processes and this database's backends; ended backends are counted in the postmaster, so
another workload on the same server shows up there).

Self-contained: fresh databases (``ambassador_bench_<pid>_*``), a Redis database index of its own
(flushed before and after), worker processes stopped at the end.

    .venv/bin/python bench/attribution_throughput.py            # about 2.5 minutes
    .venv/bin/python bench/attribution_throughput.py --quick    # about 25 seconds
    .venv/bin/python bench/attribution_throughput.py --quick --py-spy /tmp/spy  # profile ours
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: make ``bench`` importable like the app's packages

from bench.common import (  # noqa: E402
    DEFAULT_PG_URL,
    VENV_BIN,
    Row,
    app_env,
    bench_redis,
    busy_notes,
    cleanup_on_sigterm,
    databases,
    dbname,
    fmt,
    idle_check,
    libpq,
    machine_lines,
    met,
    ratio,
    report,
    sqlalchemy_url,
    stop,
)
from connector.services.inbox import BATCH_SIZE  # noqa: E402

NAME = "attribution_throughput"
TITLE = "Attribution throughput"
SHOP = "ambassador-bench.myshopify.com"
API_VERSION = "2026-07"
FIXTURES = ROOT / "tests" / "fixtures" / "shopify"
#: Database 12: not the app's default (0), the tests' (14) nor webhook_intake's (13).
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"
NAIVE_QUEUE = "bench-naive-attribution"

#: After a worker exits: its PostgreSQL backends flush their statistics (commit counts) and are
#: reaped (their CPU time moves to the postmaster) before the figures are read.
STATS_SETTLE_S = 1.0

TARGET_RATE = 1000.0  # events/s per worker process
TARGET_SPEEDUP = 20.0  # × the naive design
T0 = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)  # orders are placed from here on

ACTIVE_AMBASSADORS = 200
PAUSED_AMBASSADORS = 10
BUYERS = 4000
TIERS = (("Bronze", "8"), ("Silver", "10"), ("Gold", "12.5"))
FIRST_NAMES = (
    "ava ben chloe dan emma finn grace hugo isla jack kate leo mia noah olivia paul quinn rose "
    "sam tara uma victor wren xavier yara zoe amir bella carlos dina eli fatima gus hana ivan "
    "jade kofi lina marco nina omar"
).split()
LAST_NAMES = "smith jones brown garcia miller davis lopez wilson moore taylor".split()


@dataclass(frozen=True)
class Plan:
    name: str
    events: int
    naive_events: int

    @classmethod
    def full(cls) -> Plan:
        return cls("full", 10_000, 500)

    @classmethod
    def quick(cls) -> Plan:
        return cls("quick", 1_000, 100)


# --- the data ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AmbassadorSeed:
    email: str
    first_name: str
    last_name: str
    customer_id: int | None
    code: str
    active: bool
    tier: int  # index into TIERS


@dataclass(frozen=True)
class Event:
    arrival: float  # seconds after T0
    topic: str
    webhook_id: str
    event_id: str
    triggered_at: str
    body: str


@dataclass
class EventMix:
    events: list[Event]
    orders: int
    by_topic: dict[str, int] = field(default_factory=dict)
    with_ambassador_code: float = 0.0
    duplicates: int = 0
    out_of_order: int = 0  # events that arrived before an earlier event of the same order


def make_ambassadors(rng: random.Random) -> list[AmbassadorSeed]:
    people = []
    for i in range(ACTIVE_AMBASSADORS + PAUSED_AMBASSADORS):
        first = FIRST_NAMES[i % len(FIRST_NAMES)]
        last = LAST_NAMES[(i // len(FIRST_NAMES)) % len(LAST_NAMES)]
        people.append(
            AmbassadorSeed(
                email=f"{first}.{last}{i}@example.com",
                first_name=first.title(),
                last_name=last.title(),
                customer_id=7_000_000 + i if rng.random() < 0.8 else None,
                code=f"{first.upper()}{i:03d}",
                active=i < ACTIVE_AMBASSADORS,
                tier=rng.choices(range(len(TIERS)), weights=(6, 3, 1))[0],
            )
        )
    return people


def _ts(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def _money(amount: Decimal) -> dict[str, Any]:
    value = f"{amount:.2f}"
    return {
        "shop_money": {"amount": value, "currency_code": "USD"},
        "presentment_money": {"amount": value, "currency_code": "USD"},
    }


def _random_case(code: str, rng: random.Random) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in code)


class EventBuilder:
    """Shopify-shaped order and refund bodies, made from the fixtures in ``tests/fixtures``."""

    def __init__(self, ambassadors: list[AmbassadorSeed], seed: int) -> None:
        self.rng = random.Random(seed)
        self.ambassadors = ambassadors
        self.active = [a for a in ambassadors if a.active]
        self.paused = [a for a in ambassadors if not a.active]
        # A few ambassadors sell most: weights ~ 1/rank (Zipf-like).
        self.weights = [1 / (k + 1) for k in range(len(self.active))]
        self.order_tpl = json.loads(
            (FIXTURES / "order_with_discount_code_TENOFF.json").read_text()
        )["order"]
        self.refund_tpl = json.loads((FIXTURES / "refund_it_broke.json").read_text())["refund"]
        self.buyer_created = {
            b: -self.rng.uniform(0, 400) * 86400 if self.rng.random() < 0.5 else None
            for b in range(BUYERS)
        }

    def _id(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def order(self, k: int) -> tuple[int, dict[str, Any], list[tuple[int, Decimal]], bool]:
        """Order ``k``: its id, its body as created, (line id, paid amount) per line, and
        whether it carries an ambassador's code."""
        rng = self.rng
        order_id = 5_500_000_000 + k
        placed = k * 2.0  # an order every 2 s of shop time
        roll = rng.random()
        owner: AmbassadorSeed | None = None
        code: str | None = None
        if roll < 0.60:
            owner = (
                rng.choice(self.paused)
                if rng.random() < 0.04
                else rng.choices(self.active, weights=self.weights)[0]
            )
            code = _random_case(owner.code, rng)
        elif roll < 0.70:
            code = rng.choice(["WELCOME10", "summer15", "FREESHIP"])
        buyer = rng.randrange(BUYERS)
        email = f"buyer{buyer}@example.net"
        customer_id: int | None = 8_000_000 + buyer
        customer_created = self.buyer_created[buyer]
        street, postcode = f"{buyer % 977} Chestnut Street", f"{40000 + buyer % 313}"
        if owner is not None and rng.random() < 0.03:  # the ambassador's own order
            email, customer_id, customer_created = owner.email, owner.customer_id, -30 * 86400
        d = dict(self.order_tpl)
        d.update(
            id=order_id,
            admin_graphql_api_id=f"gid://shopify/Order/{order_id}",
            name=f"#{1000 + k}",
            number=k,
            order_number=1000 + k,
            token=f"{order_id:x}",
            created_at=_ts(placed),
            processed_at=_ts(placed),
            updated_at=_ts(placed),
            cancelled_at=None,
            cancel_reason=None,
            financial_status="pending",
            email=email,
            contact_email=email,
            phone=None,
            currency="USD",
            presentment_currency="USD",
            test=False,
            refunds=[],
        )
        d["customer"] = {
            **self.order_tpl["customer"],
            "id": customer_id,
            "email": email,
            "phone": None,
            "created_at": _ts(customer_created if customer_created is not None else placed - 60),
            "admin_graphql_api_id": f"gid://shopify/Customer/{customer_id}",
        }
        address = {**self.order_tpl["shipping_address"], "address1": street, "zip": postcode}
        d["shipping_address"] = address
        d["billing_address"] = {**self.order_tpl["billing_address"], **address}
        lines = []
        paid_lines = []
        total_discount = Decimal(0)
        templates = self.order_tpl["line_items"]
        for j in range(rng.randint(1, len(templates))):
            line_id = order_id * 10 + j
            price = Decimal(rng.randrange(1500, 15000)) / 100
            quantity = rng.randint(1, 3)
            discount = (price * quantity * Decimal("0.10")).quantize(Decimal("0.01")) if code else 0
            total_discount += discount
            allocations = (
                [
                    {
                        "amount": f"{discount:.2f}",
                        "amount_set": _money(Decimal(discount)),
                        "discount_application_index": 0,
                    }
                ]
                if code
                else []
            )
            lines.append(
                {
                    **templates[j],
                    "id": line_id,
                    "admin_graphql_api_id": f"gid://shopify/LineItem/{line_id}",
                    "price": f"{price:.2f}",
                    "price_set": _money(price),
                    "quantity": quantity,
                    "current_quantity": quantity,
                    "total_discount": f"{discount:.2f}",
                    "total_discount_set": _money(Decimal(discount)),
                    "discount_allocations": allocations,
                }
            )
            paid_lines.append((line_id, price - Decimal(discount) / quantity))
        d["line_items"] = lines
        if code:
            d["discount_codes"] = [
                {"code": code, "amount": f"{total_discount:.2f}", "type": "percentage"}
            ]
            d["discount_applications"] = [
                {
                    **self.order_tpl["discount_applications"][0],
                    "code": code,
                    "value": "10.0",
                    "value_type": "percentage",
                }
            ]
        else:
            d["discount_codes"] = []
            d["discount_applications"] = []
        d["total_discounts"] = f"{total_discount:.2f}"
        return order_id, d, paid_lines, owner is not None

    def refund(self, refund_id: int, order_id: int, at: float, line: tuple[int, Decimal]) -> dict:
        line_id, paid = line
        item = dict(self.refund_tpl["refund_line_items"][0])
        item.update(
            id=refund_id * 10,
            line_item_id=line_id,
            quantity=1,
            subtotal=float(paid.quantize(Decimal("0.01"))),
            subtotal_set=_money(paid),
        )
        return {
            **self.refund_tpl,
            "id": refund_id,
            "order_id": order_id,
            "created_at": _ts(at),
            "processed_at": _ts(at),
            "admin_graphql_api_id": f"gid://shopify/Refund/{refund_id}",
            "refund_line_items": [item],
        }

    def build(self, count: int) -> EventMix:
        rng = self.rng
        # (arrival, happened, order id, topic, event id, body)
        raw: list[tuple[float, float, int, str, str, str]] = []
        orders = with_code = 0
        k = 0
        # Orders are made until their events reach the count; the events are then taken in
        # arrival order (the last order's late events, if any, are left out).
        while len(raw) < count:
            order_id, body, lines, ambassador_code = self.order(k)
            placed = k * 2.0
            k += 1
            orders += 1
            with_code += ambassador_code
            versions: list[tuple[float, str, dict[str, Any]]] = []
            paid_at = placed if rng.random() < 0.6 else placed + rng.uniform(10, 300)
            created = {**body, "financial_status": "paid" if paid_at == placed else "pending"}
            versions.append((placed, "orders/create", created))
            versions.append(
                (
                    paid_at + 1,
                    "orders/paid",
                    {**body, "financial_status": "paid", "updated_at": _ts(paid_at + 1)},
                )
            )
            state = {**body, "financial_status": "paid"}
            if rng.random() < 0.12:  # a refund of one unit of the first line
                at = paid_at + rng.uniform(120, 1800)
                refund = self.refund(order_id * 10 + 1, order_id, at, lines[0])
                versions.append((at, "refunds/create", refund))
                if rng.random() < 0.5:
                    state = {
                        **state,
                        "financial_status": "partially_refunded",
                        "refunds": [{**refund, "order_id": order_id}],
                        "updated_at": _ts(at + 2),
                    }
                    versions.append((at + 2, "orders/updated", state))
            if rng.random() < 0.33:
                at = paid_at + rng.uniform(60, 900)
                update = {**state, "updated_at": _ts(at), "tags": "vip"}
                if rng.random() < 0.15:
                    update.update(
                        cancelled_at=_ts(at), cancel_reason="customer", financial_status="refunded"
                    )
                versions.append((at, "orders/updated", update))
            for happened, topic, payload in versions:
                text = json.dumps(payload, separators=(",", ":"))
                event_id = self._id()
                arrival = happened + rng.expovariate(1 / 3.0)  # delivery delay, mean 3 s
                raw.append((arrival, happened, order_id, topic, event_id, text))
                if rng.random() < 0.03:  # Shopify delivered it twice
                    again = arrival + rng.uniform(5, 600)
                    raw.append((again, happened, order_id, topic, event_id, text))
        raw.sort(key=lambda r: r[0])
        raw = raw[:count]
        events = [
            Event(
                arrival=arrival,
                topic=topic,
                webhook_id=self._id(),
                event_id=event_id,
                triggered_at=(T0 + timedelta(seconds=happened)).strftime(
                    "%Y-%m-%dT%H:%M:%S.%f000Z"
                ),
                body=text,
            )
            for arrival, happened, _, topic, event_id, text in raw
        ]
        by_topic: dict[str, int] = {}
        for e in events:
            by_topic[e.topic] = by_topic.get(e.topic, 0) + 1
        latest: dict[int, float] = {}
        out_of_order = duplicates = 0
        seen: set[str] = set()
        for _, happened, order_id, _, event_id, _ in raw:
            out_of_order += happened < latest.get(order_id, happened)
            latest[order_id] = max(latest.get(order_id, happened), happened)
            duplicates += event_id in seen
            seen.add(event_id)
        return EventMix(
            events,
            orders=len({r[2] for r in raw}),
            by_topic=by_topic,
            with_ambassador_code=with_code / max(orders, 1),
            duplicates=duplicates,
            out_of_order=out_of_order,
        )


# --- seeding -----------------------------------------------------------------------------------


def seed(
    db_url: str, encryption_key: str, ambassadors: list[AmbassadorSeed], mix: EventMix
) -> None:
    """Shop, tiers, ambassadors and the inbox, with the app's repositories (one transaction
    for the program, one for the inbox)."""
    from adapters.clock import SystemClock
    from adapters.crypto import TokenCipher
    from adapters.db.engine import make_engine
    from adapters.db.unit_of_work import SqlAlchemyUnitOfWork
    from connector.domain.ambassadors import Ambassador, AmbassadorStatus, CodeState
    from connector.domain.shops import OfflineToken, Shop, ShopStatus
    from connector.domain.tiers import Tier
    from connector.domain.webhooks import IncomingWebhook

    engine = make_engine(sqlalchemy_url(db_url))
    try:
        uow = SqlAlchemyUnitOfWork(engine, TokenCipher(encryption_key), SystemClock())
        with uow:
            token = OfflineToken("shpat_bench", "read_orders,write_discounts", None, None, None)
            shop = uow.shops.save(
                Shop(
                    None,
                    SHOP,
                    ShopStatus.INSTALLED,
                    token=token,
                    name="Bench Shop",
                    currency="USD",
                    installed_at=T0 - timedelta(days=30),
                )
            )
            assert shop.id is not None
            tiers = [
                uow.program.save_tier(shop.id, Tier(None, name, i + 1, Decimal(rate)))
                for i, (name, rate) in enumerate(TIERS)
            ]
            for a in ambassadors:
                added = uow.ambassadors.add(
                    Ambassador(
                        None,
                        shop.id,
                        a.email,
                        AmbassadorStatus.ACTIVE if a.active else AmbassadorStatus.PAUSED,
                        first_name=a.first_name,
                        last_name=a.last_name,
                        customer_id=a.customer_id,
                        tier_id=tiers[a.tier].id,
                        code=a.code,
                        code_state=CodeState.ACTIVE if a.active else CodeState.INACTIVE,
                        source="bench",
                        since=T0 - timedelta(days=60),
                    )
                )
                assert added is not None
            uow.commit()
        received = datetime.now(UTC)
        with uow:
            for e in mix.events:
                uow.inbox.add(
                    IncomingWebhook(
                        e.topic, e.webhook_id, SHOP, e.body, API_VERSION, e.event_id, e.triggered_at
                    ),
                    received,
                )
            uow.commit()
    finally:
        engine.dispose()


def keep_first(db_url: str, count: int) -> None:
    """Leave only the first ``count`` deliveries (by arrival) in the inbox of this copy."""
    with psycopg.connect(libpq(db_url)) as conn:
        conn.execute(
            "DELETE FROM webhook_deliveries WHERE id NOT IN "
            "(SELECT id FROM webhook_deliveries ORDER BY id LIMIT %s)",
            (count,),
        )


# --- measuring ---------------------------------------------------------------------------------


#: A PostgreSQL client backend's process title names its client: "... 127.0.0.1(5432) idle".
PG_CLIENT_BACKEND = re.compile(r"\(\d+\) |\[local\]")


def postgres_cpu(dbname_: str) -> float:
    """CPU seconds of PostgreSQL: its shared processes and the live backends of ``dbname_``
    (backends that ended count in the postmaster, whichever database they served)."""
    total = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
            comm = raw[raw.index("(") + 1 : raw.rindex(")")]
            if not comm.startswith("postgres"):
                continue
            title = (
                Path(entry.path, "cmdline")
                .read_bytes()
                .replace(b"\0", b" ")
                .decode(errors="replace")
            )
        except OSError:
            continue
        if PG_CLIENT_BACKEND.search(title) and dbname_ not in title:
            continue  # another database's connection (another workload on this server)
        fields = raw[raw.rindex(")") + 2 :].split()
        total += sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return total


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class RunResult:
    label: str
    applied: int = 0  # deliveries processed or skipped
    failed: int = 0
    pending: int = 0
    window_s: float | None = None  # first to last processed_at
    first_commit: int = 1  # deliveries that share the first processed_at
    wall_s: float | None = None  # worker process start to exit
    worker_cpu_s: float = 0.0
    postgres_cpu_s: float = 0.0
    commits: int = 0
    timed_out: bool = False
    log_tail: str = ""

    @property
    def rate(self) -> float | None:
        """Events after the first commit ÷ the time from the first commit to the last (a
        batch's deliveries share one ``processed_at``, the moment they were applied)."""
        if not self.window_s or self.applied - self.first_commit < 1:
            return None
        return (self.applied - self.first_commit) / self.window_s

    @property
    def wall_rate(self) -> float | None:
        return self.applied / self.wall_s if self.wall_s else None

    def per_event_ms(self, seconds: float) -> float | None:
        return 1000 * seconds / self.applied if self.applied else None


def inbox_state(db_url: str) -> tuple[dict[str, int], float | None, int, int]:
    with psycopg.connect(libpq(db_url)) as conn:
        counts = dict(
            conn.execute("SELECT status, count(*) FROM webhook_deliveries GROUP BY 1").fetchall()
        )
        first, last = conn.execute(
            "SELECT min(processed_at), max(processed_at) FROM webhook_deliveries"
            " WHERE status IN ('processed', 'skipped')"
        ).fetchone()  # type: ignore[misc]
        at_first = conn.execute(
            "SELECT count(*) FROM webhook_deliveries WHERE processed_at = %s", (first,)
        ).fetchone()[0]  # type: ignore[index]
        commits = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()[0]  # type: ignore[index]
    window = (last - first).total_seconds() if first and last else None
    return counts, window, int(commits), int(at_first)


@contextmanager
def measured(label: str, db_url: str) -> Iterator[RunResult]:
    result = RunResult(label)
    _, _, commits0, _ = inbox_state(db_url)
    cpu0, pg0 = children_cpu(), postgres_cpu(dbname(db_url))
    yield result
    time.sleep(STATS_SETTLE_S)
    result.worker_cpu_s = children_cpu() - cpu0
    result.postgres_cpu_s = postgres_cpu(dbname(db_url)) - pg0
    counts, result.window_s, commits1, result.first_commit = inbox_state(db_url)
    result.commits = commits1 - commits0 - 1  # the sample's own transaction
    result.applied = counts.get("processed", 0) + counts.get("skipped", 0)
    result.failed = counts.get("failed", 0)
    result.pending = counts.get("pending", 0) + counts.get("processing", 0)


def run_process(
    cmd: list[str], env: dict[str, str], log: Path, timeout: float
) -> tuple[float, bool]:
    """Run a worker process to its end (or ``timeout``); (wall seconds, timed out)."""
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        proc.wait(timeout)
        return time.monotonic() - started, False
    except subprocess.TimeoutExpired:
        return time.monotonic() - started, True
    finally:
        stop(proc)


def profiled(cmd: list[str], profile: Path | None) -> list[str]:
    """``cmd`` under ``py-spy record`` (raw collapsed stacks, subprocesses included)."""
    if profile is None:
        return cmd
    spy = VENV_BIN / "py-spy"
    return [
        str(spy),
        "record",
        "--subprocesses",
        "--format",
        "raw",
        "--rate",
        "200",
        "--output",
        str(profile),
        "--",
        *cmd,
    ]


def run_ours(
    db_url: str,
    env: dict[str, str],
    client: redis.Redis,
    logdir: Path,
    timeout: float,
    profile: Path | None = None,
) -> RunResult:
    """One ``ambassador worker --burst`` after one trigger, as intake leaves it."""
    from adapters.queue.rq_queue import RqJobQueue
    from connector.ports import Job

    client.flushdb()
    RqJobQueue(client).trigger(Job.PROCESS_INBOX)
    log = logdir / "worker-ours.log"
    with measured("ours", db_url) as result:
        result.wall_s, result.timed_out = run_process(
            profiled([str(VENV_BIN / "ambassador"), "worker", "--burst"], profile),
            {**env, "DATABASE_URL": db_url, "LOG_LEVEL": "WARNING"},
            log,
            timeout,
        )
    result.log_tail = log.read_text(errors="replace")[-2000:]
    return result


def run_naive(
    db_url: str,
    env: dict[str, str],
    client: redis.Redis,
    logdir: Path,
    timeout: float,
    profile: Path | None = None,
) -> RunResult:
    """One RQ job per delivery, on RQ's default forking Worker in burst mode."""
    from rq import Queue

    client.flushdb()
    with psycopg.connect(libpq(db_url)) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM webhook_deliveries ORDER BY id")]
    queue = Queue(NAIVE_QUEUE, connection=client)
    for start in range(0, len(ids), 1000):
        with client.pipeline() as pipe:
            queue.enqueue_many(
                [
                    Queue.prepare_data("bench.naive_jobs.apply_delivery", args=(i,), timeout=120)
                    for i in ids[start : start + 1000]
                ],
                pipeline=pipe,
            )
            pipe.execute()
    log = logdir / "worker-naive.log"
    with measured("naive", db_url) as result:
        result.wall_s, result.timed_out = run_process(
            profiled([sys.executable, str(ROOT / "bench" / "naive_jobs.py"), NAIVE_QUEUE], profile),
            {**env, "DATABASE_URL": db_url, "LOG_LEVEL": "WARNING"},
            log,
            timeout,
        )
    result.log_tail = log.read_text(errors="replace")[-2000:]
    return result


def run_in_process(db_url: str, encryption_key: str) -> tuple[RunResult, int]:
    """Ours, in this process (no RQ), counting SQL statements: the ledger check's reference."""
    import sqlalchemy as sa

    from adapters import jsonfast
    from adapters.clock import SystemClock
    from adapters.crypto import TokenCipher
    from adapters.db.engine import make_engine
    from adapters.db.unit_of_work import SqlAlchemyUnitOfWork
    from connector.services.handlers import build_handlers
    from connector.services.inbox import process_inbox

    engine = make_engine(sqlalchemy_url(db_url))
    counts = {"statements": 0, "commits": 0}

    def counter(what: str) -> Callable[..., None]:
        return lambda *_: counts.__setitem__(what, counts[what] + 1)

    sa.event.listen(engine, "before_cursor_execute", counter("statements"))
    sa.event.listen(engine, "commit", counter("commits"))
    clock = SystemClock()
    cipher = TokenCipher(encryption_key)
    try:
        with measured("ours in-process", db_url) as result:
            t0 = time.monotonic()
            process_inbox(
                lambda: SqlAlchemyUnitOfWork(engine, cipher, clock),
                build_handlers(clock),
                clock,
                decode=jsonfast.loads,  # as the worker does
            )
            result.wall_s = time.monotonic() - t0
    finally:
        engine.dispose()
    result.commits = counts["commits"]
    return result, counts["statements"]


# --- the ledger --------------------------------------------------------------------------------

#: What must be identical. Sums, not entries: one at a time, an order credited and then
#: (partly) reversed within the same batch books two entries where a batch books the net one
#: (the ledger appends the net change of what it applies together); holds likewise only where
#: the order carries a reward.
LEDGER_QUERIES = {
    "sums per (ambassador, order)": (
        "SELECT ambassador_id, order_id, sum(amount) FROM ledger_entries"
        " GROUP BY 1, 2 HAVING sum(amount) <> 0 ORDER BY 1, 2"
    ),
    "attribution records": (
        "SELECT order_id, ambassador_id, code, reason, rate, base, reward, cancelled"
        " FROM order_attributions ORDER BY order_id"
    ),
    # Not ``reversed``: it totals reversal entries, so it too counts what a batch nets out.
    "ambassador statistics": (
        "SELECT ambassador_id, attributed_orders, attributed_revenue, pending, approved, paid,"
        " balance FROM ambassador_stats ORDER BY ambassador_id"
    ),
    "reward holds": (
        "SELECT w.order_id, w.ambassador_id, w.status FROM order_rewards w WHERE EXISTS ("
        "SELECT 1 FROM ledger_entries e WHERE e.order_id = w.order_id"
        " AND e.ambassador_id = w.ambassador_id HAVING sum(e.amount) <> 0) ORDER BY 1, 2"
    ),
    "delivery statuses": "SELECT id, status FROM webhook_deliveries ORDER BY id",
}


def ledger(db_url: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(libpq(db_url)) as conn:
        found = {name: conn.execute(sql).fetchall() for name, sql in LEDGER_QUERIES.items()}
        found["entries"] = conn.execute("SELECT count(*) FROM ledger_entries").fetchall()
    return found


@dataclass
class LedgerCheck:
    identical: bool
    differences: list[str]
    entries: int
    pairs: int
    credited_orders: int
    ambassadors: int
    total: Decimal


def compare(
    a: dict[str, list[tuple[Any, ...]]], b: dict[str, list[tuple[Any, ...]]]
) -> LedgerCheck:
    differences = []
    for name in LEDGER_QUERIES:
        if a[name] != b[name]:
            only_a = set(a[name]) - set(b[name])
            only_b = set(b[name]) - set(a[name])
            sample = sorted(only_a, key=str)[:1] + sorted(only_b, key=str)[:1]
            differences.append(
                f"{name}: {len(only_a)} rows only in ours, {len(only_b)} only in naive"
                f" (e.g. {sample})"
            )
    pairs = a["sums per (ambassador, order)"]
    return LedgerCheck(
        identical=not differences,
        differences=differences,
        entries=int(a["entries"][0][0]),
        pairs=len(pairs),
        credited_orders=sum(1 for r in a["attribution records"] if r[1] is not None),
        ambassadors=len({r[0] for r in pairs}),
        total=sum((Decimal(r[2]) for r in pairs), Decimal(0)),
    )


# --- report ------------------------------------------------------------------------------------


def summary_rows(ours: RunResult, naive: RunResult, check: LedgerCheck) -> list[Row]:
    speedup = ours.rate / naive.rate if ours.rate and naive.rate else None
    rows: list[Row] = [
        (
            "events applied (processed or skipped)",
            f"{ours.applied:,}",
            f"{naive.applied:,}",
            "—",
            "all",
            met(ours.failed == 0 and ours.pending == 0 and not ours.timed_out),
        ),
        (
            "events/s, one worker process (sustained)",
            fmt(ours.rate, 0),
            fmt(naive.rate, 1),
            ratio(ours.rate, naive.rate, 1),
            f"≥ {TARGET_RATE:,.0f}",
            met(ours.rate is not None and ours.rate >= TARGET_RATE),
        ),
        (
            "speed-up over the naive design",
            "—" if speedup is None else f"{speedup:.1f}×",
            "1×",
            "—",
            f"≥ {TARGET_SPEEDUP:.0f}×",
            met(speedup is not None and speedup >= TARGET_SPEEDUP),
        ),
        (
            "events/s incl. worker start-up and exit",
            fmt(ours.wall_rate, 0),
            fmt(naive.wall_rate, 1),
            ratio(ours.wall_rate, naive.wall_rate, 1),
            "—",
            "—",
        ),
        ("worker wall time (s)", fmt(ours.wall_s, 1), fmt(naive.wall_s, 1), "—", "—", "—"),
        (
            "worker CPU per event (ms)",
            fmt(ours.per_event_ms(ours.worker_cpu_s), 2),
            fmt(naive.per_event_ms(naive.worker_cpu_s), 2),
            ratio(ours.per_event_ms(ours.worker_cpu_s), naive.per_event_ms(naive.worker_cpu_s)),
            "—",
            "—",
        ),
        (
            "PostgreSQL CPU per event (ms)",
            fmt(ours.per_event_ms(ours.postgres_cpu_s), 2),
            fmt(naive.per_event_ms(naive.postgres_cpu_s), 2),
            ratio(ours.per_event_ms(ours.postgres_cpu_s), naive.per_event_ms(naive.postgres_cpu_s)),
            "—",
            "—",
        ),
        (
            "commits per event",
            fmt(ours.commits / max(ours.applied, 1), 2),
            fmt(naive.commits / max(naive.applied, 1), 2),
            "—",
            "—",
            "—",
        ),
        ("failed deliveries", str(ours.failed), str(naive.failed), "—", "0", met(ours.failed == 0)),
        (
            f"ledger identical (first {naive.applied:,} events)",
            "yes" if check.identical else "NO",
            "yes" if check.identical else "NO",
            "—",
            "yes",
            met(check.identical),
        ),
    ]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 events, 100 for the naive")
    parser.add_argument("--events", type=int, help="events for ours (default 10,000)")
    parser.add_argument("--naive-events", type=int, help="events for the naive (default 500)")
    parser.add_argument("--seed", type=int, default=20260701)
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_DATABASE_URL") or DEFAULT_PG_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help="flushed before and after")
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="DIR",
        help="profile our worker with py-spy (raw stacks in DIR/ours.txt; its rate is then lower)",
    )
    args = parser.parse_args(argv)
    cleanup_on_sigterm()
    plan = Plan.quick() if args.quick else Plan.full()
    n = args.events or plan.events
    n_naive = min(args.naive_events or plan.naive_events, n)

    started = time.monotonic()
    busy = idle_check()
    rng = random.Random(args.seed)
    ambassadors = make_ambassadors(rng)
    mix = EventBuilder(ambassadors, args.seed + 1).build(n)
    admin_url = libpq(args.pg_url)
    with (
        tempfile.TemporaryDirectory(prefix="ambassador-bench-") as tmp,
        databases(admin_url) as make_db,
        bench_redis(args.redis_url) as client,
    ):
        workdir = Path(tmp)
        template = make_db("template")
        env = app_env(template, args.redis_url, workdir)
        header = [
            *machine_lines(template, client, plan.name, busy),
            f"shop: {ACTIVE_AMBASSADORS} active + {PAUSED_AMBASSADORS} paused ambassadors in "
            f"{len(TIERS)} tiers; {mix.orders:,} orders; ~"
            f"{mix.with_ambassador_code:.0%} of orders carry an ambassador's code (random case)",
            "events: "
            + ", ".join(f"{t} {c:,}" for t, c in sorted(mix.by_topic.items()))
            + f"; {mix.duplicates} duplicate deliveries, {mix.out_of_order:,} out of order; "
            f"bodies ~{sum(len(e.body) for e in mix.events) // len(mix.events):,} bytes",
            f"ours: 1 × `ambassador worker --burst` (RQ SimpleWorker, inbox drained in batches "
            f"of {BATCH_SIZE}), {n:,} events",
            f"naive: 1 × RQ default Worker (fork per job), one job per event, first "
            f"{n_naive:,} events (the naive rate does not depend on N; fewer keep the run short)",
        ]
        print("\n".join(header), flush=True)
        print(f"seeding {n:,} events ...", flush=True)
        seed(template, env["ENCRYPTION_KEY"], ambassadors, mix)

        ours_db = make_db("ours", template=dbname(template))
        sub_db = make_db("check", template=dbname(template))
        naive_db = make_db("naive", template=dbname(template))
        keep_first(sub_db, n_naive)
        keep_first(naive_db, n_naive)

        print("ours: ambassador worker --burst ...", flush=True)
        spy = args.py_spy
        if spy:
            spy.mkdir(parents=True, exist_ok=True)
        ours = run_ours(
            ours_db, env, client, workdir, max(120.0, n / 20), spy / "ours.txt" if spy else None
        )
        print(
            f"  {ours.applied:,} applied in {fmt(ours.window_s, 2)} s: {fmt(ours.rate, 0)}/s",
            flush=True,
        )
        print("naive: one RQ job per event on a forking Worker ...", flush=True)
        naive = run_naive(
            naive_db,
            env,
            client,
            workdir,
            max(120.0, n_naive / 5),
            spy / "naive.txt" if spy else None,
        )
        print(
            f"  {naive.applied:,} applied in {fmt(naive.window_s, 2)} s: {fmt(naive.rate, 1)}/s",
            flush=True,
        )
        print(f"ledger check: ours in-process on the first {n_naive:,} events ...", flush=True)
        reference, statements = run_in_process(sub_db, env["ENCRYPTION_KEY"])
        check = compare(ledger(sub_db), ledger(naive_db))

    rows = summary_rows(ours, naive, check)
    notes = [
        "ratio = ours ÷ naive. Rates are sustained rates (events after the first commit ÷ first "
        "to last `processed_at`); the "
        "naive ran on the first "
        f"{n_naive:,} events of the same mix (its rate does not depend on N).",
        f"ledger check: {check.entries:,} entries, {check.pairs:,} (ambassador, order) sums, "
        f"{check.credited_orders:,} credited orders, {check.ambassadors} ambassadors, "
        f"total {check.total:,.2f} USD; compared: sums per (ambassador, order), attribution "
        "records, ambassador statistics, reward holds, delivery statuses.",
        f"ours in-process (no RQ, same code, statement counter on): "
        f"{fmt(reference.wall_rate, 0)} events/s (wall); "
        f"{statements / max(reference.applied, 1):.1f} SQL "
        f"statements and {reference.commits / max(reference.applied, 1):.2f} commits per event.",
    ]
    notes += [f"LEDGER DIFFERENCE: {d}" for d in check.differences]
    notes += busy_notes(busy)
    for result in (ours, naive):
        if result.timed_out or result.failed or result.pending:
            notes.append(
                f"{result.label}: timed out={result.timed_out}, failed={result.failed}, "
                f"left={result.pending}; log tail: {result.log_tail[-500:]}"
            )
    report(NAME, TITLE, plan.name, header, rows, notes, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
