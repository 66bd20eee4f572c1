"""Ambassador codes in Shopify: issue in bulk, follow the ambassador's status, find drift.

The database says what should be (an active ambassador has a redeemable code; anyone else has
none in Shopify); :func:`sync_codes` makes Shopify match, in batches of 250 on one shared
discount per set of terms. It can be interrupted and re-run at any point: a code is marked
active only after Shopify confirmed it, and adding a code Shopify already holds for us is
detected as ours (no duplicate). A code Shopify refuses as taken moves the ambassador to their
next candidate code (deterministic), and the attempt is audited.

When the program's friend-discount terms change, the discounts that already hold codes are
updated in place first (:func:`apply_terms`): codes keep working, and no second discount is
made for the new terms.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from connector.domain.ambassadors import Ambassador, AuditEntry, CodeState
from connector.domain.program import FriendDiscount
from connector.ports import (
    Clock,
    CodeTaken,
    DiscountPlatform,
    RedeemCodeResult,
    UnitOfWorkFactory,
)
from connector.services.ambassadors import ProgramError, codes_needing_sync_state, next_code

log = logging.getLogger(__name__)

BATCH = 250
MAX_COLLISIONS_PER_RUN = 5

TokenFor = Callable[[str], str]
Progress = Callable[[int, int], None]  # (done, failed) increments


@dataclass
class CodeSyncReport:
    added: int = 0
    removed: int = 0
    collisions: int = 0
    errors: list[str] = field(default_factory=list)
    terms_updated: list[str] = field(default_factory=list)  # discounts given the new terms


def apply_terms(
    uow_factory: UnitOfWorkFactory,
    discounts: DiscountPlatform,
    token: str,
    shop_domain: str,
    shop_id: int,
    terms: FriendDiscount,
) -> list[str]:
    """Give every discount of the shop that holds (or held) ambassador codes the current terms,
    in place (``discountCodeBasicUpdate``), and file them under the new terms. Returns the
    discounts updated.

    Idempotent: once filed under the current terms a discount is not touched again, so a
    second run makes no call. Retryable: the database is changed only after every update
    succeeded; if one fails, the exception propagates with nothing re-filed, and the next run
    updates them all again (an update with the same terms changes nothing in Shopify). A
    discount deleted in Shopify is forgotten (the next sync makes a new one for its codes).
    """
    key = terms.key()
    with uow_factory() as uow:
        filed = uow.program.shared_discounts(shop_id)
        holding = {
            a.discount_gid
            for a in uow.ambassadors.issued_codes(shop_id)
            if a.discount_gid and a.code_state is CodeState.ACTIVE
        }
    stale = sorted(gid for gid in holding | set(filed) if filed.get(gid) != key)
    if not stale:
        return []
    updated: list[str] = []
    gone: list[str] = []
    for discount_gid in stale:
        if discounts.update_code_discount(shop_domain, token, discount_gid, terms):
            updated.append(discount_gid)
        else:
            gone.append(discount_gid)
    with uow_factory() as uow:
        for discount_gid in stale:
            uow.program.forget_shared_discount(shop_id, discount_gid)
        for discount_gid in updated:
            uow.program.add_shared_discount(shop_id, key, discount_gid, terms.title())
        uow.commit()
    log.info(
        "program.codes.terms_applied",
        extra={"shop": shop_domain, "updated": len(updated), "gone": len(gone)},
    )
    return updated


def sync_codes(
    uow_factory: UnitOfWorkFactory,
    discounts: DiscountPlatform,
    token_for: TokenFor,
    clock: Clock,
    shop_domain: str,
    *,
    batch: int = BATCH,
    progress: Progress | None = None,
) -> CodeSyncReport:
    report = CodeSyncReport()
    with uow_factory() as uow:
        shop = uow.shops.get(shop_domain)
        if shop is None or not shop.installed or shop.id is None:
            return report
        shop_id = shop.id
        settings = uow.program.settings(shop_id)
        retirements = uow.ambassadors.pending_retirements(shop_id)
    terms = settings.friend_discount
    token = token_for(shop_domain)

    for retirement_id, retired_discount, redeem_gid in retirements:
        discounts.delete_redeem_codes(shop_domain, token, retired_discount, [redeem_gid])
        with uow_factory() as uow:
            uow.ambassadors.retirement_done(shop_id, retirement_id)
            uow.commit()

    # Before any code is added: a failure here stops the sync (the job retries), so new codes
    # never go to a second discount while the terms are being changed.
    report.terms_updated = apply_terms(uow_factory, discounts, token, shop_domain, shop_id, terms)

    discount_gid: str | None
    with uow_factory() as uow:
        discount_gid = uow.program.shared_discount(shop_id, terms.key())
    collisions: dict[int, int] = {}
    given_up: set[int] = set()
    while True:
        with uow_factory() as uow:
            work = [
                a
                for a in uow.ambassadors.needing_code_sync(shop_id, batch + len(given_up))
                if a.id not in given_up
            ][:batch]
        if not work:
            break
        adds = [a for a in work if codes_needing_sync_state(a) is CodeState.ACTIVE]
        removes = [a for a in work if codes_needing_sync_state(a) is CodeState.INACTIVE]
        if removes:
            _remove(uow_factory, discounts, token, clock, shop_domain, shop_id, removes, report)
        if adds and discount_gid is None:
            discount_gid, adds = _create_discount(
                uow_factory,
                discounts,
                token,
                clock,
                shop_domain,
                shop_id,
                terms,
                adds,
                collisions,
                given_up,
                report,
            )
        if adds and discount_gid is not None:
            results = discounts.add_redeem_codes(
                shop_domain, token, discount_gid, [a.code or "" for a in adds]
            )
            _record(
                uow_factory,
                clock,
                shop_id,
                discount_gid,
                adds,
                results,
                collisions,
                given_up,
                report,
            )
        if progress:
            progress(len(adds) + len(removes), 0)
    return report


def _create_discount(
    uow_factory: UnitOfWorkFactory,
    discounts: DiscountPlatform,
    token: str,
    clock: Clock,
    shop_domain: str,
    shop_id: int,
    terms: FriendDiscount,
    adds: list[Ambassador],
    collisions: dict[int, int],
    given_up: set[int],
    report: CodeSyncReport,
) -> tuple[str | None, list[Ambassador]]:
    first = adds[0]
    try:
        discount_gid, result = discounts.create_code_discount(
            shop_domain, token, terms, terms.title(), first.code or ""
        )
    except CodeTaken:
        _collide(uow_factory, clock, shop_id, first, collisions, given_up, report)
        return None, adds[1:]
    with uow_factory() as uow:
        uow.program.add_shared_discount(shop_id, terms.key(), discount_gid, terms.title())
        uow.commit()
    _record(
        uow_factory, clock, shop_id, discount_gid, [first], [result], collisions, given_up, report
    )
    return discount_gid, adds[1:]


def _record(
    uow_factory: UnitOfWorkFactory,
    clock: Clock,
    shop_id: int,
    discount_gid: str,
    adds: list[Ambassador],
    results: list[RedeemCodeResult],
    collisions: dict[int, int],
    given_up: set[int],
    report: CodeSyncReport,
) -> None:
    for ambassador, result in zip(adds, results, strict=True):
        assert ambassador.id is not None
        if result.redeem_code_gid:
            with uow_factory() as uow:
                current = uow.ambassadors.get(shop_id, ambassador.id, for_update=True)
                if current is None or current.code != ambassador.code:
                    continue  # changed meanwhile; the next run sees the new state
                uow.ambassadors.save(
                    replace(
                        current,
                        code_state=CodeState.ACTIVE,
                        redeem_code_gid=result.redeem_code_gid,
                        discount_gid=discount_gid,
                    )
                )
                uow.commit()
            report.added += 1
        elif result.error == "taken":
            _collide(uow_factory, clock, shop_id, ambassador, collisions, given_up, report)
        else:
            given_up.add(ambassador.id)
            report.errors.append(f"{ambassador.code}: {result.error}")
            with uow_factory() as uow:
                uow.ambassadors.audit(
                    shop_id,
                    AuditEntry(
                        ambassador.id,
                        "code",
                        "shopify",
                        clock.now(),
                        ambassador.code,
                        None,
                        f"Shopify refused the code: {result.error}",
                    ),
                )
                uow.commit()


def _collide(
    uow_factory: UnitOfWorkFactory,
    clock: Clock,
    shop_id: int,
    ambassador: Ambassador,
    collisions: dict[int, int],
    given_up: set[int],
    report: CodeSyncReport,
) -> None:
    assert ambassador.id is not None
    report.collisions += 1
    collisions[ambassador.id] = collisions.get(ambassador.id, 0) + 1
    if collisions[ambassador.id] > MAX_COLLISIONS_PER_RUN:
        given_up.add(ambassador.id)
        report.errors.append(f"{ambassador.code}: too many collisions")
        return
    with uow_factory() as uow:
        current = uow.ambassadors.get(shop_id, ambassador.id, for_update=True)
        if current is None or current.code != ambassador.code:
            return
        settings = uow.program.settings(shop_id)
        try:
            moved = next_code(uow, current, settings.code_format, avoid={current.code or ""})
        except ProgramError as exc:
            given_up.add(ambassador.id)
            report.errors.append(f"{ambassador.code}: {exc.message}")
            return
        uow.ambassadors.audit(
            shop_id,
            AuditEntry(
                ambassador.id,
                "code",
                "system",
                clock.now(),
                current.code,
                moved.code,
                "taken in Shopify by another discount: next candidate",
            ),
        )
        uow.commit()


def _remove(
    uow_factory: UnitOfWorkFactory,
    discounts: DiscountPlatform,
    token: str,
    clock: Clock,
    shop_domain: str,
    shop_id: int,
    removes: list[Ambassador],
    report: CodeSyncReport,
) -> None:
    by_discount: dict[str, list[Ambassador]] = {}
    for a in removes:
        if a.discount_gid and a.redeem_code_gid:
            by_discount.setdefault(a.discount_gid, []).append(a)
    for discount_gid, group in by_discount.items():
        discounts.delete_redeem_codes(
            shop_domain, token, discount_gid, [a.redeem_code_gid or "" for a in group]
        )
    with uow_factory() as uow:
        for a in removes:
            assert a.id is not None
            current = uow.ambassadors.get(shop_id, a.id, for_update=True)
            if current is not None and current.code_state is CodeState.ACTIVE:
                uow.ambassadors.save(
                    replace(current, code_state=CodeState.INACTIVE, redeem_code_gid=None)
                )
                report.removed += 1
        uow.commit()


@dataclass
class DriftReport:
    checked: int = 0
    missing: list[str] = field(default_factory=list)
    reappeared: list[str] = field(default_factory=list)
    discounts_gone: list[str] = field(default_factory=list)


def check_drift(
    uow_factory: UnitOfWorkFactory,
    discounts: DiscountPlatform,
    token_for: TokenFor,
    clock: Clock,
    shop_domain: str,
) -> DriftReport:
    """Compare our codes with Shopify's. Codes deleted or changed there are marked ``missing``
    (the next sync re-adds them); codes that should be inactive but are live there are marked
    active again (the next sync removes them). Each finding is audited."""
    report = DriftReport()
    with uow_factory() as uow:
        shop = uow.shops.get(shop_domain)
        if shop is None or shop.id is None or not shop.installed:
            return report
        shop_id = shop.id
        issued = uow.ambassadors.issued_codes(shop_id)
    token = token_for(shop_domain)
    by_discount: dict[str, list[Ambassador]] = {}
    for a in issued:
        if a.discount_gid:
            by_discount.setdefault(a.discount_gid, []).append(a)
    for discount_gid, group in by_discount.items():
        remote = discounts.discount_codes(shop_domain, token, discount_gid)
        if remote is None:
            report.discounts_gone.append(discount_gid)
            remote = {}
        with uow_factory() as uow:
            if discount_gid in report.discounts_gone:
                uow.program.forget_shared_discount(shop_id, discount_gid)
            for a in group:
                assert a.id is not None
                report.checked += 1
                live = remote.get((a.code or "").upper())
                if a.code_state is CodeState.ACTIVE and live is None:
                    uow.ambassadors.save(
                        replace(
                            a, code_state=CodeState.MISSING, redeem_code_gid=None, discount_gid=None
                        )
                    )
                    uow.ambassadors.audit(
                        shop_id,
                        AuditEntry(
                            a.id,
                            "code",
                            "shopify",
                            clock.now(),
                            a.code,
                            a.code,
                            "missing in Shopify (deleted or changed there): will be re-added",
                        ),
                    )
                    report.missing.append(a.code or "")
                elif a.code_state is CodeState.INACTIVE and live is not None:
                    uow.ambassadors.save(
                        replace(a, code_state=CodeState.ACTIVE, redeem_code_gid=live)
                    )
                    uow.ambassadors.audit(
                        shop_id,
                        AuditEntry(
                            a.id,
                            "code",
                            "shopify",
                            clock.now(),
                            a.code,
                            a.code,
                            "live in Shopify while the ambassador is not active: will be removed",
                        ),
                    )
                    report.reappeared.append(a.code or "")
            uow.commit()
    return report
