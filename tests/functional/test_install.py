"""Installing: token exchange on the app home, and the authorization-code install link.

Here Shopify is a fake (``FakeCommercePlatform``); the emulator tests run the same journeys
over HTTP against the Shopify emulator.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import parse_qs, urlparse

import pytest

from adapters.bootstrap import bootstrap
from adapters.queue.inprocess import InProcessJobQueue
from entrypoints import jobs
from entrypoints.wsgi import create_app
from tests.conftest import API_SECRET, SHOP, fixture_json, webhook_headers
from tests.fakes import FakeCommercePlatform
from tests.tokens import session_token


@pytest.fixture
def platform():
    return FakeCommercePlatform()


@pytest.fixture
def c(settings, platform):
    container = bootstrap(settings, shopify=platform, jobs=InProcessJobQueue(threaded=False))
    yield container
    jobs.configure(None)
    container.close()


@pytest.fixture
def client(c):
    return create_app(container=c).test_client()


def open_app(client, shop=SHOP, token=None):
    token = token if token is not None else session_token(shop)
    return client.get("/app", query_string={"shop": shop, "host": "aG9zdA", "id_token": token})


def test_first_load_exchanges_the_token_stores_it_and_registers_webhooks(client, c, platform):
    response = open_app(client)
    assert response.status_code == 200
    assert b"Test Shop" in response.data
    assert (
        "frame-ancestors https://test-shop.myshopify.com"
        in response.headers["Content-Security-Policy"]
    )
    assert platform.exchanges == [SHOP]
    assert platform.registered and platform.registered[0][2] == c.webhook_uri
    with c.uow() as uow:
        shop = uow.shops.get(SHOP)
    assert shop.installed and shop.token.access_token.startswith("shpat_fake")
    assert shop.webhooks_registered_at is not None and shop.currency == "USD"


def test_later_loads_do_not_exchange_again(client, platform):
    open_app(client)
    open_app(client)
    open_app(client)
    assert platform.exchanges == [SHOP]
    assert len(platform.registered) == 1


def test_reinstall_after_uninstall_exchanges_again_and_reregisters(client, c, platform):
    open_app(client)
    raw = json.dumps({"domain": SHOP}).encode()
    client.post("/webhooks/shopify", data=raw, headers=webhook_headers("app/uninstalled", raw))
    with c.uow() as uow:
        assert not uow.shops.get(SHOP).installed
    assert open_app(client).status_code == 200
    assert platform.exchanges == [SHOP, SHOP]
    assert len(platform.registered) == 2


def test_a_token_for_another_shop_is_refused(client, platform):
    response = open_app(client, token=session_token("other-shop.myshopify.com"))
    assert response.status_code == 401
    assert platform.exchanges == []


@pytest.mark.parametrize("token", [session_token(secret="forged"), "garbage"])
def test_a_forged_id_token_is_refused(client, platform, token):
    assert open_app(client, token=token).status_code == 401
    assert platform.exchanges == []


def test_no_id_token_bounces_through_the_patch_page_to_get_one(client, platform):
    response = client.get("/app", query_string={"shop": SHOP, "host": "aG9zdA"})
    assert response.status_code == 302
    assert "/app/patch-id-token" in response.headers["Location"]
    assert "shopify-reload" in response.headers["Location"]
    page = client.get(response.headers["Location"])
    assert page.status_code == 200 and b"app-bridge" in page.data
    assert platform.exchanges == []


@pytest.mark.parametrize("shop", ["evil.example.com", "shop.myshopify.com.evil.com", "", "a b"])
def test_a_bad_shop_domain_is_rejected_everywhere(client, platform, shop):
    assert open_app(client, shop=shop).status_code == 400
    assert client.get("/auth", query_string={"shop": shop}).status_code == 400


def test_shop_names_with_markup_are_escaped(client, platform, monkeypatch):
    from connector.ports import ShopInfo

    monkeypatch.setattr(
        platform, "shop_info", lambda *a: ShopInfo('<script>alert("x")</script>', None, "USD")
    )
    response = open_app(client)
    assert b"<script>alert" not in response.data
    assert b"&lt;script&gt;" in response.data


# --- the install link ------------------------------------------------------------------------


def sign_query(params: dict[str, str], secret: str = API_SECRET) -> dict[str, str]:
    message = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    return {
        **params,
        "hmac": hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest(),
    }


def begin(client) -> str:
    response = client.get("/auth", query_string={"shop": SHOP})
    assert response.status_code == 302
    location = urlparse(response.headers["Location"])
    query = parse_qs(location.query)
    assert location.netloc == SHOP and location.path == "/admin/oauth/authorize"
    assert query["redirect_uri"] == ["http://127.0.0.1:8000/auth/callback"]
    assert query["client_id"] == ["test_client_id"]
    return query["state"][0]


def callback(client, state, shop=SHOP, secret=API_SECRET, **extra):
    params = sign_query(
        {
            "code": "authcode",
            "shop": shop,
            "state": state,
            "timestamp": "1750000000",
            "host": "aG9zdA",
            **extra,
        },
        secret,
    )
    return client.get("/auth/callback", query_string=params)


def test_the_install_link_state_is_long_random_and_single_use(client, platform):
    states = {begin(client) for _ in range(20)}
    assert len(states) == 20
    assert all(len(s) >= 22 for s in states)  # ≥128 bits in URL-safe base64
    state = states.pop()
    first = callback(client, state)
    assert first.status_code == 302
    assert platform.exchanges == [SHOP]
    replay = callback(client, state)
    assert replay.status_code == 400
    assert platform.exchanges == [SHOP]


def test_a_forged_callback_is_rejected(client, platform):
    state = begin(client)
    assert callback(client, state, secret="not-the-secret").status_code == 400
    params = sign_query({"code": "c", "shop": SHOP, "state": state, "timestamp": "1"})
    params["code"] = "tampered"
    assert client.get("/auth/callback", query_string=params).status_code == 400
    assert platform.exchanges == []


def test_a_state_issued_for_another_shop_or_unknown_is_rejected(client, platform):
    state = begin(client)
    assert callback(client, state, shop="other-shop.myshopify.com").status_code == 400
    assert callback(client, "never-issued").status_code == 400
    assert platform.exchanges == []


def test_a_stale_state_is_rejected(client, c, platform):
    from datetime import timedelta

    from adapters.clock import FakeClock

    clock = FakeClock(c.clock.now())
    c.clock = clock
    state = begin(client)
    clock.advance(minutes=11)
    assert callback(client, state).status_code == 400
    assert platform.exchanges == []
    assert timedelta(minutes=10)  # OAUTH_STATE_TTL


def test_oauth_query_hmac_vectors(c):
    from adapters.shopify.verification import ShopifyVerifier

    for vector in fixture_json("oauth_query_hmac_vectors.json")["vectors"]:
        params = {**vector["params"], "hmac": vector["expected_hmac_hex"]}
        assert ShopifyVerifier("k", vector["secret"]).oauth_query(params), vector["name"]
        params["hmac"] = "0" * 64
        assert not ShopifyVerifier("k", vector["secret"]).oauth_query(params)
