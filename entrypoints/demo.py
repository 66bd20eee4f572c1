"""``ambassador demo``: the whole system on one machine with nothing installed but Python.

Embedded database (SQLite in ``instance/``), in-process jobs, the bundled Shopify emulator, and
a demo store with customers and orders. The store is installed through the real path (the app
home's token exchange, over HTTP) and its orders arrive as signed webhooks.
"""

from __future__ import annotations

import logging
import random
import secrets
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
import httpx
from werkzeug.serving import make_server

from adapters.settings import Settings
from admin_ui.demo import DEMO_SHOP
from connector.domain.payouts import PayoutState
from connector.ports import AmbassadorQuery

log = logging.getLogger(__name__)

FIRST = ["Ava", "Noah", "Mia", "Leo", "Zoe", "Ravi", "Ines", "Kai", "Lena", "Omar", "Yuki", "Sam"]
LAST = ["Martin", "Okafor", "Nguyen", "Silva", "Kowalski", "Haddad", "Larsen", "Moreau", "Ito"]
PRODUCTS = [
    ("Trail Runner", "119.00"),
    ("Merino Tee", "45.00"),
    ("Rain Shell", "189.00"),
    ("Wool Socks", "18.50"),
    ("Day Pack", "79.00"),
]


def run_demo(
    *,
    port: int,
    emulator_port: int,
    customers: int,
    instance: Path | None = None,
    serve_forever: bool = True,
    keep_running: bool = False,
    database_url: str | None = None,
) -> dict[str, Any]:
    """Start everything; block until Ctrl-C when ``serve_forever``. With ``keep_running`` (tests)
    the servers stay up and ``urls["stop"]()`` stops them. ``database_url`` (tests: a fresh
    PostgreSQL database) replaces the SQLite file."""
    from adapters.salesforce.emulator import SalesforceEmulator
    from adapters.salesforce.emulator import serve_in_thread as serve_salesforce
    from adapters.shopify.emulator import ShopifyEmulator, serve_in_thread
    from entrypoints.cli import run_migrations
    from entrypoints.wsgi import create_app

    instance = instance or Path.cwd() / "instance" / "demo"
    instance.mkdir(parents=True, exist_ok=True)
    api_key, api_secret = "demo-app", secrets.token_urlsafe(32)
    app_url = f"http://127.0.0.1:{port}"

    emulator = ShopifyEmulator(api_key=api_key, api_secret=api_secret, app_url=app_url)
    emulator_server, emulator_url = serve_in_thread(emulator, host="127.0.0.1", port=emulator_port)
    # The Salesforce org: its fields deployed; the app connects to it after the install.
    sf_id, sf_secret = "demo-salesforce-app", secrets.token_urlsafe(32)
    salesforce_org = SalesforceEmulator(
        sf_id, sf_secret, redirect_uris=[f"{app_url}/salesforce/callback"],
        auto_approve=True, ambassador_fields=True,
    )
    salesforce_server, salesforce_url = serve_salesforce(salesforce_org, host="127.0.0.1")
    settings = Settings.from_env(
        {
            "AMBASSADOR_DEMO": "1",
            "APP_ENV": "development",
            "DATABASE_URL": database_url or f"sqlite:///{instance / 'demo.sqlite3'}",
            "INSTANCE_PATH": str(instance),
            "APP_URL": app_url,
            "SHOPIFY_API_KEY": api_key,
            "SHOPIFY_API_SECRET": api_secret,
            "SHOPIFY_API_BASE_URL": emulator_url,
            "SALESFORCE_CLIENT_ID": sf_id,
            "SALESFORCE_CLIENT_SECRET": sf_secret,
            "SALESFORCE_LOGIN_URL": salesforce_url,
            "LOG_LEVEL": "WARNING",
        }
    )
    click.echo(f"==> database {settings.database_url}")
    run_migrations(settings.database_url)

    app = create_app(settings, background_jobs=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request in the demo
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, name="web", daemon=True).start()

    emulator.add_shop(DEMO_SHOP, currency="USD", name="Summit Outfitters (demo)")
    rng = random.Random(7)  # the same demo store every time
    people = []
    with click.progressbar(range(customers), label="==> seeding customers") as bar:
        for i in bar:
            first, last = rng.choice(FIRST), rng.choice(LAST)
            people.append(
                emulator.add_customer(
                    DEMO_SHOP,
                    email=f"{first}.{last}.{i}@example.com".lower(),
                    first_name=first,
                    last_name=last,
                    orders_count=rng.randint(0, 12),
                    amount_spent=f"{rng.randint(0, 2400)}.00",
                )
            )

    click.echo("==> installing the app on the demo store (token exchange through the app home)")
    with httpx.Client(base_url=app_url, timeout=30) as web:
        token = emulator.mint_session_token(DEMO_SHOP)
        response = web.get("/app", params={"shop": DEMO_SHOP, "host": "ZGVtbw", "id_token": token})
        response.raise_for_status()

    orders = min(20, customers)
    with click.progressbar(range(orders), label="==> placing orders (signed webhooks)") as bar:
        for _ in bar:
            person = rng.choice(people)
            title, price = rng.choice(PRODUCTS)
            emulator.checkout(
                DEMO_SHOP,
                customer_email=person["email"],
                line_items=[{"title": title, "price": price, "quantity": rng.randint(1, 3)}],
                discount_codes=[],
            )
    app.extensions["ambassador"].jobs.join()
    contacts = _connect_salesforce(app, app_url, salesforce_org, people, rng)
    _snapshot(app, 21)
    _tiers(app)
    _referred_orders(app, emulator, rng)
    _snapshot(app, 14)
    _applications(app, rng)
    delivered = _seed_payouts(app, emulator, rng)
    _snapshot(app, 7)
    _engagement(app)

    urls: dict[str, Any] = {
        "salesforce": salesforce_url,
        "salesforce_org": salesforce_org,
        "shopify_emulator": emulator,
        "emulator_url": emulator_url,
        "container": app.extensions["ambassador"],
        "app_url": app_url,
        "admin": f"{app_url}/demo",
        "api_openapi": f"{app_url}/api/v1/openapi.json",
        "health": f"{app_url}/healthz",
        "emulator": f"{emulator_url}/_emulator/state",
    }
    click.echo("")
    click.echo("Ambassador Connector demo is running.")
    click.echo(f"  Open the app (as the merchant):  {urls['admin']}")
    click.echo(f"  API description:                 {urls['api_openapi']}")
    click.echo(f"  Health:                          {urls['health']}")
    click.echo(f"  Shopify emulator state:          {urls['emulator']}")
    click.echo(f"  Salesforce (emulated org):       {salesforce_url}: {contacts} Contacts "
               "carry Ambassador fields (Salesforce page of the app)")
    click.echo(f"  Payouts:                         {delivered} rewards delivered in the emulated "
               "store, a cash batch awaiting approval (Payouts page)")
    click.echo("  Engagement:                      a running and a closed challenge, content to "
               "review (Engagement page); a flyer and a post (Resources page)")
    click.echo("Press Ctrl-C to stop.")

    def stop() -> None:
        server.shutdown()
        app.extensions["ambassador"].jobs.close()
        emulator_server.shutdown()
        salesforce_server.shutdown()

    urls["stop"] = stop
    if serve_forever:
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            click.echo("stopping")
    if not keep_running:
        stop()
    return urls


