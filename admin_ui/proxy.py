"""Storefront pages through Shopify's app proxy (``/apps/ambassadors/...`` → ``/proxy/...``).

Every request is checked against Shopify's ``signature`` query parameter with Shopify's own
``shopifyapp`` (``verify_app_proxy_req``: hex HMAC-SHA256 with the app secret, current or
previous, over the other parameters sorted, list values joined by ``,``; the timestamp within
90 seconds). Missing or wrong: 401, and nothing else happens. The signed ``shop`` and
``logged_in_customer_id`` are the only identity trusted here.

Pages are answered as ``application/liquid``: Shopify renders them inside the store's theme
(its header, footer, fonts and colours), so applying feels like part of the shop rather than a
bare page on another site. Shopify evaluates Liquid in that answer, so every value printed is
HTML-escaped (Jinja autoescape) *and* has its braces turned into entities: text a visitor typed
(``{{ shop.metafields }}``) is shown as typed and never runs as Liquid.

Forms post back through the proxy, where no cookie of ours exists, so CSRF protection is a
hidden form token: HMAC (keyed with ``SECRET_KEY``) over the shop, the signed-in customer (or
none) and the time it was issued, valid for :data:`FORM_TOKEN_MAX_AGE`. A page on another site
cannot read a signed-in customer's form, so it cannot make them apply; a token for one shop or
customer is refused for any other.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from flask import Blueprint, Response, current_app, g, request
from jinja2 import Environment
from markupsafe import Markup, escape
from shopify_app import ShopifyApp
from werkzeug.exceptions import RequestEntityTooLarge

from adapters.db.engine import DatabaseUnavailable
from connector.domain.applications import (
    NAME_MAX,
    SOCIAL_LABELS,
    SOCIAL_NETWORKS,
    TEXT_MAX,
    TEXTAREA_MAX,
    URL_MAX,
    WEBSITE_MAX,
    client_fingerprint,
)
from connector.domain.program import ApplicationQuestion
from connector.domain.shops import InvalidShopDomain, Shop, normalise_shop_domain
from connector.ports import PlatformError, PlatformRetryable
from connector.services import applications
from connector.services.ambassadors import ProgramError
from connector.services.installation import NotInstalled

log = logging.getLogger(__name__)

bp = Blueprint("proxy", __name__, url_prefix="/proxy")

#: An application is a few short answers; anything bigger is not one.
MAX_BODY = 16 * 1024
MAX_FORM_PARTS = 64
#: Long enough to write thoughtful answers, short enough that a harvested token goes stale.
FORM_TOKEN_MAX_AGE = timedelta(hours=12)
FORM_TOKEN_SKEW = timedelta(minutes=5)  # another process's clock may run a little ahead
HONEYPOT = "ap_confirm_details"  # hidden from people; bots fill every field they find
DEFAULT_PATH_PREFIX = "/apps/ambassadors"

_SIGNATURE = re.compile(r"^[0-9a-fA-F]{64}$")
_PATH_PREFIX = re.compile(r"^/(apps|a|community|tools)/[A-Za-z0-9_-]{1,64}$")
_TOKEN = re.compile(r"^(\d{1,12})\.([0-9a-f]{64})$")


@dataclass(frozen=True)
class ProxyRequest:
    shop: str
    customer_id: int | None
    path_prefix: str


def _c() -> Any:
    return current_app.extensions["ambassador"]


# --- verification ---------------------------------------------------------------------------


def _shopify_app() -> ShopifyApp | None:
    cached = current_app.extensions.get("ambassador.proxy_app")
    if cached is None:
        s = _c().settings
        if not s.shopify_api_key or not s.shopify_api_secret:
            return None
        cached = ShopifyApp(s.shopify_api_key, s.shopify_api_secret, s.shopify_api_secret_old)
        current_app.extensions["ambassador.proxy_app"] = cached
    return cached


def verify_proxy_request() -> ProxyRequest | None:
    """The signed parameters of this request, or None when it is not Shopify's."""
    query = request.query_string.decode("utf-8", "replace")
    params = parse_qs(query, keep_blank_values=True)
    signature = params.get("signature", [])
    # The library compares with hmac.compare_digest, which refuses non-ASCII text (a 500):
    # anything that is not one hex digest is simply not a signature.
    if len(signature) != 1 or not _SIGNATURE.fullmatch(signature[0]):
        return None
    app = _shopify_app()
    if app is None:
        return None
    try:
        result = app.verify_app_proxy_req(
            {
                "method": request.method,
                "headers": {},
                "url": f"https://app.invalid{request.path}?{query}",
                "body": "",  # not signed; the library would only parse it to redact it
            }
        )
    except (TypeError, ValueError) as exc:
        log.warning("proxy.signature.unverifiable", extra={"error": type(exc).__name__})
        return None
    if not result.ok:
        log.warning("proxy.signature.invalid", extra={"code": result.log.code})
        return None
    shops = params.get("shop", [])
    customers = params.get("logged_in_customer_id", [""])
    prefixes = params.get("path_prefix", [DEFAULT_PATH_PREFIX])
    try:
        shop = normalise_shop_domain(shops[0] if len(shops) == 1 else None)
    except InvalidShopDomain:
        return None
    if len(customers) != 1 or not (customers[0] == "" or re.fullmatch(r"\d{1,19}", customers[0])):
        return None
    prefix = prefixes[0] if len(prefixes) == 1 else ""
    return ProxyRequest(
        shop=shop,
        customer_id=int(customers[0]) if customers[0] else None,
        path_prefix=prefix if _PATH_PREFIX.fullmatch(prefix) else DEFAULT_PATH_PREFIX,
    )


