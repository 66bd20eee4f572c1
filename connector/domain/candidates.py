"""Ranking customers as ambassador candidates: spend, order count, recency, repeat purchase.

Each of the first three components is the customer's percentile among the store's customers
(the share of them with a lower value, 0–1: robust to a few huge spenders, and equal values get
equal percentiles); repeat purchase is 1 from the second order on. Weights 40/25/20/15. A
customer without an email cannot be enrolled and is not ranked. Equal scores are ordered by the
raw values (spend, orders, recency), then by customer id, so a ranking is stable.

Two ways in, one score: :func:`rank` over a list (exact), and :func:`top_customers` over a
stream of any size with bounded memory: the percentiles come from a uniform sample of at most
``sample_size`` customers (exact when the store has no more than that), and only the best
``keep`` are held, in a heap.
"""

from __future__ import annotations

import heapq
import random
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol, TypeVar

WEIGHTS = (0.40, 0.25, 0.20, 0.15)  # spend, orders, recency, repeat purchase
NEVER = -1e12  # recency of a customer without a known last order: the oldest there is
SAMPLE_SIZE = 20_000

Features = tuple[float, float, float]
C = TypeVar("C", bound="Rankable")


class Rankable(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def email(self) -> str | None: ...

    @property
    def orders(self) -> int: ...

    @property
    def amount_spent(self) -> Decimal: ...

    @property
    def last_order_at(self) -> datetime | None: ...


def features(customer: Rankable, now: datetime) -> Features:
    last = customer.last_order_at
    recency = -(now - last).total_seconds() if last else NEVER
    return float(customer.amount_spent), float(customer.orders), recency


class Scorer:
    """Scores against a reference population (or a uniform sample of it)."""

    def __init__(self, population: Sequence[Features]) -> None:
        self._columns = [sorted(column) for column in zip(*population, strict=True)] or [[], [], []]
        self._span = max(len(population) - 1, 1)

    def score(self, customer: Rankable, now: datetime) -> float:
        values = features(customer, now)
        spend, orders, recency = (
            bisect_left(column, value) / self._span
            for column, value in zip(self._columns, values, strict=True)
        )
        repeat = 1.0 if customer.orders >= 2 else 0.0
        w_spend, w_orders, w_recency, w_repeat = WEIGHTS
        return round(
            w_spend * min(spend, 1.0)
            + w_orders * min(orders, 1.0)
            + w_recency * min(recency, 1.0)
            + w_repeat * repeat,
            4,
        )


def _order(score: float, values: Features, customer_id: int) -> tuple[float, ...]:
    """Larger is better: the score, then the raw values (a sample's percentiles cannot tell
    apart customers above its top, exactly where the best are), then the lower id."""
    return (score, *values, -customer_id)


def rank(customers: Sequence[C], now: datetime) -> list[tuple[float, C]]:
    """Every customer with an email, best first (exact percentiles)."""
    pool = [c for c in customers if c.email]
    scorer = Scorer([features(c, now) for c in pool])
    scored = [(scorer.score(c, now), c) for c in pool]
    scored.sort(key=lambda p: _order(p[0], features(p[1], now), p[1].id), reverse=True)
    return scored


def top_customers(
    customers: Iterable[C],
    now: datetime,
    keep: int,
    *,
    sample_size: int = SAMPLE_SIZE,
    seed: int = 0,
) -> tuple[list[tuple[float, C]], int]:
    """The best ``keep`` customers of a stream, best first, and how many were ranked.

    ``customers`` is iterated twice (a sample first, then the scores), so it must be
    re-iterable (a list, or a file read afresh each time). Memory: ``sample_size`` feature
    triples and ``keep`` customers, whatever the size of the stream. The sample is seeded:
    the same data always gives the same ranking.
    """
    chooser = random.Random(seed)  # sampling, not secrets: a seeded generator is right here
    sample: list[Features] = []
    seen = 0
    for customer in customers:
        if not customer.email:
            continue
        seen += 1
        if len(sample) < sample_size:
            sample.append(features(customer, now))
        else:  # reservoir sampling: each customer ends up in the sample with equal chance
            slot = chooser.randrange(seen)
            if slot < sample_size:
                sample[slot] = features(customer, now)
    scorer = Scorer(sample)
    heap: list[tuple[tuple[float, ...], int, C]] = []  # (order, position, customer): worst first
    for position, customer in enumerate(customers):
        if not customer.email or keep <= 0:
            continue
        score = scorer.score(customer, now)
        entry = (_order(score, features(customer, now), customer.id), position, customer)
        if len(heap) < keep:
            heapq.heappush(heap, entry)
        elif entry[0] > heap[0][0]:
            heapq.heapreplace(heap, entry)
    best = sorted(heap, key=lambda e: e[0], reverse=True)
    return [(order[0], customer) for order, _, customer in best], seen
