"""Admin GraphQL client: paced by Shopify's own ``throttleStatus``, typed errors.

Shopify's GraphQL rate limit is a leaky bucket of cost points per shop. Every response reports
the bucket (``extensions.cost.throttleStatus``); we keep that reading per shop and, before the
next call, wait just long enough for the bucket to hold the call's cost. A client that paces
itself this way wastes almost no calls; one that reacts to ``THROTTLED`` wastes many (PLATFORM.md).
Throttling is therefore paced and retried, never surfaced as a failure, up to ``max_wait``;
inside :func:`waits_at_most` (background jobs), a wait longer than its bound raises
:class:`PlatformThrottled` instead of sleeping, so one shop's empty bucket does not hold a
worker that other shops' jobs need.

The HTTP call itself is Shopify's ``shopifyapp.admin_graphql_request`` (with its own retries
off: pacing and retries are decided here, from the bucket).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import httpx
from shopify_app import ShopifyApp

from connector.ports import (
    PlatformError,
    PlatformRetryable,
    PlatformThrottled,
    PlatformUnauthorized,
)

log = logging.getLogger(__name__)

_MAX_SLEEP: ContextVar[float | None] = ContextVar("shopify_max_sleep", default=None)


@contextmanager
def waits_at_most(seconds: float) -> Iterator[None]:
    """Within the block (this thread or task), a call never sleeps longer than ``seconds`` for
    a shop's bucket or a ``Retry-After``: it raises :class:`PlatformThrottled` with the wait it
    would need, booking nothing."""
    token = _MAX_SLEEP.set(seconds)
    try:
        yield
    finally:
        _MAX_SLEEP.reset(token)


def _check_sleep(shop: str, seconds: float) -> None:
    bound = _MAX_SLEEP.get()
    if bound is not None and seconds > bound:
        raise PlatformThrottled(f"{shop}: throttled, capacity in {seconds:.1f}s", seconds)


class GraphQLError(PlatformError):
    """The document was rejected (syntax, validation, access). Not retryable."""

    def __init__(self, message: str, errors: list[Any] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


@dataclass
class _Bucket:
    maximum: float
    available: float
    restore_rate: float
    read_at: float

    def available_at(self, now: float) -> float:
        return min(self.maximum, self.available + (now - self.read_at) * self.restore_rate)


@dataclass(frozen=True)
class GraphQLResponse:
    data: dict[str, Any]
    cost: Mapping[str, Any] | None


class ShopifyGraphQLClient:
    """One instance per process; thread-safe. ``shop`` arguments are ``*.myshopify.com``."""

    def __init__(
        self,
        app: ShopifyApp,
        http: httpx.Client,
        api_version: str,
        *,
        max_wait: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        on_budget: Callable[[str, float, float, float], None] | None = None,
        budget_every: float = 5.0,
    ) -> None:
        """``on_budget(shop, currently_available, maximum_available, restore_rate)`` is called
        with a shop's bucket at most every ``budget_every`` seconds (for the health page); its
        failures are logged and never fail the call."""
        self._app = app
        self._http = http
        self._version = api_version
        self._max_wait = max_wait
        self._sleep = sleep
        self._monotonic = monotonic
        self._buckets: dict[str, _Bucket] = {}
        # Requested cost per document, as Shopify reported it: callers' estimates are a floor,
        # what the platform said last time is the better guess (connections cost by `first`).
        self._learned: dict[int, float] = {}
        self._lock = threading.Lock()
        self._on_budget = on_budget
        self._budget_every = budget_every
        self._budget_sent: dict[str, float] = {}
        self.calls = 0
        self.throttled = 0

    def execute(
        self,
        shop: str,
        access_token: str,
        query: str,
        variables: Mapping[str, Any] | None = None,
        *,
        estimated_cost: float = 10.0,
    ) -> GraphQLResponse:
        """Run one document. Raises :class:`PlatformUnauthorized` (401), :class:`GraphQLError`
        (bad document), :class:`PlatformRetryable` (5xx, network, or throttled past
        ``max_wait``)."""
        started = self._monotonic()
        failures = 0
        document = hash(query)
        estimated_cost = max(estimated_cost, self._learned.get(document, 0.0))
        while True:
            self._wait_for_capacity(shop, estimated_cost)
            self.calls += 1
            result = self._app.admin_graphql_request(
                query,
                shop=shop.removesuffix(".myshopify.com"),
                access_token=access_token,
                api_version=self._version,
                variables=dict(variables or {}),
                max_retries=0,
                http_client=self._http,
            )
            status = result.response.status
            body = _json(result.response.body) if not result.ok else {}
            extensions = result.extensions if result.ok else body.get("extensions")
            cost = (extensions or {}).get("cost") if isinstance(extensions, Mapping) else None
            if cost:
                self._record(shop, cost)
                requested = cost.get("requestedQueryCost")
                if isinstance(requested, int | float):
                    self._learned[document] = float(requested)
                    estimated_cost = max(estimated_cost, float(requested))
            if result.ok:
                return GraphQLResponse(data=result.data or {}, cost=cost)
            if status == 401:
                raise PlatformUnauthorized(f"{shop}: access token refused")
            errors = body.get("errors") if isinstance(body, Mapping) else None
            waited = self._monotonic() - started
            if status == 200 and _is_throttled(errors):
                self.throttled += 1
                requested = float((cost or {}).get("requestedQueryCost") or estimated_cost)
                estimated_cost = max(estimated_cost, requested)
                if waited > self._max_wait:
                    raise PlatformRetryable(f"{shop}: throttled for {waited:.0f}s")
                continue  # _wait_for_capacity now knows the bucket is short
            if status == 429 or status >= 500 or result.log.code == "network_error":
                failures += 1
                if status == 429:
                    self.throttled += 1
                if failures > 4 or waited > self._max_wait:
                    raise PlatformRetryable(f"{shop}: {result.log.code} (HTTP {status})")
                retry_after = _retry_after(result.response.headers)
                pause = retry_after if retry_after is not None else min(2.0**failures, 30.0)
                if status == 429:
                    _check_sleep(shop, pause)
                self._sleep(pause)
                continue
            message = (
                "; ".join(str(e.get("message", e)) for e in errors or [] if isinstance(e, Mapping))
                or f"HTTP {status}: {result.log.code}"
            )
            raise GraphQLError(message, list(errors or []))

    def _wait_for_capacity(self, shop: str, cost: float) -> None:
        with self._lock:
            bucket = self._buckets.get(shop)
            if bucket is None:
                return
            now = self._monotonic()
            available = bucket.available_at(now)
            needed = min(cost, bucket.maximum) - available
            if needed <= 0:
                # Book the points now so concurrent callers in this process pace each other.
                bucket.available, bucket.read_at = available - cost, now
                return
            delay = needed / bucket.restore_rate
            _check_sleep(shop, delay)  # before booking: a deferred call takes no points
            bucket.available, bucket.read_at = available - cost, now
        self._sleep(delay)

    def _record(self, shop: str, cost: Mapping[str, Any]) -> None:
        status = cost.get("throttleStatus") or {}
        try:
            bucket = _Bucket(
                maximum=float(status["maximumAvailable"]),
                available=float(status["currentlyAvailable"]),
                restore_rate=float(status["restoreRate"]),
                read_at=self._monotonic(),
            )
        except (KeyError, TypeError, ValueError):
            return
        with self._lock:
            self._buckets[shop] = bucket
            last = self._budget_sent.get(shop)
            due = self._on_budget is not None and (
                last is None or bucket.read_at - last >= self._budget_every
            )
            if due:
                self._budget_sent[shop] = bucket.read_at
        if due and self._on_budget is not None:
            try:
                self._on_budget(shop, bucket.available, bucket.maximum, bucket.restore_rate)
            except Exception:  # a health figure must never fail a Shopify call
                log.warning("shopify_budget_not_recorded shop=%s", shop, exc_info=True)


def _json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {"errors": value}


def _is_throttled(errors: Any) -> bool:
    if not isinstance(errors, list):
        return False
    return any(
        isinstance(e, Mapping) and (e.get("extensions") or {}).get("code") == "THROTTLED"
        for e in errors
    )


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None