@bp.before_request
def _verify() -> Any:
    request.max_content_length = MAX_BODY
    request.max_form_parts = MAX_FORM_PARTS
    verified = verify_proxy_request()
    if verified is None:
        return Response("Unauthorized", status=401, mimetype="text/plain")
    g.proxy = verified
    return None


# --- form tokens ----------------------------------------------------------------------------


def _token_key() -> bytes:
    secret = _c().settings.secret_key.encode()
    return hmac.new(secret, b"ambassador.proxy.form-token", hashlib.sha256).digest()


def _token_digest(shop: str, customer_id: int | None, issued: int) -> str:
    message = f"apply|{shop}|{customer_id or '-'}|{issued}".encode()
    return hmac.new(_token_key(), message, hashlib.sha256).hexdigest()


def issue_form_token(shop: str, customer_id: int | None, now: datetime) -> str:
    issued = int(now.timestamp())
    return f"{issued}.{_token_digest(shop, customer_id, issued)}"


def form_token_valid(token: str | None, shop: str, customer_id: int | None, now: datetime) -> bool:
    match = _TOKEN.fullmatch(token or "")
    if match is None:
        return False
    issued = int(match.group(1))
    age = now.timestamp() - issued
    if age > FORM_TOKEN_MAX_AGE.total_seconds() or age < -FORM_TOKEN_SKEW.total_seconds():
        return False
    return hmac.compare_digest(match.group(2), _token_digest(shop, customer_id, issued))


# --- rendering ------------------------------------------------------------------------------


def _liquid_safe(value: Any) -> Markup:
    """HTML-escape, then neutralise Liquid's ``{{``/``{%`` (Shopify renders our answer)."""
    if value is None:
        return Markup("")
    escaped = str(escape(value)).replace("{", "&#123;").replace("}", "&#125;")
    return Markup(escaped)  # noqa: S704 - escaped on the line above


def _env() -> Environment:
    env = current_app.extensions.get("ambassador.proxy_jinja")
    if env is None:
        env = current_app.jinja_env.overlay(finalize=_liquid_safe, autoescape=True)
        current_app.extensions["ambassador.proxy_jinja"] = env
    return env


