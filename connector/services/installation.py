"""Installing the app on a shop, keeping its offline token fresh, and uninstalling.

Contracts:
- A shop with a usable (or refreshable) token is never re-exchanged on app home loads.
- Refreshes are serialised per shop with a row lock: the refresh token is single-use, so two
  workers racing would otherwise burn it and lock the shop out.
- Tokens cross this layer in plaintext; the repository encrypts them at rest.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta

from connector.domain.shops import REFRESH_MARGIN, OfflineToken, Shop, ShopStatus
from connector.domain.webhooks import SUBSCRIBED_TOPICS
from connector.ports import (
    Clock,
    CommercePlatform,
    IdGenerator,
    Job,
    JobQueue,
    OAuthState,
    PlatformUnauthorized,
    UnitOfWork,
    UnitOfWorkFactory,
)

log = logging.getLogger(__name__)

OAUTH_STATE_TTL = timedelta(minutes=10)
#: Clocks and timestamp precision differ (Shopify's and ours); a reinstall takes far longer.
STALE_UNINSTALL_TOLERANCE = timedelta(seconds=5)
INSTALL_PURPOSE = "shopify_install"


class NotInstalled(Exception):
    """The shop has no usable token: the merchant must open the app (or reinstall) again."""


def install_from_id_token(
    uow: UnitOfWork,
    platform: CommercePlatform,
    jobs: JobQueue,
    clock: Clock,
    shop_domain: str,
    id_token: str,
) -> Shop:
    """App home load with a verified id token: exchange it unless the shop already has a token.

    Idempotent: repeated loads of an installed shop make no call to Shopify.
    """
    now = clock.now()
    with uow:
        shop = uow.shops.get(shop_domain)
        if shop is not None and shop.has_valid_token(now):
            return shop
    token = platform.exchange_id_token(shop_domain, id_token)
    return _store_token(uow, platform, jobs, clock, shop_domain, token)


def begin_authorization(uow: UnitOfWork, ids: IdGenerator, clock: Clock, shop_domain: str) -> str:
    """Create the single-use ``state`` for the authorization-code install link (≥128 bits)."""
    state = ids.token(32)  # 256 bits from the CSPRNG
    with uow:
        uow.oauth_states.add(
            OAuthState(
                state=state,
                shop_domain=shop_domain,
                purpose=INSTALL_PURPOSE,
                expires_at=clock.now() + OAUTH_STATE_TTL,
            )
        )
        uow.commit()
    return state


class InvalidState(Exception):
    """Unknown, expired, reused, or issued for another shop."""


def complete_authorization(
    uow: UnitOfWork,
    platform: CommercePlatform,
    jobs: JobQueue,
    clock: Clock,
    shop_domain: str,
    state: str,
    code: str,
) -> Shop:
    """Callback of the install link (query HMAC already verified): check state, exchange code."""
    with uow:
        saved = uow.oauth_states.consume(state, clock.now())
        uow.commit()  # consumed even if what follows fails: a state is good for one try
    if saved is None or saved.purpose != INSTALL_PURPOSE or saved.shop_domain != shop_domain:
        raise InvalidState("unknown, expired or already used state")
    token = platform.exchange_authorization_code(shop_domain, code)
    return _store_token(uow, platform, jobs, clock, shop_domain, token)


def _store_token(
    uow: UnitOfWork,
    platform: CommercePlatform,
    jobs: JobQueue,
    clock: Clock,
    shop_domain: str,
    token: OfflineToken,
) -> Shop:
    now = clock.now()
    info = None
    try:
        info = platform.shop_info(shop_domain, token.access_token)
    except Exception:  # noqa: BLE001 - name and currency come later; install must not fail
        log.warning("shopify.install.shop_info_failed", extra={"shop": shop_domain})
    with uow:
        shop = uow.shops.get_for_update(shop_domain) or Shop(
            id=None, domain=shop_domain, status=ShopStatus.INSTALLED
        )
        reinstall = not shop.installed
        shop = shop.with_token(token, now)
        if info is not None:
            shop = replace(shop, name=info.name, email=info.email, currency=info.currency)
        shop = uow.shops.save(shop)
        if reinstall or shop.webhooks_registered_at is None:
            uow.after_commit(lambda: jobs.enqueue(Job.REGISTER_WEBHOOKS, shop_domain))
        uow.commit()
    log.info("shopify.install.token_stored", extra={"shop": shop_domain, "reinstall": reinstall})
    return shop


def access_token(
    uow_factory: UnitOfWorkFactory, platform: CommercePlatform, clock: Clock, shop_domain: str
) -> str:
    """A usable access token for the shop, refreshing it first when it is about to expire.

    Raises :class:`NotInstalled` when there is none and none can be had.
    """
    now = clock.now()
    with uow_factory() as uow:
        shop = uow.shops.get(shop_domain)
    if shop is None or not shop.installed or shop.token is None:
        raise NotInstalled(shop_domain)
    if shop.token.usable_at(now):
        return shop.token.access_token
    return refresh_token(uow_factory, platform, clock, shop_domain)


def refresh_token(
    uow_factory: UnitOfWorkFactory,
    platform: CommercePlatform,
    clock: Clock,
    shop_domain: str,
    margin: timedelta = REFRESH_MARGIN,
) -> str:
    """Refresh under the shop's row lock; a caller that waited finds the fresh token and stops."""
    with uow_factory() as uow:
        shop = uow.shops.get_for_update(shop_domain)
        if shop is None or not shop.installed or shop.token is None:
            raise NotInstalled(shop_domain)
        now = clock.now()
        if shop.token.usable_at(now, margin):
            return shop.token.access_token  # someone refreshed while we waited for the lock
        if not shop.token.refreshable_at(now) or shop.token.refresh_token is None:
            raise NotInstalled(shop_domain)
        try:
            fresh = platform.refresh(shop_domain, shop.token.refresh_token)
        except PlatformUnauthorized:
            # The refresh token is dead (revoked or expired): only the merchant opening the app
            # again (token exchange) can recover. Drop it so we stop trying.
            uow.shops.save(replace(shop, token=None))
            uow.commit()
            log.warning("shopify.token.refresh_refused", extra={"shop": shop_domain})
            raise NotInstalled(shop_domain) from None
        uow.shops.save(shop.with_token(fresh, now))
        uow.commit()
    log.info("shopify.token.refreshed", extra={"shop": shop_domain})
    return fresh.access_token


