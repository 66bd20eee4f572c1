"""The ambassador portal through the app proxy: ``/proxy/dashboard`` (storefront
``/apps/ambassadors/dashboard``), on the proxy blueprint (so every request is signature-checked
first, see :mod:`admin_ui.proxy`).

Who is asking: the signed ``logged_in_customer_id`` of an active ambassador, or else a portal
session ``s`` from a magic link. Shopify strips cookies from proxied requests, so the session
travels in the page's links and forms: ``{ambassador id}.{issued}.{HMAC}`` keyed with
``SECRET_KEY`` and bound to the shop, valid for :data:`SESSION_MAX_AGE`. Nothing on these pages
takes an ambassador id from the request: each shows and changes only the caller's own data.

Forms carry a token (HMAC over shop, ambassador and issue time) against cross-site posts made
with a signed-in customer's storefront cookies.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from datetime import datetime, timedelta
from urllib.parse import quote

from flask import Response, g, request

from admin_ui.proxy import _c, _installed_shop, _page, bp
from connector.domain.ambassadors import Ambassador
from connector.domain.shops import Shop
from connector.services import challenges, content, portal, resources
from connector.services.ambassadors import ProgramError

log = logging.getLogger(__name__)

SESSION_MAX_AGE = timedelta(hours=12)
FORM_MAX_AGE = timedelta(hours=12)
_SESSION = re.compile(r"^(\d{1,18})\.(\d{1,12})\.([0-9a-f]{64})$")
_FORM = re.compile(r"^(\d{1,12})\.([0-9a-f]{64})$")


def _key(purpose: bytes) -> bytes:
    secret = _c().settings.secret_key.encode()
    return hmac.new(secret, b"ambassador.portal." + purpose, hashlib.sha256).digest()


def issue_session(shop: str, ambassador_id: int, now: datetime) -> str:
    issued = int(now.timestamp())
    digest = hmac.new(
        _key(b"session"), f"{shop}|{ambassador_id}|{issued}".encode(), hashlib.sha256
    ).hexdigest()
    return f"{ambassador_id}.{issued}.{digest}"


def session_ambassador(token: str | None, shop: str, now: datetime) -> int | None:
    match = _SESSION.fullmatch(token or "")
    if match is None:
        return None
    aid, issued = int(match.group(1)), int(match.group(2))
    age = now.timestamp() - issued
    if age > SESSION_MAX_AGE.total_seconds() or age < -300:
        return None
    expected = hmac.new(
        _key(b"session"), f"{shop}|{aid}|{issued}".encode(), hashlib.sha256
    ).hexdigest()
    return aid if hmac.compare_digest(match.group(3), expected) else None


def _form_token(shop: str, who: str, now: datetime) -> str:
    issued = int(now.timestamp())
    digest = hmac.new(_key(b"form"), f"{shop}|{who}|{issued}".encode(), hashlib.sha256)
    return f"{issued}.{digest.hexdigest()}"


def _form_ok(shop: str, who: str, now: datetime) -> bool:
    match = _FORM.fullmatch(request.form.get("form_token", ""))
    if match is None:
        return False
    issued = int(match.group(1))
    age = now.timestamp() - issued
    if age > FORM_MAX_AGE.total_seconds() or age < -300:
        return False
    expected = hmac.new(_key(b"form"), f"{shop}|{who}|{issued}".encode(), hashlib.sha256)
    return hmac.compare_digest(match.group(2), expected.hexdigest())


def _message(status: int, title: str, *paragraphs: str) -> Response:
    return _page("proxy_message.html", status, title=title, paragraphs=paragraphs)


def _who(shop: Shop) -> tuple[Ambassador | None, str | None]:
    """The calling ambassador (active only) and their portal session, if any."""
    c = _c()
    if g.proxy.customer_id is not None:
        found = portal.by_customer(c.uow(), shop, g.proxy.customer_id)
        if found is not None:
            return found, None
    session = request.values.get("s")
    aid = session_ambassador(session, g.proxy.shop, c.clock.now())
    if aid is not None:
        found = portal.by_id(c.uow(), shop, aid)
        if found is not None:
            return found, session
    return None, None


def _base() -> str:
    return f"{g.proxy.path_prefix}/dashboard"


def _back(session: str | None, flash: str | None = None) -> Response:
    params = []
    if session:
        params.append(f"s={quote(session)}")
    if flash:
        params.append(f"flash={quote(flash)}")
    location = f"{_base()}{'?' + '&'.join(params) if params else ''}"
    response = Response("", status=303, headers={"Location": location})
    response.headers["Cache-Control"] = "no-store"
    return response


def _login_page(shop: Shop, status: int = 200) -> Response:
    return _page(
        "proxy_login.html",
        status,
        shop_name=shop.name,
        action=f"{_base()}/login",
        signed_in=g.proxy.customer_id is not None,
        token=_form_token(g.proxy.shop, "login", _c().clock.now()),
    )


def _closed() -> Response:
    return _message(404, "Not available", "The ambassador program is not open in this store.")


@bp.get("/dashboard")
def dashboard() -> Response:
    shop = _installed_shop()
    if shop is None:
        return _closed()
    ambassador, session = _who(shop)
    if ambassador is None:
        return _login_page(shop)
    c = _c()
    data = portal.dashboard(c.uow(), c.clock, shop, ambassador)
    flash = request.args.get("flash", "")[:200] or None
    return _page(
        "proxy_dashboard.html",
        shop_name=shop.name,
        a=ambassador,
        d=data,
        s=session,
        q=f"?s={quote(session)}" if session else "",
        base=_base(),
        token=_form_token(g.proxy.shop, str(ambassador.id), c.clock.now()),
        unlock_on=portal.friendly_date(data["unlock"][0]) if data["unlock"] else None,
        flash=flash,
    )


@bp.post("/dashboard/login")
def request_link() -> Response:
    shop = _installed_shop()
    if shop is None:
        return _closed()
    c = _c()
    if not _form_ok(g.proxy.shop, "login", c.clock.now()):
        return _message(400, "This form has expired", "Please open the page again.")
    link = f"https://{shop.domain}{_base()}/login?token="
    portal.request_login(
        c.uow(), c.jobs, c.ids, c.clock, shop, request.form.get("email", "")[:254], link
    )
    return _message(
        200,
        "Check your email",
        "If this address belongs to one of our ambassadors, we have sent it a sign-in link. "
        "It works once, for 15 minutes.",
    )


@bp.get("/dashboard/login")
def redeem_link() -> Response:
    shop = _installed_shop()
    if shop is None:
        return _closed()
    c = _c()
    aid = portal.redeem_login(c.uow(), c.clock, shop, request.args.get("token", ""))
    if aid is None or portal.by_id(c.uow(), shop, aid) is None:
        return _message(
            400,
            "This link no longer works",
            "Sign-in links work once and for 15 minutes. Ask for a new one on your page.",
        )
    log.info("portal.login.redeemed", extra={"shop": shop.domain})
    return _back(issue_session(g.proxy.shop, aid, c.clock.now()))


def _acting() -> tuple[Shop, Ambassador, str | None] | Response:
    """The shop and ambassador of a form post, its token checked; or the page to answer."""
    shop = _installed_shop()
    if shop is None:
        return _closed()
    ambassador, session = _who(shop)
    if ambassador is None:
        return _login_page(shop, 401)
    if not _form_ok(g.proxy.shop, str(ambassador.id), _c().clock.now()):
        return _message(400, "This form has expired", "Please open your page again.")
    return shop, ambassador, session


@bp.post("/dashboard/disclosure")
def acknowledge() -> Response:
    acting = _acting()
    if isinstance(acting, Response):
        return acting
    shop, ambassador, session = acting
    assert ambassador.id is not None
    c = _c()
    content.acknowledge_disclosure(c.uow(), c.clock, shop, ambassador.id)
    return _back(session, "Thank you: your acknowledgement is recorded.")


@bp.post("/dashboard/challenges/<int:challenge_id>/join")
def join(challenge_id: int) -> Response:
    acting = _acting()
    if isinstance(acting, Response):
        return acting
    shop, ambassador, session = acting
    assert ambassador.id is not None
    c = _c()
    try:
        challenges.join(c.uow(), c.clock, shop, challenge_id, ambassador.id)
    except ProgramError as exc:
        return _message(exc.status, "You could not join", exc.message)
    return _back(session, "You are in: good luck!")


@bp.post("/dashboard/submissions")
def submit() -> Response:
    acting = _acting()
    if isinstance(acting, Response):
        return acting
    shop, ambassador, session = acting
    assert ambassador.id is not None
    c = _c()
    try:
        content.submit(
            c.uow(),
            c.clock,
            shop,
            ambassador.id,
            kind=request.form.get("kind", "post"),
            url=request.form.get("url", ""),
            text=request.form.get("text", ""),
        )
    except ProgramError as exc:
        return _message(exc.status, "We could not take this submission", exc.message)
    return _back(session, "Thank you: your submission is waiting for review.")



@bp.get("/dashboard/resources/<int:resource_id>")
def download(resource_id: int) -> Response:
    """A resource's file for the signed-in ambassador (counted toward their engagement)."""
    shop = _installed_shop()
    if shop is None:
        return _closed()
    ambassador, _session = _who(shop)
    if ambassador is None:
        return _login_page(shop, 401)
    c = _c()
    try:
        found, data = resources.download(
            c.uow(), c.storage, c.clock, shop, resource_id, ambassador.id
        )
    except ProgramError as exc:
        return _message(exc.status, "Not found", exc.message)
    response = Response(data, mimetype=found.content_type or "application/octet-stream")
    response.headers["Content-Disposition"] = f'attachment; filename="{found.filename}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response