def _page(template: str, status: int = 200, **context: Any) -> Response:
    shop_name = context.pop("shop_name", None) or g.proxy.shop
    html = _env().get_template(template).render(shop_name=shop_name, **context)
    response = Response(html, status=status, content_type="application/liquid")
    # Personal, and carries a form token: never cached by Shopify, proxies or the browser.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def _message(
    status: int, title: str, *paragraphs: str, shop: Shop | None = None, back: bool = False
) -> Response:
    return _page(
        "proxy_message.html",
        status,
        title=title,
        paragraphs=paragraphs,
        shop_name=shop.name if shop else None,
        back_url=f"{g.proxy.path_prefix}/apply" if back else None,
    )


def _friendly(day: datetime | date) -> str:
    return f"{day:%B} {day.day}, {day.year}"


def _labels(questions: tuple[ApplicationQuestion, ...]) -> dict[str, str]:
    labels = {"first_name": "First name", "last_name": "Last name", "email": "Email"}
    labels.update({f"answers.{q.id}": q.label for q in questions})
    labels.update({f"social.{n}": SOCIAL_LABELS[n] for n in SOCIAL_NETWORKS})
    return labels


def _form(
    shop: Shop,
    questions: tuple[ApplicationQuestion, ...],
    *,
    status: int = 200,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    proxy: ProxyRequest = g.proxy
    return _page(
        "proxy_apply.html",
        status,
        shop_name=shop.name,
        action=f"{proxy.path_prefix}/apply",
        signed_in=proxy.customer_id is not None,
        questions=questions,
        networks=[(n, SOCIAL_LABELS[n]) for n in SOCIAL_NETWORKS],
        values=values or {},
        errors=errors or {},
        labels=_labels(questions),
        token=issue_form_token(proxy.shop, proxy.customer_id, _c().clock.now()),
        honeypot=HONEYPOT,
        limits={
            "name": NAME_MAX,
            "text": TEXT_MAX,
            "textarea": TEXTAREA_MAX,
            "url": URL_MAX,
            "website": WEBSITE_MAX,
        },
    )


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc: RequestEntityTooLarge) -> Response:
    return _message(
        413,
        "Your application is too long",
        "Please shorten your answers and send it again.",
        back=True,
    )


@bp.errorhandler(DatabaseUnavailable)
def _unavailable(exc: DatabaseUnavailable) -> Response:
    response = _message(503, "Please try again in a moment", "We could not save this just now.")
    response.headers["Retry-After"] = "30"
    return response


# --- the application form -------------------------------------------------------------------


def _installed_shop() -> Shop | None:
    with _c().uow() as uow:
        shop = uow.shops.get(g.proxy.shop)
    return shop if shop is not None and shop.installed else None


def _not_available() -> Response:
    return _message(
        404,
        "Applications are closed",
        "The ambassador program is not taking applications in this store right now.",
    )


@bp.get("/apply")
def apply_form() -> Response:
    """The form (or, for a signed-in customer we know, why there is none)."""
    shop = _installed_shop()
    if shop is None:
        return _not_available()
    c = _c()
    state = applications.application_form(c.uow(), c.clock, shop, g.proxy.customer_id)
    if state.outcome is not None:
        return _outcome_page(shop, state.outcome, None, "")
    if state.reapply_on is not None:
        return _too_early(shop, state.reapply_on, status=200)
    return _form(shop, state.questions)