def _seed_payouts(app: Any, emulator: Any, rng: random.Random) -> int:
    """Friends buy with the demo ambassadors' codes; the demo program has no hold, so a payout
    run delivers store credit and a gift card in the emulated store at once, and puts one
    ambassador's cash in a batch for the merchant to approve. Returns the rewards delivered."""
    from dataclasses import replace

    from connector.domain.payouts import PayoutSettings, RewardForm
    from connector.ports import PayoutPreference
    from connector.services import attribution, payouts

    c = app.extensions["ambassador"]
    with c.uow() as uow:
        shop = uow.shops.get(DEMO_SHOP)
        assert shop is not None and shop.id is not None
        settings = uow.program.settings(shop.id)
        uow.program.save_settings(shop.id, replace(
            settings, hold_days=0, payouts=PayoutSettings(
                form=RewardForm.STORE_CREDIT,
                choosable_forms=(RewardForm.GIFT_CARD, RewardForm.CASH),
                store_credit_bonus_percent=Decimal(10), minimum=Decimal(5))))
        enrolled = [a for a in uow.ambassadors.search(shop.id, AmbassadorQuery(limit=10))
                    if a.code and a.id is not None]
        for ambassador, form in zip(enrolled[1:3], (RewardForm.GIFT_CARD, RewardForm.CASH),
                                    strict=False):
            assert ambassador.id is not None
            uow.payouts.save_preference(shop.id, PayoutPreference(ambassador.id, form))
        uow.commit()
    click.echo("==> friends buy with ambassador codes; a payout run delivers the rewards")
    for n, ambassador in enumerate(enrolled[:4]):
        title, price = PRODUCTS[(n + rng.randint(0, 1)) % 3]  # above the 5.00 minimum
        emulator.checkout(DEMO_SHOP, customer_email=f"payout.friend.{n}@example.com",
                          discount_codes=[ambassador.code],
                          line_items=[{"title": title, "price": price, "quantity": 2}])
    c.jobs.join()
    attribution.approve_due_rewards(c.uow, c.clock)
    payouts.run_payouts(c.uow, c.jobs, c.clock, DEMO_SHOP, actor="demo", period="demo")
    c.jobs.join()
    with c.uow() as uow:
        return len(uow.payouts.search(shop.id, states=[PayoutState.FULFILLED]))


