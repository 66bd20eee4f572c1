"""``ShopifyEmulator``: the stand-in for Shopify used by ``ambassador demo`` and the integration
tests. The app reaches it through exactly the code paths it uses for Shopify (a request for
``https://{shop}/{path}`` goes to ``{SHOPIFY_API_BASE_URL}/{shop}/{path}``); the HTTP side is
:func:`adapters.shopify.emulator.app.create_emulator_app`.

Thread safety: one re-entrant lock guards all state; every public method and every HTTP request
takes it. Webhooks are delivered *after* the lock is released, so an app that calls back into the
emulator while handling a webhook cannot deadlock it.

Time: ``clock`` (monotonic seconds) drives token lifetimes, the GraphQL leaky bucket and
asynchronous jobs; ``wall_clock`` (epoch seconds) stamps resources and signs id tokens. Inject
both to make tests deterministic.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast
from urllib.parse import urlencode

import httpx

from . import bulk, commerce, rest
from .admin_schema import SCHEMA_VERSION, admin_schema
from .commerce import CommerceError, Env, Event
from .cost import plan_limits
from .graphql_api import AdminGraphQL
from .oauth import OAuthError, TokenAuthority, admin_host_param, query_hmac
from .resolvers import registry
from .state import Bucket, BulkOperation, Shop
from .values import IdSequence, to_decimal, utc_from_timestamp
from .views import GqlContext
from .webhooks import Delivery, WebhookDispatcher, WebhookMode

log = logging.getLogger(__name__)

SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")
DEFAULT_SCOPES = (
    "read_customers,write_customers,read_orders,write_discounts,write_gift_cards,"
    "write_store_credit_account_transactions"
)
#: Shopify's 401 text for a missing, wrong or expired token (an error message, not a secret).
INVALID_TOKEN_MESSAGE = (
    "[API] Invalid API key or access token (unrecognized login or wrong password)"  # noqa: S105
)

FaultKind = Literal["throttled", "429", "5xx", "timeout", "reset"]
FaultScope = Literal["graphql", "token", "any"]
FAULT_KINDS = ("throttled", "429", "5xx", "timeout", "reset")


@dataclass
class Fault:
    """An injected failure for the next ``remaining`` matching requests."""

    kind: FaultKind
    remaining: int
    scope: FaultScope = "graphql"
    retry_after: int = 1
    status: int = 503
    delay: float = 10.0
    #: ``5xx``, ``timeout``, ``reset``: the request is carried out first and only its answer is
    #: lost (the case that makes a client's retry of a mutation a second mutation).
    after: bool = False


@dataclass
class GraphQLResult:
    """What the HTTP layer sends back for one Admin GraphQL request."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class ShopifyEmulator:
    """A local Shopify for one app (``api_key``/``api_secret``) and any number of shops.

    ``plan`` sets the default plan of new shops (``standard``, ``advanced``, ``plus``,
    ``enterprise``, ``development``), hence their GraphQL bucket. Webhooks go to the shop's API
    subscriptions for a topic, else (as for subscriptions declared in the app's configuration)
    to ``{app_url}{webhook_path}``; ``app_url=None`` turns that default off. ``webhook_mode``
    ``"sync"`` delivers as events happen, before the triggering call returns (deterministic
    tests); ``"background"`` delivers from a worker thread after it returns, as Shopify does
    (use it when the app calls the Admin API while it cannot take a request, e.g. a
    single-threaded server; :meth:`wait_for_webhooks` syncs); ``"manual"`` queues them until
    :meth:`flush_webhooks` (to test late, reordered or duplicate deliveries).
    """

    def __init__(
        self,
        api_key: str,
        api_secret: str,
        app_url: str | None = "http://127.0.0.1:8000",
        plan: str = "standard",
        api_version: str = SCHEMA_VERSION,
        *,
        scopes: str = DEFAULT_SCOPES,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        access_token_ttl: float = 3600.0,
        refresh_token_ttl: float = 7776000.0,
        retain_used_refresh_tokens: bool = False,
        bulk_delay: float = 0.2,
        webhook_path: str = "/webhooks/shopify",
        webhook_mode: WebhookMode = "sync",
        webhook_timeout: float = 5.0,
        webhook_transport: httpx.BaseTransport | None = None,
    ) -> None:
        plan_limits(plan)  # fail fast on an unknown plan
        self.api_key = api_key
        self.app_url = app_url
        self.plan = plan
        self.api_version = api_version
        self.bulk_delay = bulk_delay
        #: Bulk operations: CREATED for ``delay`` s, then ``rate`` objects/s; ``concurrency``
        #: None follows Shopify's per-version limit (see :mod:`.bulk`).
        self.bulk = bulk.BulkSettings(
            delay=bulk_delay, secret=secrets.token_hex(16), wall_clock=wall_clock, clock=clock
        )
        self.webhook_path = webhook_path
        self.base_url: str | None = None  # set by serve_in_thread
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.RLock()
        self._ids = IdSequence()
        self._shops: dict[str, Shop] = {}
        self._faults: list[Fault] = []
        self._graphql: AdminGraphQL | None = None
        self.authority = TokenAuthority(
            api_key=api_key,
            api_secret=api_secret,
            scopes=scopes,
            clock=clock,
            wall_clock=wall_clock,
            access_token_ttl=access_token_ttl,
            refresh_token_ttl=refresh_token_ttl,
            retain_used_refresh_tokens=retain_used_refresh_tokens,
        )
        self.webhooks = WebhookDispatcher(
            clock=clock, timeout=webhook_timeout, transport=webhook_transport, mode=webhook_mode
        )
        #: Every Admin GraphQL request: {shop, operation_name, root_fields, cost, actual_cost,
        #: throttled, fault, status, at}.
        self.graphql_calls: list[dict[str, Any]] = []
        #: The grant type of every token request, in order ("authorization_code",
        #: "token_exchange", "refresh_token"); details in ``token_request_log``.
        self.token_requests: list[str] = []
        self.token_request_log: list[dict[str, Any]] = []

    # --- configuration -------------------------------------------------------------------

    @property
    def api_secret(self) -> str:
        """The client secret: signs webhooks and id tokens, checks client credentials. Setting
        it emulates a secret rotation (tokens and webhooks use the new one from then on)."""
        return self.authority.api_secret

    @api_secret.setter
    def api_secret(self, secret: str) -> None:
        self.authority.api_secret = secret

    @property
    def access_token_ttl(self) -> float:
        return self.authority.access_token_ttl

    @access_token_ttl.setter
    def access_token_ttl(self, seconds: float) -> None:
        self.authority.access_token_ttl = seconds

    @property
    def deliveries(self) -> list[dict[str, Any]]:
        """Every webhook delivery attempt: ``{shop, topic, webhook_id, event_id, url, status,
        ok, error, attempt, at, body, headers}``."""
        return self.webhooks.deliveries

    @property
    def pending_webhooks(self) -> list[Delivery]:
        """Deliveries waiting for :meth:`flush_webhooks` (``webhook_mode="manual"``)."""
        return self.webhooks.pending

    @property
    def webhook_mode(self) -> WebhookMode:
        return self.webhooks.mode

    @webhook_mode.setter
    def webhook_mode(self, mode: WebhookMode) -> None:
        self.webhooks.mode = mode

    def wait_for_webhooks(self, timeout: float = 10.0) -> bool:
        """Block until ``webhook_mode="background"`` deliveries are done (True) or ``timeout``
        passes (False)."""
        return self.webhooks.wait(timeout)

    def now(self) -> datetime:
        return utc_from_timestamp(self._wall_clock())

    def close(self) -> None:
        """Release the webhook HTTP client."""
        self.webhooks.close()

    # --- shops and customers -------------------------------------------------------------

    def add_shop(
        self,
        domain: str,
        currency: str = "USD",
        name: str | None = None,
        *,
        plan: str | None = None,
        email: str | None = None,
        timezone: str = "America/New_York",
        fx_rates: Mapping[str, Any] | None = None,
    ) -> Shop:
        """Create a shop (``*.myshopify.com``). ``fx_rates`` maps other presentment currencies
        to shop-currency units per unit (``{"EUR": "1.08"}``). Returns the shop state."""
        if not SHOP_DOMAIN.match(domain):
            raise ValueError(f"{domain!r} is not a *.myshopify.com domain")
        limits = plan_limits(plan or self.plan)
        with self._lock:
            if domain in self._shops:
                raise ValueError(f"shop {domain} already exists")
            shop = Shop(
                id=self._ids.next(),
                domain=domain,
                name=name or domain.removesuffix(".myshopify.com").replace("-", " ").title(),
                email=email or f"owner@{domain}",
                currency=currency.upper(),
                iana_timezone=timezone,
                plan=plan or self.plan,
                created_at=self.now(),
                bucket=Bucket(
                    limits.maximum_available,
                    limits.restore_rate,
                    limits.maximum_available,
                    self._clock(),
                ),
                fx_rates={
                    k.upper(): to_decimal(v, field="fx_rate") for k, v in (fx_rates or {}).items()
                },
            )
            self._shops[domain] = shop
            return shop

    def shop(self, domain: str | Shop) -> Shop:
        """The state of a shop; ``KeyError`` if unknown."""
        if isinstance(domain, Shop):
            return domain
        with self._lock:
            return self._shops[domain]

    def has_shop(self, domain: str) -> bool:
        with self._lock:
            return domain in self._shops

    def add_customer(
        self,
        shop: str | Shop,
        email: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        phone: str | None = None,
        orders_count: int = 0,
        amount_spent: Any = "0.00",
        tags: Iterable[str] | str = (),
        note: str | None = None,
    ) -> dict[str, Any]:
        """Seed a customer (no webhook, as for customers that existed before the app); returns
        the REST-shaped customer with ``id`` and ``admin_graphql_api_id``."""
        with self._lock:
            env = self._env(self.shop(shop))
            customer = commerce.create_customer(
                env,
                email=email,
                first_name=first_name,
                last_name=last_name,
                phone=phone,
                tags=tags,
                note=note,
                orders_count=orders_count,
                amount_spent=amount_spent,
            )
            return rest.customer_json(env.shop, customer)

    def delete_customer(self, shop: str | Shop, customer_id: int) -> bool:
        """The merchant deleted a customer in the admin (no webhook here: tests of what the app
        meets afterwards). False when there was no such customer."""
        with self._lock:
            return self.shop(shop).customers.pop(int(customer_id), None) is not None

    # --- tokens --------------------------------------------------------------------------

    def mint_session_token(self, shop: str | Shop, user_id: int = 1, ttl: int = 60) -> str:
        """An App Bridge id token for ``shop`` as Shopify's admin would hand the app."""
        domain = self.shop(shop).domain
        with self._lock:
            return self.authority.mint_id_token(domain, user_id, ttl)

    def issue_access_token(self, shop: str | Shop, *, expiring: bool = True) -> dict[str, Any]:
        """Install the app on ``shop`` and return a token answer without an HTTP round trip (for
        seeding; not recorded in ``token_requests``)."""
        with self._lock:
            target = self.shop(shop)
            target.installed = True
            return self.authority.issue_offline(target.domain, self.authority.scopes, expiring)

    def token_endpoint(self, shop: str, params: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """``POST /admin/oauth/access_token`` for ``shop``: ``(status, JSON body)``."""
        with self._lock:
            target = self._shops[shop]
            kind = str(
                params.get("grant_type") or ("authorization_code" if "code" in params else "")
            )
            try:
                name, answer = self.authority.grant(shop, params)
            except OAuthError as exc:
                self._log_token_request(shop, _grant_label(kind), exc.status, exc.error)
                return exc.status, exc.body()
            target.installed = True
            self._log_token_request(shop, name, 200, None)
            return 200, answer

    def _log_token_request(self, shop: str, grant: str, status: int, error: str | None) -> None:
        self.token_requests.append(grant)
        self.token_request_log.append(
            {"shop": shop, "grant": grant, "status": status, "error": error, "at": self._clock()}
        )

    def authorize(self, shop: str, params: Mapping[str, Any]) -> tuple[int, str]:
        """``GET /admin/oauth/authorize``: the merchant approves at once. Returns
        ``(302, redirect URL)`` or ``(400, message)``."""
        if params.get("client_id") != self.api_key:
            return 400, "Oauth error invalid_request: The client_id is invalid"
        redirect_uri = str(params.get("redirect_uri") or "")
        if not redirect_uri.startswith(("https://", "http://")):
            return 400, "Oauth error invalid_request: The redirect_uri is missing or not allowed"
        per_user = "per-user" in (params.get("grant_options[]") or [])
        with self._lock:
            self._shops[shop].installed = True
            code = self.authority.issue_code(shop, str(params.get("scope") or ""), per_user)
        query: dict[str, Any] = {
            "code": code,
            "host": admin_host_param(shop),
            "shop": shop,
            "state": str(params.get("state") or ""),
            "timestamp": str(int(self._wall_clock())),
        }
        query["hmac"] = query_hmac(self.api_secret, query)
        separator = "&" if "?" in redirect_uri else "?"
        return 302, f"{redirect_uri}{separator}{urlencode(query)}"

    def admin_launch_url(self, shop: str | Shop, *, path: str = "/app", user_id: int = 1) -> str:
        """The URL Shopify's admin loads in the app iframe: ``{app_url}{path}?embedded=1&host=…
        &id_token=…&shop=…&timestamp=…&hmac=…``."""
        domain = self.shop(shop).domain
        if not self.app_url:
            raise ValueError("app_url is not set")
        query: dict[str, Any] = {
            "embedded": "1",
            "host": admin_host_param(domain),
            "id_token": self.mint_session_token(domain, user_id),
            "locale": "en",
            "session": uuid.uuid4().hex,
            "shop": domain,
            "timestamp": str(int(self._wall_clock())),
        }
        query["hmac"] = query_hmac(self.api_secret, query)
        return f"{self.app_url.rstrip('/')}{path}?{urlencode(query)}"

    # --- Admin GraphQL -------------------------------------------------------------------

    def graphql_endpoint(
        self,
        shop: str,
        api_version: str,
        access_token: str | None,
        payload: Any,
        *,
        fault: str | None = None,
    ) -> GraphQLResult:
        """``POST /admin/api/{version}/graphql.json`` after the HTTP layer's fault handling."""
        schema = admin_schema()  # built outside the lock: the first build takes a second
        events: list[Event] = []
        with self._lock:
            target = self._shops[shop]
            token = self.authority.access_token(shop, access_token)
            headers = {"X-Shopify-API-Version": api_version}
            if token is None:
                self._record_call(shop, None, (), None, None, False, fault, 401)
                return GraphQLResult(401, {"errors": INVALID_TOKEN_MESSAGE}, headers)
            if self._graphql is None:
                self._graphql = AdminGraphQL(schema, registry)
            env = self._env(target)
            commerce.process_due_jobs(env)
            bulk.advance(env, self.bulk)
            ctx = GqlContext(env, token, self.api_key, api_version, self.bulk_delay, self.bulk)
            outcome = self._graphql.handle(
                ctx, target.bucket, self._clock(), payload, force_throttle=fault == "throttled"
            )
            self._record_call(
                shop,
                outcome.operation_name,
                outcome.root_fields,
                outcome.requested_cost,
                outcome.actual_cost,
                outcome.throttled,
                fault,
                outcome.status,
            )
            events = env.events
        self._deliver_events(shop, events)
        return GraphQLResult(outcome.status, outcome.body, headers)

    def _record_call(
        self,
        shop: str,
        operation_name: str | None,
        root_fields: Sequence[str],
        cost: int | None,
        actual_cost: int | None,
        throttled: bool,
        fault: str | None,
        status: int,
    ) -> None:
        self.graphql_calls.append(
            {
                "shop": shop,
                "operation_name": operation_name,
                "root_fields": list(root_fields),
                "cost": cost,
                "actual_cost": actual_cost,
                "throttled": throttled,
                "fault": fault,
                "status": status,
                "at": self._clock(),
            }
        )

    def record_fault_call(self, shop: str, fault: str, status: int | None) -> None:
        """Count a request answered by an injected fault (429, 5xx, timeout, reset)."""
        with self._lock:
            self._record_call(shop, None, (), None, None, fault == "429", fault, status or 0)

    # --- faults --------------------------------------------------------------------------

    def set_fault(
        self,
        kind: str,
        count: int = 1,
        *,
        scope: FaultScope = "graphql",
        retry_after: int = 1,
        status: int = 503,
        delay: float = 10.0,
        after: bool = False,
    ) -> None:
        """Make the next ``count`` requests in ``scope`` (``graphql`` — the default —,
        ``token`` or ``any``) fail: ``throttled`` (HTTP 200 with a ``THROTTLED`` error), ``429``
        (with ``Retry-After: retry_after``), ``5xx`` (HTTP ``status``), ``timeout`` (answer
        after ``delay`` seconds, longer than a client waits) or ``reset`` (close the connection
        without an answer). ``after`` (``5xx``, ``timeout``, ``reset`` of ``graphql``): the
        request is carried out, then its answer is lost."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {FAULT_KINDS}, not {kind!r}")
        if after and kind not in ("5xx", "timeout", "reset"):
            raise ValueError("only 5xx, timeout and reset faults can come after the request")
        if scope not in ("graphql", "token", "any"):
            raise ValueError(f"unknown fault scope {scope!r}")
        fault = Fault(
            kind=cast(FaultKind, kind),
            remaining=int(count),
            scope=scope,
            retry_after=int(retry_after),
            status=int(status),
            delay=float(delay),
            after=bool(after),
        )
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def armed_faults(self) -> int:
        """Injected failures still to come (the sum of their remaining uses)."""
        with self._lock:
            return sum(f.remaining for f in self._faults)

    def take_fault(self, scope: Literal["graphql", "token"]) -> Fault | None:
        """The fault to apply to this request, if any (consumes one use)."""
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and fault.scope in (scope, "any"):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # --- commerce ------------------------------------------------------------------------

    def checkout(
        self,
        shop: str | Shop,
        customer_email: str | None = None,
        line_items: Sequence[Mapping[str, Any]] = (),
        discount_codes: Sequence[str] = (),
        currency: str | None = None,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        test: bool = False,
        shipping_address: dict[str, Any] | None = None,
        note: str | None = None,
    ) -> dict[str, Any]:
        """Place a paid order as Shopify's checkout would (see :mod:`.commerce` for how codes
        apply) and deliver ``orders/create`` and ``orders/paid``. Returns the REST order.
        Raises :class:`CommerceError` for an unknown, inactive or exhausted code."""
        return self._commerce(
            shop,
            lambda env: rest.order_json(
                env.shop,
                commerce.checkout(
                    env,
                    customer_email=customer_email,
                    line_items=line_items,
                    discount_codes=list(discount_codes or ()),
                    currency=currency,
                    first_name=first_name,
                    last_name=last_name,
                    test=test,
                    shipping_address=shipping_address,
                    note=note,
                ),
            ),
        )

    def refund(
        self,
        shop: str | Shop,
        order_id: int | str,
        line_items: Sequence[Mapping[str, Any]] | None = None,
        note: str | None = None,
    ) -> dict[str, Any]:
        """Refund ``[{line_item_id, quantity}]`` (everything left when empty); delivers
        ``refunds/create`` and ``orders/updated``. Returns the REST refund."""

        def run(env: Env) -> dict[str, Any]:
            order = commerce.find_order(env.shop, order_id)
            record = commerce.refund(env, order, line_items, note)
            return rest.refund_json(env.shop, order, record)

        return self._commerce(shop, run)

    def cancel(
        self,
        shop: str | Shop,
        order_id: int | str,
        *,
        reason: str = "customer",
        refund: bool = False,
    ) -> dict[str, Any]:
        """Cancel an order (optionally refunding what is left); delivers ``orders/cancelled`` and
        ``orders/updated``. Returns the REST order."""

        def run(env: Env) -> dict[str, Any]:
            order = commerce.find_order(env.shop, order_id)
            commerce.cancel(env, order, reason=reason, restock_refund=refund)
            return rest.order_json(env.shop, order)

        return self._commerce(shop, run)

    def order(self, shop: str | Shop, order_id: int | str) -> dict[str, Any]:
        """The REST order as it is now."""
        with self._lock:
            target = self.shop(shop)
            return rest.order_json(target, commerce.find_order(target, order_id))

    def _commerce(self, shop: str | Shop, operation: Callable[[Env], Any]) -> Any:
        with self._lock:
            env = self._env(self.shop(shop))
            commerce.process_due_jobs(env)
            bulk.advance(env, self.bulk)
            result = operation(env)
            events = env.events
        self._deliver_events(env.shop.domain, events)
        return result

    def process_jobs(self) -> None:
        """Finish asynchronous work that is due (it also happens on every request)."""
        due: list[tuple[str, list[Event]]] = []
        with self._lock:
            for shop in self._shops.values():
                env = self._env(shop)
                commerce.process_due_jobs(env)
                bulk.advance(env, self.bulk)
                due.append((shop.domain, env.events))
        for domain, events in due:
            self._deliver_events(domain, events)

    # --- bulk operations -------------------------------------------------------------------

    def fail_next_bulk_operation(
        self, error_code: str = "INTERNAL_SERVER_ERROR", after_objects: int = 0
    ) -> None:
        """The next bulk operation started ends ``FAILED`` with ``error_code`` (a
        ``BulkOperationErrorCode``) once ``after_objects`` objects were read (its
        ``partialDataUrl`` holds them)."""
        if error_code not in ("ACCESS_DENIED", "INTERNAL_SERVER_ERROR", "TIMEOUT"):
            raise ValueError(f"unknown BulkOperationErrorCode {error_code!r}")
        with self._lock:
            self.bulk.failures.append((error_code, int(after_objects)))

    def bulk_operation(self, shop: str | Shop, operation_id: int) -> BulkOperation | None:
        """A bulk operation as it is now (advanced to the current time)."""
        with self._lock:
            target = self.shop(shop)
            env = self._env(target)
            bulk.advance(env, self.bulk)
            found = target.bulk_operations.get(operation_id)
        self._deliver_events(target.domain, env.events)
        return found

    def uninstall(self, shop: str | Shop) -> dict[str, Any]:
        """The merchant uninstalls the app: tokens are revoked, ``app/uninstalled`` is
        delivered, API webhook subscriptions are removed. Returns :meth:`send_webhook`'s
        answer."""
        with self._lock:
            target = self.shop(shop)
            target.installed = False
            self.authority.revoke_shop(target.domain)
            payload = rest.shop_json(target)
            deliveries = self._prepare(target, "app/uninstalled", payload, str(uuid.uuid4()))
            target.webhook_subscriptions.clear()
        return self.webhooks.dispatch(deliveries)

    # --- webhooks ------------------------------------------------------------------------

    def send_webhook(
        self,
        shop: str | Shop,
        topic: str,
        payload: dict[str, Any],
        webhook_id: str | None = None,
    ) -> dict[str, Any]:
        """Deliver ``payload`` for ``topic`` as Shopify would (to the topic's subscriptions, else
        the default URL), signed with the api secret. Returns ``{"status", "webhook_id",
        "deliveries"}`` (``status`` of the first delivery; None if nothing answered or the
        delivery is queued)."""
        with self._lock:
            target = self.shop(shop)
            deliveries = self._prepare(target, topic, payload, str(uuid.uuid4()), webhook_id)
        return self.webhooks.dispatch(deliveries)

    def flush_webhooks(self, order: Literal["fifo", "lifo"] = "fifo") -> list[dict[str, Any]]:
        """Send the queued deliveries (``webhook_mode="manual"``), oldest or newest first."""
        return self.webhooks.flush(order)

    def redeliver_failed(self) -> list[dict[str, Any]]:
        """Retry every delivery whose latest attempt failed (same body, same webhook id, as
        Shopify's retries); returns the new attempts."""
        return self.webhooks.redeliver_failed()

    def _prepare(
        self,
        shop: Shop,
        topic: str,
        payload: dict[str, Any],
        event_id: str,
        webhook_id: str | None = None,
    ) -> list[Delivery]:
        """Address a delivery to the topic's API subscriptions, else to the app's default
        endpoint (as for subscriptions declared in the app's configuration)."""
        targets = [
            (s.uri, s.api_version)
            for s in shop.webhook_subscriptions.values()
            if s.topic == topic and s.uri.startswith(("http://", "https://"))
        ]
        if not targets and self.app_url:
            targets = [(self.app_url.rstrip("/") + self.webhook_path, self.api_version)]
        return self.webhooks.prepare(
            secret=self.api_secret,
            shop=shop.domain,
            topic=topic,
            payload=payload,
            targets=targets,
            event_id=event_id,
            fired_at=self.now(),
            webhook_id=webhook_id,
        )

    def _deliver_events(self, shop: str, events: Sequence[Event]) -> None:
        if not events:
            return
        with self._lock:
            target = self._shops[shop]
            prepared = [
                delivery
                for event in events
                for delivery in self._prepare(target, event.topic, event.payload, event.event_id)
            ]
        self.webhooks.dispatch(prepared)

    # --- helpers -------------------------------------------------------------------------

    def _env(self, shop: Shop) -> Env:
        return Env(shop=shop, ids=self._ids, now=self.now(), clock=self._clock())

    def state_summary(self) -> dict[str, Any]:
        """Counts per shop plus the emulator's logs (for ``GET /_emulator/state``)."""
        with self._lock:
            return {
                "shops": {
                    domain: {
                        "installed": shop.installed,
                        "plan": shop.plan,
                        "currency": shop.currency,
                        "customers": len(shop.customers),
                        "orders": len(shop.orders),
                        "discounts": len(shop.discounts),
                        "redeem_codes": len(shop.redeem_codes),
                        "webhook_subscriptions": len(shop.webhook_subscriptions),
                        "gift_cards": len(shop.gift_cards),
                        "store_credit_accounts": len(shop.store_credit_accounts),
                        "bucket_available": int(shop.bucket.available),
                    }
                    for domain, shop in self._shops.items()
                },
                "graphql_calls": len(self.graphql_calls),
                "throttled_calls": sum(1 for c in self.graphql_calls if c["throttled"]),
                "deliveries": len(self.deliveries),
                "failed_deliveries": sum(1 for d in self.deliveries if not d["ok"]),
                "pending_webhooks": len(self.pending_webhooks),
                "token_requests": list(self.token_requests),
            }


def _grant_label(grant_type: str) -> str:
    return {
        "urn:ietf:params:oauth:grant-type:token-exchange": "token_exchange",
        "refresh_token": "refresh_token",
        "authorization_code": "authorization_code",
    }.get(grant_type, grant_type or "unknown")


__all__ = ["CommerceError", "Fault", "ShopifyEmulator"]
