"""Session-token authentication of /api/v1 and tenant isolation."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import jwt
import pytest

from connector.ports import PrivacyRequest
from tests.conftest import OLD_SECRET, SHOP, fixture_json, install_shop
from tests.tokens import session_token

OTHER = "other-shop.myshopify.com"


def install(container, domain):
    install_shop(container, domain)
    now = container.clock.now()
    with container.uow() as uow:
        uow.privacy_requests.add(
            PrivacyRequest(
                None, domain, "customers/data_request", now, now, 1, {"secret_of": domain}
            )
        )
        uow.commit()


def get(client, path, token):
    return client.get(f"/api/v1{path}", headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def two_shops(container):
    install(container, SHOP)
    install(container, OTHER)


def test_a_valid_token_sees_its_own_shop(client, two_shops):
    response = get(client, "/shop", session_token())
    assert response.status_code == 200
    assert response.get_json()["domain"] == SHOP


def test_a_token_signed_with_the_previous_secret_is_accepted_during_rotation(client, two_shops):
    assert get(client, "/shop", session_token(secret=OLD_SECRET)).status_code == 200


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda: session_token(now=time.time() - 120), id="expired"),
        pytest.param(lambda: session_token(now=time.time() + 120), id="not-yet-valid"),
        pytest.param(lambda: session_token(secret="forged-secret"), id="forged"),
        pytest.param(lambda: session_token(aud="someone-elses-app"), id="wrong-audience"),
        pytest.param(lambda: session_token(iss_shop=OTHER), id="iss-dest-mismatch"),
        pytest.param(lambda: session_token(shop="evil.example.com"), id="not-a-shop"),
        pytest.param(
            lambda: jwt.encode({"dest": f"https://{SHOP}"}, None, algorithm="none"), id="alg-none"
        ),
        pytest.param(lambda: "not-a-jwt", id="garbage"),
    ],
)
def test_bad_session_tokens_get_401_with_the_retry_header(client, two_shops, token):
    response = get(client, "/shop", token())
    assert response.status_code == 401
    assert response.headers["X-Shopify-Retry-Invalid-Session-Request"] == "1"
    assert response.get_json()["error"]["code"] == "invalid_session"


def test_a_missing_authorization_header_is_401(client, two_shops):
    response = client.get("/api/v1/shop")
    assert response.status_code == 401
    assert response.headers["X-Shopify-Retry-Invalid-Session-Request"] == "1"


def test_a_shop_that_never_installed_is_told_so(client, container):
    response = get(client, "/shop", session_token())
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "not_installed"


def test_a_token_for_shop_a_never_sees_shop_b(client, two_shops):
    mine = get(client, "/privacy/requests", session_token()).get_json()["items"]
    assert [r["summary"]["secret_of"] for r in mine] == [SHOP]
    theirs = get(client, "/privacy/requests", session_token(OTHER)).get_json()["items"]
    other_id = theirs[0]["id"]
    response = get(client, f"/privacy/requests/{other_id}", session_token())
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_unknown_api_routes_are_json_404(client, two_shops):
    response = get(client, "/nope", session_token())
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_openapi_documents_every_api_route_and_method(app, client):
    import re

    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    served = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1")), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1") and not rule.rule.endswith("openapi.json")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert served == documented


@pytest.mark.parametrize(
    "vector", fixture_json("session_token_jwt_vectors.json")["vectors"], ids=lambda v: v["name"]
)
def test_session_token_vectors_from_the_fixtures(container, vector, monkeypatch):
    """Known-answer vectors, checked at their frozen time."""
    import jwt.api_jwt

    from adapters.shopify.verification import ShopifyVerifier

    frozen = datetime.fromtimestamp(vector["verify_at_unix_time"], UTC)

    class FrozenDatetime(datetime):
        @classmethod
        def now(cls, tz=None):
            return frozen

    monkeypatch.setattr(jwt.api_jwt, "datetime", FrozenDatetime)
    verifier = ShopifyVerifier(vector["verify_with_api_key"], vector["verify_with_secret"])
    result = verifier.session_token(vector["token"])
    assert result.ok is (vector["expected"] == "valid"), (vector["name"], result.code)


def test_ambassador_pages_follow_their_cursor_and_refuse_foreign_ones(client, two_shops, container):
    from connector.domain.ambassadors import Ambassador, AmbassadorStatus

    with container.uow() as uow:
        shop = uow.shops.get(SHOP)
        for i in range(5):
            uow.ambassadors.add(Ambassador(None, shop.id, f"p{i}@example.com",
                                           AmbassadorStatus.APPLIED))
        uow.commit()
    token = session_token()
    first = get(client, "/ambassadors?limit=3", token).get_json()
    second = get(client, f"/ambassadors?limit=3&cursor={first['next_cursor']}", token).get_json()
    emails = [a["email"] for a in first["items"] + second["items"]]
    assert len(emails) == 5 == len(set(emails)) and second["next_cursor"] is None
    for bad in ("garbage!", "cDox", first["next_cursor"][:-2]):  # "p:1" is an applications one
        response = get(client, f"/ambassadors?cursor={bad}", token)
        assert response.status_code == 422
        assert response.get_json()["error"]["code"] == "invalid_cursor"