def _connect_salesforce(
    app: Any, app_url: str, org: Any, people: list[dict[str, Any]], rng: random.Random
) -> int:
    """Connect the emulated org the way a merchant does (the authorize URL, the redirect back to
    the callback), enrol a few customers (some already Contacts in the org: matched by email,
    not duplicated), and wait for the sync. Returns how many Contacts carry Ambassador fields."""
    from connector.services import ambassadors, salesforce

    c = app.extensions["ambassador"]
    chosen = rng.sample(people, min(6, len(people)))
    for person in chosen[:3]:  # already in the CRM before the connector came
        org.add_contact(FirstName=person.get("first_name") or "", LastName=person.get(
            "last_name") or "Customer", Email=person["email"])
    click.echo("==> connecting the Salesforce org (OAuth with PKCE, through the callback)")
    with c.uow() as uow:
        shop = uow.shops.get(DEMO_SHOP)
    url = salesforce.begin_connect(c.uow, c.salesforce, c.ids, c.clock, shop,
                                   c.salesforce_redirect_uri)
    with httpx.Client(timeout=60) as web:
        redirect = web.get(url, follow_redirects=False)
        web.get(redirect.headers["Location"]).raise_for_status()
        for person in chosen:
            ambassadors.enrol(c.uow(), c.jobs, c.clock, shop, email=person["email"],
                              first_name=person.get("first_name") or "",
                              last_name=person.get("last_name") or "",
                              customer_id=int(person["id"]), source="demo")
    c.jobs.join()
    salesforce.sync(c.uow, c.salesforce, c.clock, DEMO_SHOP)  # anything the queue coalesced
    return sum(1 for contact in org.contacts() if contact.get("Ambassador_Id__c"))


TIERS = [
    {"name": "Micro", "position": 1, "commission_rate": "10", "perks": ["Early access"]},
    {"name": "Macro", "position": 2, "commission_rate": "12.5", "min_revenue": "150",
     "perks": ["Early access", "Free product each season"]},
    {"name": "Top", "position": 3, "commission_rate": "15", "min_revenue": "400",
     "min_orders": 3, "perks": ["Early access", "Free product each season", "VIP events"]},
]