@bp.post("/apply")
def apply_submit() -> Response:
    shop = _installed_shop()
    if shop is None:
        return _not_available()
    c = _c()
    proxy: ProxyRequest = g.proxy
    fields = request.form
    if not form_token_valid(fields.get("form_token"), proxy.shop, proxy.customer_id, c.clock.now()):
        return _message(
            400,
            "This form has expired",
            "Please open the application form again and send it from there.",
            shop=shop,
            back=True,
        )
    if fields.get(HONEYPOT):
        # A bot: thank it as if it had worked, store nothing, teach it nothing.
        log.info("proxy.apply.honeypot", extra={"shop": shop.domain})
        return _message(200, "Thank you!", "We have received your application.", shop=shop)
    form = applications.ApplicationForm(
        first_name=fields.get("first_name"),
        last_name=fields.get("last_name"),
        email=fields.get("email"),
        answers={k[8:]: v for k, v in fields.items() if k.startswith("answers.")},
        social={n: fields.get(f"social.{n}", "") for n in SOCIAL_NETWORKS},
    )

    def find_customer(customer_id: int) -> Any:
        return c.discounts.get_customer(shop.domain, c.access_token(shop.domain), customer_id)

    try:
        result = applications.submit(
            c.uow(),
            c.jobs,
            c.clock,
            shop,
            form,
            customer_id=proxy.customer_id,
            find_customer=find_customer,
            client_hash=client_fingerprint(c.settings.secret_key, client_ip()),
        )
    except applications.InvalidSubmission as exc:
        state = applications.application_form(c.uow(), c.clock, shop, None)
        values = {k: v for k, v in fields.items() if k not in ("form_token", HONEYPOT)}
        return _form(shop, state.questions, status=422, values=values, errors=exc.errors)
    except applications.RateLimited as exc:
        log.info("proxy.apply.rate_limited", extra={"shop": shop.domain})
        response = _message(
            429,
            "Too many applications",
            f"{exc.message[:1].upper()}{exc.message[1:]}.",
            shop=shop,
        )
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except applications.TooEarly as exc:
        return _too_early(shop, exc.reapply_on, status=409)
    except ProgramError as exc:
        return _message(422, "We could not take your application", exc.message, shop=shop)
    except (PlatformRetryable, NotInstalled):
        response = _message(
            503, "Please try again in a moment", "We could not reach the store.", shop=shop
        )
        response.headers["Retry-After"] = "30"
        return response
    except PlatformError:
        return _message(
            502, "Please try again later", "We could not look up your account.", shop=shop
        )
    return _outcome_page(shop, result.outcome, result.email, result.first_name)


def _too_early(shop: Shop, reapply_on: datetime, *, status: int) -> Response:
    return _page(
        "proxy_message.html",
        status,
        shop_name=shop.name,
        title="Thank you for your interest",
        paragraphs=[
            "We looked at your application recently and cannot take a new one yet.",
            f"You are welcome to apply again from {_friendly(reapply_on)}.",
        ],
        when=reapply_on.date().isoformat(),
    )


def _outcome_page(
    shop: Shop, outcome: applications.Outcome, email: str | None, first_name: str
) -> Response:
    hello = f", {first_name}" if first_name else ""
    to = f" at {email}" if email else ""
    Outcome = applications.Outcome
    if outcome is Outcome.RECEIVED:
        return _message(
            200,
            f"Thank you{hello}!",
            "We have received your application. Our team reads every one of them, and we will "
            f"write to you{to} as soon as we have decided.",
            shop=shop,
        )
    if outcome is Outcome.APPROVED:
        return _message(
            200,
            f"Welcome aboard{hello}!",
            f"You are now one of our ambassadors. We have sent your personal code and link{to}.",
            shop=shop,
        )
    if outcome is Outcome.ALREADY_APPLIED:
        return _message(
            200,
            "We already have your application",
            f"It is being reviewed; we will write to you{to} as soon as we have decided.",
            shop=shop,
        )
    return _message(
        200,
        "You are already an ambassador",
        "This account already belongs to one of our ambassadors: thank you for being part of "
        "the program! Your code and link are in your welcome message.",
        shop=shop,
    )


def client_ip() -> str | None:
    """The visitor's address as Shopify forwarded it (``X-Forwarded-For``, leftmost valid
    entry: Shopify puts the visitor first and every proxy after it appends), else the peer."""
    for part in request.headers.get("X-Forwarded-For", "").split(","):
        candidate = part.strip()
        try:
            ipaddress.ip_address(candidate)
        except ValueError:
            continue
        return candidate
    return request.remote_addr