def refresh_expiring_tokens(
    uow_factory: UnitOfWorkFactory,
    platform: CommercePlatform,
    clock: Clock,
    within: timedelta = timedelta(minutes=15),
) -> int:
    """Scheduled: refresh every token expiring soon, so requests rarely wait on a refresh."""
    with uow_factory() as uow:
        domains = uow.shops.expiring_tokens(clock.now() + within)
    refreshed = 0
    for domain in domains:
        try:
            refresh_token(uow_factory, platform, clock, domain, margin=within)
            refreshed += 1
        except NotInstalled:
            continue
        except Exception:
            log.exception("shopify.token.refresh_failed", extra={"shop": domain})
    return refreshed


def register_webhooks(
    uow_factory: UnitOfWorkFactory,
    platform: CommercePlatform,
    clock: Clock,
    shop_domain: str,
    webhook_uri: str,
) -> list[str]:
    """Subscribe the app's webhook endpoint to the topics it handles (idempotent)."""
    token = access_token(uow_factory, platform, clock, shop_domain)
    topics = platform.register_webhooks(
        shop_domain, token, [t.value for t in SUBSCRIBED_TOPICS], webhook_uri
    )
    with uow_factory() as uow:
        shop = uow.shops.get_for_update(shop_domain)
        if shop is not None and shop.installed:
            uow.shops.save(replace(shop, webhooks_registered_at=clock.now()))
            uow.commit()
    return topics


def uninstall(
    uow: UnitOfWork, clock: Clock, shop_domain: str, triggered_at: datetime | None = None
) -> str:
    """``app/uninstalled``: drop the tokens (Shopify has revoked them). Data stays until
    ``shop/redact``; a reinstall picks it up again.

    Webhooks can arrive a day late: an uninstall triggered before the shop's latest install
    is stale and must not drop the new token.
    """
    shop = uow.shops.get_for_update(shop_domain)
    if shop is None:
        return "unknown shop"
    if (
        shop.installed
        and triggered_at is not None
        and shop.installed_at is not None
        and shop.installed_at > triggered_at + STALE_UNINSTALL_TOLERANCE
    ):
        return "ignored: the shop was reinstalled after this uninstall"
    uow.shops.save(shop.uninstalled(clock.now()))
    return "tokens dropped"