def _tiers(app: Any) -> None:
    """Micro, Macro and Top, by results over the tier window (the tiers page and the
    dashboard's tier chart)."""
    from connector.services import program

    c = app.extensions["ambassador"]
    with c.uow() as uow:
        shop = uow.shops.get(DEMO_SHOP)
    for data in TIERS:
        program.save_tier(c.uow(), shop, program.parse_tier(data))


def _referred_orders(app: Any, emulator: Any, rng: random.Random) -> None:
    """Friends of the ambassadors buy with their codes (signed webhooks again), so the
    dashboard's charts and the ambassadors' ledgers have something to show."""
    from connector.services import tiers

    c = app.extensions["ambassador"]
    with c.uow() as uow:
        shop = uow.shops.get(DEMO_SHOP)
        assert shop is not None and shop.id is not None
        codes = [a.code for a in uow.ambassadors.issued_codes(shop.id) if a.code]
    friend = 0
    for code in codes[:4]:
        for _ in range(rng.randint(1, 3)):
            friend += 1  # a new buyer each time: the code is once per customer
            title, price = rng.choice(PRODUCTS)
            emulator.checkout(
                DEMO_SHOP,
                customer_email=f"friend.{friend}@example.com",
                line_items=[{"title": title, "price": price, "quantity": rng.randint(1, 2)}],
                discount_codes=[code],
            )
    c.jobs.join()
    tiers.evaluate_tiers(c.uow, c.clock, DEMO_SHOP)


APPLICANTS = [
    ("Priya", "Raman", "I run a trail-running club of 40 people and we all wear your shoes.",
     "https://instagram.com/priya.runs"),
    ("Jonas", "Berg", "Your rain shell survived a week on the Kungsleden; I post gear reviews.",
     "https://youtube.com/@jonasoutdoors"),
    ("Amara", "Diallo", "I teach hiking for beginners and recommend kit every weekend.", ""),
]


def _applications(app: Any, rng: random.Random) -> None:
    """A few storefront applications waiting for the merchant's review (the core path the app
    proxy form takes, without a signed-in customer)."""
    from connector.services import applications

    c = app.extensions["ambassador"]
    with c.uow() as uow:
        shop = uow.shops.get(DEMO_SHOP)
    for first, last, why, audience in APPLICANTS:
        form = applications.ApplicationForm(
            first_name=first, last_name=last, email=f"{first}.{last}@example.com".lower(),
            answers={"why": why, "audience": audience}, social={},
        )
        applications.submit(c.uow(), c.jobs, c.clock, shop, form, customer_id=None,
                            find_customer=lambda _id: None, client_hash=None)
    c.jobs.join()


# A one-page PDF (what a flyer is) written out here, so the demo needs no binary fixture.
_FLYER_TEXT = b"BT /F1 24 Tf 72 720 Td (Summit Outfitters: 15% off with my code) Tj ET"


