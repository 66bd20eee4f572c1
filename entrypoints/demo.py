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
    _tiers(app)
    _referred_orders(app, emulator, rng)
    _applications(app, rng)
    delivered = _seed_payouts(app, emulator, rng)

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
