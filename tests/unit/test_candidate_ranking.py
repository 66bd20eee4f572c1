"""Candidate ranking: one score for the exact list and the bounded-memory stream."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from connector.domain.candidates import rank, top_customers
from connector.ports import CustomerSummary

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def person(
    cid: int, spent: str, orders: int, days_ago: int | None, email: str | None = "x@example.com"
) -> CustomerSummary:
    return CustomerSummary(
        id=cid,
        email=email,
        first_name="",
        last_name="",
        orders=orders,
        amount_spent=Decimal(spent),
        currency="USD",
        last_order_at=NOW - timedelta(days=days_ago) if days_ago is not None else None,
        created_at=None,
    )


class OnceOnly:
    """An iterable that counts its passes (``top_customers`` must make exactly two)."""

    def __init__(self, items: list[CustomerSummary]) -> None:
        self.items, self.passes = items, 0

    def __iter__(self) -> Iterator[CustomerSummary]:
        self.passes += 1
        return iter(self.items)


def test_spend_orders_recency_and_repeat_rank_in_their_weighted_order() -> None:
    big_recent_repeat = person(1, "900", 9, 2)
    big_old_once = person(2, "1000", 1, 400)
    small_recent_repeat = person(3, "20", 3, 1)
    nobody = person(4, "0", 0, None)
    no_email = person(5, "5000", 50, 0, email=None)
    ranked = rank([nobody, big_old_once, small_recent_repeat, big_recent_repeat, no_email], NOW)
    assert [c.id for _, c in ranked] == [1, 3, 2, 4]  # no email: cannot be enrolled, not ranked
    assert ranked[0][0] > ranked[1][0] > ranked[2][0] > ranked[3][0]
    assert ranked[-1][0] == 0.0 and 0 < ranked[0][0] <= 1


def test_equal_values_get_equal_scores_whatever_the_input_order() -> None:
    a, b = person(10, "50", 2, 5), person(11, "50", 2, 5)
    first = rank([a, b, person(12, "1", 1, 90)], NOW)
    second = rank([b, person(12, "1", 1, 90), a], NOW)
    assert first == second
    assert first[0][0] == first[1][0] and [c.id for _, c in first[:2]] == [10, 11]  # ties by id


def test_the_stream_keeps_only_the_best_and_reads_the_data_twice() -> None:
    people = [person(i, f"{(i * 37) % 500}", i % 7, i % 60) for i in range(1, 400)]
    stream = OnceOnly(people)
    best, seen = top_customers(stream, NOW, 25)
    assert stream.passes == 2 and seen == len(people)
    assert best == rank(people, NOW)[:25]


def test_a_sample_smaller_than_the_store_still_finds_the_best() -> None:
    people = [person(i, f"{i}", 1 + i // 100, 30) for i in range(1, 5001)]
    best, seen = top_customers(people, NOW, 50, sample_size=500)
    exact = {c.id for _, c in rank(people, NOW)[:50]}
    assert seen == 5000
    assert len(exact & {c.id for _, c in best}) >= 45
    again, _ = top_customers(people, NOW, 50, sample_size=500)
    assert again == best  # seeded sample: the same data gives the same ranking


customers = st.lists(
    st.builds(
        person,
        cid=st.integers(1, 10_000),
        spent=st.integers(0, 2_000).map(str),
        orders=st.integers(0, 20),
        days_ago=st.one_of(st.none(), st.integers(0, 800)),
        email=st.sampled_from(["a@example.com", None]),
    ),
    max_size=60,
    unique_by=lambda c: c.id,
)


@settings(max_examples=200, deadline=None)
@given(customers, st.integers(0, 70))
def test_the_stream_equals_the_exact_ranking_when_the_sample_holds_everyone(
    people: list[CustomerSummary], keep: int
) -> None:
    best, seen = top_customers(people, NOW, keep)
    assert best == rank(people, NOW)[:keep]
    assert seen == sum(1 for c in people if c.email)