def _flyer_pdf() -> bytes:
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(_FLYER_TEXT), _FLYER_TEXT),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (n, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


def _engagement(app: Any) -> None:
    """Last month's content challenge, closed with its winners paid (prizes in the ledger); this
    month's referral race, running, with standings from the demo's orders; posts waiting for
    review (one without a disclosure); a flyer and a pre-written post in the resources library;
    and today's engagement scores, so the Engagement, Resources and Return on influence pages
    open populated. Last month happens through a unit of work on a clock set
    back (the records carry last month's times)."""
    from datetime import timedelta

    from adapters.clock import FakeClock
    from adapters.db.unit_of_work import SqlAlchemyUnitOfWork
    from connector.domain.ambassadors import AmbassadorStatus
    from connector.services import challenges, content, engagement, resources

    c = app.extensions["ambassador"]
    now = c.clock.now()
    with c.uow() as uow:
        shop = uow.shops.get(DEMO_SHOP)
        assert shop is not None and shop.id is not None
        # Those with the most referred revenue first: they lead the running challenge.
        found = uow.ambassadors.search(shop.id, AmbassadorQuery(status="active", limit=50))
        totals = uow.ledger.totals(shop.id, [a.id for a in found if a.id is not None])
    revenue = {aid: t.attributed_revenue for aid, t in totals.items()}
    active = sorted(
        (a for a in found if a.status is AmbassadorStatus.ACTIVE and a.id is not None),
        key=lambda a: (-revenue.get(a.id or 0, Decimal(0)), a.id or 0),
    )
    if len(active) < 3:
        return
    click.echo("==> challenges, content to review, resources and engagement scores")
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    past = FakeClock((month_start - timedelta(days=1)).replace(day=10, hour=15))

    def then() -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(c.engine, c.cipher, past)

    sprint = challenges.create(then(), past, shop, {
        "preset": "monthly", "month": f"{past.now():%Y-%m}",
        "name": f"Content sprint, {past.now():%B}", "metric": "approved_content",
        "mode": "ranking",
        "prizes": [{"rank": 1, "amount": "40.00"}, {"rank": 2, "amount": "20.00"}],
    }, "demo")
    assert sprint.id is not None
    for n, ambassador in enumerate(active[:3]):
        assert ambassador.id is not None
        challenges.join(then(), past, shop, sprint.id, ambassador.id)
        for post in range(3 - n):  # 3, 2 and 1 approved posts: places are clear
            past.advance(hours=5)
            made = content.submit(
                then(), past, shop, ambassador.id, kind="post",
                url=f"https://instagram.com/p/demo-{ambassador.id}-{post}",
                text="Trail day in the new Rain Shell #ad")
            assert made.id is not None
            content.decide(then(), past, shop, made.id, approve=True, reason=None, actor="demo")
    challenges.close(c.uow, c.clock, shop.id, sprint.id)

    race = challenges.create(c.uow(), c.clock, shop, {
        "preset": "monthly", "month": f"{now:%Y-%m}", "name": f"Referral race, {now:%B}",
        "metric": "revenue", "mode": "ranking",
        "prizes": [{"rank": 1, "amount": "75.00"}, {"rank": 2, "amount": "40.00"},
                   {"rank": 3, "amount": "20.00"}],
    }, "demo")
    assert race.id is not None
    for ambassador in active[:6]:
        assert ambassador.id is not None
        challenges.join(c.uow(), c.clock, shop, race.id, ambassador.id)

    waiting = [
        ("post", "https://instagram.com/p/demo-waiting-1", "Loving my Merino Tee #sponsored"),
        ("post", "https://tiktok.com/@demo/video/2", "Packed for the weekend with my Day Pack"),
        ("review", "https://youtube.com/watch?v=demo3", "Rain Shell review, paid partnership"),
    ]
    for ambassador, (kind, url, text) in zip(active[3:] + active[:3], waiting, strict=False):
        assert ambassador.id is not None
        content.submit(c.uow(), c.clock, shop, ambassador.id, kind=kind, url=url, text=text)

    resources.upload(c.uow(), c.storage, c.ids, shop, title="Spring flyer (print, A4)",
                     kind="flyer", filename="spring-flyer.pdf", content_type="application/pdf",
                     data=_flyer_pdf())
    resources.add_post(c.uow(), shop, title="Post: why I run in Summit shoes",
                       body="Three seasons on the trail in my Summit Trail Runners. Use my code "
                            "for 15% off your first order.")

    engagement.score_shop(c.uow, c.clock, DEMO_SHOP)


def _snapshot(app: Any, days_ago: int) -> None:
    """The engagement scores and band shares of the store as seeded so far, dated ``days_ago``
    (the demo seeds in stages, each scored as an earlier day, so the shares-over-time chart
    shows the program growing instead of a single point)."""
    from datetime import timedelta
    from functools import partial

    from adapters.clock import FakeClock
    from adapters.db.unit_of_work import SqlAlchemyUnitOfWork
    from connector.services import engagement

    c = app.extensions["ambassador"]
    at = FakeClock(c.clock.now() - timedelta(days=days_ago))
    engagement.score_shop(partial(SqlAlchemyUnitOfWork, c.engine, c.cipher, at), at, DEMO_SHOP)
