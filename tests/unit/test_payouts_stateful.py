"""Fulfilment invariants as a stateful property test (Hypothesis rule-based state machine), with
the real services and repositories (SQLite in memory) and a model of Shopify that creates what
it is asked to, looks up by key, times out after creating, refuses, and whose caller can die
before or after the call (as a ``kill -9`` between Shopify's answer and our commit would).

A sequence interleaves: earnings and late reversals on two ambassadors, holds ending, payout
runs, fulfilment attempts that crash or fail in any way, the sweeper, the clock moving, replays
and releases of failed payouts. After every step:
- Shopify holds at most one reward per payout (exactly once), and every fulfilled payout has
  its reward there, of the payout's value;
- a released (cancelled) payout has nothing in Shopify;
- money is conserved: for each ambassador, approved earnings = payable + every payout not
  released; and the statistics' ``paid`` equals what fulfilled payouts delivered.

150 sequences of up to 25 steps per run (~45 s). Mutations it catches: a retry that creates
without looking first (delivered twice). The pinned example below catches the other: a failed
payout released although an earlier attempt ended without an answer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy.pool import StaticPool

from adapters.clock import FakeClock
from adapters.crypto import TokenCipher
from adapters.db.engine import make_engine
from adapters.db.tables import ledger_entries, metadata, order_rewards, payouts
from adapters.queue.inprocess import InProcessJobQueue
from connector.domain.ambassadors import Ambassador, AmbassadorStatus
from connector.domain.money import Money
from connector.domain.payouts import PayoutSettings, PayoutState, RewardForm
from connector.domain.program import ProgramSettings
from connector.domain.shops import Shop, ShopStatus
from connector.ports import IssuedReward, LedgerEntry, PlatformRetryable, RewardRefused
from connector.services import payouts as service
from tests.order_payloads import T0

KEY = "q1yCY3cJZ9d1qS4rC0qA6GQq1Nq4V2r7HkqK0s4y0mU="
SHOP = "payouts.myshopify.com"

ENGINE = make_engine("sqlite://")
ENGINE.pool = StaticPool(ENGINE.pool._creator)  # one in-memory database for every connection
metadata.create_all(ENGINE)


class Killed(BaseException):
    """The worker died here."""


@dataclass
class Created:
    key: str
    value: Money
    kind: str


class ShopifyModel:
    """Shopify as the fulfilment sees it: what exists, by the key each reward carries."""

    def __init__(self) -> None:
        self.created: list[Created] = []
        self.mode = "ok"  # ok | die_before | die_after | timeout_before | timeout_after | refuse

    def _issue(self, kind: str, key: str, value: Money, since: datetime | None) -> IssuedReward:
        mode, self.mode = self.mode, "ok"  # one attempt per mode
        if mode == "die_before":
            raise Killed()
        if mode == "timeout_before":
            raise PlatformRetryable("read timeout")
        if mode == "refuse":
            raise RewardRefused("customer_not_found", "Customer could not be found")
        if since is not None:
            found = [i for i, c in enumerate(self.created) if c.key == key]
            if found:
                return IssuedReward(f"gid://x/{found[0]}", None, found_existing=True)
        self.created.append(Created(key, value, kind))
        if mode == "die_after":
            raise Killed()
        if mode == "timeout_after":  # Shopify did it; the answer never came back
            raise PlatformRetryable("read timeout")
        return IssuedReward(f"gid://x/{len(self.created) - 1}", None)

    def issue_gift_card(self, shop_domain: str, access_token: str, *, key: str,
                        customer_id: int, value: Money, message: str,
                        since: datetime | None) -> IssuedReward:
        return self._issue("gift_card", key, value, since)

    def issue_store_credit(self, shop_domain: str, access_token: str, *, key: str,
                           customer_id: int, value: Money, since: datetime | None,
                           taken: set[str]) -> IssuedReward:
        return self._issue("store_credit", key, value, since)

    def issue_code(self, shop_domain: str, access_token: str, *, key: str, code: str,
                   customer_id: int, value: Money | None, product_id: str | None, title: str,
                   since: datetime | None) -> IssuedReward:
        assert value is not None
        return self._issue("code", key, value, since)


class FulfilmentMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(T0)
        self.shopify = ShopifyModel()
        self.jobs = InProcessJobQueue(threaded=False)  # nothing registered: enqueue is recorded
        self.ambassadors: list[int] = []
        self.orders: dict[int, tuple[int, Decimal]] = {}  # order → (ambassador, booked)
        self.next_order = 1
        self.runs = 0

    def uow(self) -> Any:
        from adapters.db.unit_of_work import SqlAlchemyUnitOfWork

        return SqlAlchemyUnitOfWork(ENGINE, TokenCipher(KEY), self.clock)

    def ctx(self) -> service.FulfilmentContext:
        return service.FulfilmentContext(
            uow=self.uow, rewards=self.shopify, access_token=lambda shop: "token",
            clock=self.clock, secret=b"secret",
        )

    @initialize(form=st.sampled_from(["gift_card", "store_credit", "discount_code"]),
                minimum=st.sampled_from(["0", "5.00", "20.00"]))
    def reset(self, form: str, minimum: str) -> None:
        with ENGINE.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                conn.execute(table.delete())
        self.jobs.enqueue = lambda *args, **kwargs: None  # type: ignore[method-assign]
        with self.uow() as uow:
            shop = uow.shops.save(Shop(None, SHOP, ShopStatus.INSTALLED, currency="USD"))
            assert shop.id is not None
            self.shop_id = shop.id
            uow.program.save_settings(shop.id, replace(
                ProgramSettings(),
                payouts=PayoutSettings(form=RewardForm(form), minimum=Decimal(minimum)),
            ))
            for n in (1, 2):
                added = uow.ambassadors.add(Ambassador(
                    None, shop.id, f"amb{n}@example.com", AmbassadorStatus.ACTIVE,
                    customer_id=100 + n))
                assert added is not None and added.id is not None
                self.ambassadors.append(added.id)
            uow.commit()
        # Start with a payout of each in flight: most sequences then go straight at delivery.
        self.earn(0, 2500)
        self.earn(1, 1200)
        self.holds_end()
        self.run()

    # --- money coming in ----------------------------------------------------------------

    @rule(who=st.integers(0, 1), cents=st.integers(1, 5000), approve=st.booleans())
    def earn_rule(self, who: int, cents: int, approve: bool) -> None:
        self.earn(who, cents)
        if approve:
            self.holds_end()

    def earn(self, who: int, cents: int) -> None:
        ambassador = self.ambassadors[who]
        order, self.next_order = self.next_order, self.next_order + 1
        amount = Decimal(cents) / 100
        with self.uow() as uow:
            uow.ledger.append(self.shop_id, [LedgerEntry(
                ambassador, order, "commission", amount, "USD", None, None, "earned",
                f"earn:{order}")])
            uow.ledger.hold(self.shop_id, [(order, ambassador, self.clock.now())])
            uow.ledger.refresh_stats(self.shop_id, ambassador, "USD")
            uow.commit()
        self.orders[order] = (ambassador, amount)

    @rule(index=st.integers(0, 1000), share=st.sampled_from(["0.5", "1"]))
    def reverse(self, index: int, share: str) -> None:
        """A refund, perhaps after the order's reward was paid out."""
        if not self.orders:
            return
        order = sorted(self.orders)[index % len(self.orders)]
        ambassador, booked = self.orders[order]
        amount = (booked * Decimal(share)).quantize(Decimal("0.01"))
        if amount <= 0:
            return
        with self.uow() as uow:
            uow.ledger.append(self.shop_id, [LedgerEntry(
                ambassador, order, "reversal", -amount, "USD", None, None, "refund",
                f"reverse:{order}:{booked}")])
            uow.ledger.refresh_stats(self.shop_id, ambassador, "USD")
            uow.commit()
        self.orders[order] = (ambassador, booked - amount)

    @rule()
    def holds_end(self) -> None:
        with self.uow() as uow:
            for shop_id, ambassador_id in uow.ledger.approve_due(self.clock.now()):
                uow.ledger.refresh_stats(shop_id, ambassador_id, None)
            uow.commit()

    # --- money going out ----------------------------------------------------------------

    @rule()
    def run(self) -> None:
        self.runs += 1
        service.run_payouts(self.uow, self.jobs, self.clock, SHOP, period=f"p{self.runs}")

    @rule(index=st.integers(0, 1000),
          mode=st.sampled_from(["ok", "die_before", "die_after", "timeout_before",
                                "timeout_after", "refuse"]),
          wait=st.sampled_from([0, 2, 10, 120]))
    def attempt(self, index: int, mode: str, wait: int) -> None:
        """Time passes, then a worker takes a payout still in flight (a retry, a takeover of a
        dead worker's payout, or a duplicate job) and Shopify behaves as ``mode`` says."""
        self.clock.advance(minutes=wait)
        ids = self.payout_ids(("approved", "fulfilling")) or self.payout_ids()
        if not ids:
            return
        self.shopify.mode = mode
        try:
            service.fulfil_payout(self.ctx(), SHOP, ids[index % len(ids)])
        except Killed:
            pass
        finally:
            self.shopify.mode = "ok"

    @rule()
    def sweep(self) -> None:
        """The sweeper's choice, each fulfilled in turn (what the queued jobs would do)."""
        with self.uow() as uow:
            due = uow.payouts.due(self.clock.now())
        for _, payout_id in due:
            service.fulfil_payout(self.ctx(), SHOP, payout_id)

    @rule(index=st.integers(0, 1000), release=st.booleans())
    def handle_failure(self, index: int, release: bool) -> None:
        with self.uow() as uow:
            failed = uow.payouts.search(self.shop_id, states=[PayoutState.FAILED])
        if not failed:
            return
        payout = failed[index % len(failed)]
        try:
            if release:
                service.cancel(self.uow, SHOP, payout.id, "merchant", "released")
            else:
                service.replay(self.uow, self.jobs, SHOP, payout.id, "merchant")
        except service.PayoutError as exc:
            assert exc.code == "maybe_delivered" and release

    def payout_ids(self, states: tuple[str, ...] = ()) -> list[int]:
        stmt = sa.select(payouts.c.id).order_by(payouts.c.id)
        if states:
            stmt = stmt.where(payouts.c.state.in_(states))
        with ENGINE.connect() as conn:
            return [r[0] for r in conn.execute(stmt)]

    # --- invariants ---------------------------------------------------------------------

    @invariant()
    def exactly_once(self) -> None:
        keys = [c.key for c in self.shopify.created]
        assert len(keys) == len(set(keys)), "a payout was delivered twice"
        with self.uow() as uow:
            every = uow.payouts.search(self.shop_id, limit=10_000)
        by_key = {p.idempotency_key: p for p in every}
        for created in self.shopify.created:
            payout = by_key[created.key]
            assert payout.state is not PayoutState.CANCELLED, "released after delivery"
            assert created.value == Money(payout.value, payout.currency)
        for payout in every:
            if payout.state is PayoutState.FULFILLED:
                assert payout.idempotency_key in keys, "fulfilled without a reward in Shopify"

    @invariant()
    def money_is_conserved(self) -> None:
        if not self.ambassadors:
            return
        with ENGINE.connect() as conn:
            earned = dict(conn.execute(
                sa.select(ledger_entries.c.ambassador_id, sa.func.sum(ledger_entries.c.amount))
                .select_from(ledger_entries.join(order_rewards, sa.and_(
                    order_rewards.c.order_id == ledger_entries.c.order_id,
                    order_rewards.c.ambassador_id == ledger_entries.c.ambassador_id)))
                .where(order_rewards.c.status == "approved")
                .group_by(ledger_entries.c.ambassador_id)).all())
            reserved = dict(conn.execute(
                sa.select(payouts.c.ambassador_id, sa.func.sum(payouts.c.amount))
                .where(payouts.c.state != "cancelled")
                .group_by(payouts.c.ambassador_id)).all())
            delivered = dict(conn.execute(
                sa.select(payouts.c.ambassador_id, sa.func.sum(payouts.c.amount))
                .where(payouts.c.state == "fulfilled")
                .group_by(payouts.c.ambassador_id)).all())
        with self.uow() as uow:
            payable = uow.payouts.payable(self.shop_id, self.ambassadors)
            totals = uow.ledger.totals(self.shop_id, self.ambassadors)
        for ambassador in self.ambassadors:
            approved = Decimal(str(earned.get(ambassador) or 0))
            out = Decimal(str(reserved.get(ambassador) or 0))
            assert payable.get(ambassador, Decimal(0)) + out == approved
            if ambassador in totals:
                assert totals[ambassador].paid == Decimal(str(delivered.get(ambassador) or 0))


FulfilmentMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestFulfilment = FulfilmentMachine.TestCase


def test_a_refusal_after_an_uncertain_attempt_cannot_be_released() -> None:
    """The rule the machine relies on, pinned: timeout (Shopify may have it) → retry refused →
    the merchant's release is refused (only a replay, which looks first, may settle it)."""
    machine = FulfilmentMachine()
    machine.reset(form="gift_card", minimum="0")
    machine.attempt(0, "timeout_after", 0)
    machine.attempt(0, "refuse", 90)
    payout_id = machine.payout_ids()[0]
    try:
        service.cancel(machine.uow, SHOP, payout_id, "merchant", "released")
    except service.PayoutError as exc:
        assert exc.code == "maybe_delivered"
    else:
        raise AssertionError("released a payout Shopify may hold")
    service.replay(machine.uow, machine.jobs, SHOP, payout_id, "merchant")
    assert service.fulfil_payout(machine.ctx(), SHOP, payout_id) == "found"
    machine.exactly_once()
    machine.money_is_conserved()
    assert len(machine.shopify.created) == 1
