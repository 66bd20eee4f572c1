"""Which ambassador an order is credited to, and why: a pure function of the order and the
ambassadors whose codes it carries.

The stated rules, in the order they are applied:
1. Test orders are never credited (``test_order``).
2. Codes are matched case-insensitively against ambassador codes; others are ignored
   (an order whose codes match nobody: ``unknown_code``; without codes: ``no_code``).
3. Each matching ambassador is checked: not active → ``ambassador_not_active``; the buyer is
   the ambassador (same customer → ``self_referral_customer``, same normalised email →
   ``self_referral_email``, same phone → ``self_referral_phone``, same shipping address as one
   of the ambassador's own orders → ``self_referral_address``); with the new-customers-only
   setting, a returning buyer → ``not_new_customer``.
4. Of the ambassadors still eligible, the one whose code gave the larger discount wins; a tie
   goes to the code applied first (``largest_discount_then_first_applied``); the others get
   ``another_code_won``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from connector.domain.orders import Order

RULE = "largest_discount_then_first_applied"


class Reason(StrEnum):
    CREDITED = "credited"
    NO_CODE = "no_code"
    UNKNOWN_CODE = "unknown_code"
    TEST_ORDER = "test_order"
    AMBASSADOR_NOT_ACTIVE = "ambassador_not_active"
    SELF_REFERRAL_CUSTOMER = "self_referral_customer"
    SELF_REFERRAL_EMAIL = "self_referral_email"
    SELF_REFERRAL_PHONE = "self_referral_phone"
    SELF_REFERRAL_ADDRESS = "self_referral_address"
    NOT_NEW_CUSTOMER = "not_new_customer"
    ANOTHER_CODE_WON = "another_code_won"


EXPLANATIONS = {
    Reason.CREDITED: "credited to the ambassador whose code was used",
    Reason.NO_CODE: "the order used no discount code",
    Reason.UNKNOWN_CODE: "no code on the order belongs to an ambassador",
    Reason.TEST_ORDER: "test orders are never credited",
    Reason.AMBASSADOR_NOT_ACTIVE: "the code's ambassador is not active",
    Reason.SELF_REFERRAL_CUSTOMER: "the buyer is the ambassador (same Shopify customer)",
    Reason.SELF_REFERRAL_EMAIL: "the buyer is the ambassador (same email address)",
    Reason.SELF_REFERRAL_PHONE: "the buyer is the ambassador (same phone number)",
    Reason.SELF_REFERRAL_ADDRESS: "shipped to the ambassador's own address",
    Reason.NOT_NEW_CUSTOMER: "the program credits new customers only",
    Reason.ANOTHER_CODE_WON: "another ambassador's code on the same order gave the larger discount",
}


@dataclass(frozen=True)
class AmbassadorIdentity:
    """What the checks need to know about an ambassador."""

    id: int
    code: str
    active: bool
    customer_id: int | None = None
    email: str | None = None  # normalised
    phones: frozenset[str] = field(default_factory=frozenset)
    addresses: frozenset[str] = field(default_factory=frozenset)
    tier_id: int | None = None  # decides the rate of a first credit


@dataclass(frozen=True)
class Candidate:
    ambassador_id: int
    code: str
    discount: Decimal
    verdict: Reason


@dataclass(frozen=True)
class Attribution:
    order_id: int
    ambassador_id: int | None
    code: str | None
    rule: str
    reason: Reason
    candidates: tuple[Candidate, ...]

    @property
    def credited(self) -> bool:
        return self.ambassador_id is not None

    @property
    def explanation(self) -> str:
        return EXPLANATIONS[self.reason]


def _self_referral(order: Order, a: AmbassadorIdentity) -> Reason | None:
    if a.customer_id is not None and order.customer_id == a.customer_id:
        return Reason.SELF_REFERRAL_CUSTOMER
    if a.email and order.email == a.email:
        return Reason.SELF_REFERRAL_EMAIL
    if order.phone and order.phone in a.phones:
        return Reason.SELF_REFERRAL_PHONE
    if order.address and order.address in a.addresses:
        return Reason.SELF_REFERRAL_ADDRESS
    return None


def attribute(
    order: Order,
    by_code: Mapping[str, AmbassadorIdentity],
    *,
    new_customers_only: bool = False,
    returning_customer: bool = False,
) -> Attribution:
    """Decide the order. ``by_code`` maps upper-case codes to ambassadors (any status)."""
    if order.test:
        return Attribution(order.id, None, None, RULE, Reason.TEST_ORDER, ())
    if not order.codes:
        return Attribution(order.id, None, None, RULE, Reason.NO_CODE, ())
    checked: list[tuple[int, Candidate]] = []
    for position, (code, discount) in enumerate(order.codes):
        ambassador = by_code.get(code.upper())
        if ambassador is None:
            continue
        verdict = Reason.CREDITED
        if not ambassador.active:
            verdict = Reason.AMBASSADOR_NOT_ACTIVE
        elif (reason := _self_referral(order, ambassador)) is not None:
            verdict = reason
        elif new_customers_only and returning_customer:
            verdict = Reason.NOT_NEW_CUSTOMER
        checked.append((position, Candidate(ambassador.id, code.upper(), discount, verdict)))
    if not checked:
        return Attribution(order.id, None, None, RULE, Reason.UNKNOWN_CODE, ())
    eligible = [(p, c) for p, c in checked if c.verdict is Reason.CREDITED]
    if not eligible:
        first = checked[0][1]
        return Attribution(order.id, None, None, RULE, first.verdict, tuple(c for _, c in checked))
    _, winner = min(eligible, key=lambda pc: (-pc[1].discount, pc[0]))
    candidates = tuple(
        c
        if c is winner or c.verdict is not Reason.CREDITED
        else Candidate(c.ambassador_id, c.code, c.discount, Reason.ANOTHER_CODE_WON)
        for _, c in checked
    )
    return Attribution(
        order.id, winner.ambassador_id, winner.code, RULE, Reason.CREDITED, candidates
    )
