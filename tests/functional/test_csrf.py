"""CSRF: every state-changing route outside the token-authenticated ``/api/v1`` is listed here
with what protects it, and a request forged without that protection changes nothing.

The admin itself posts nothing but ``fetch`` calls to ``/api/v1`` with a bearer session token
(no cookie authenticates anything, so a page elsewhere has nothing to ride on). The routes left
are Shopify's webhooks (HMAC of the raw body) and the storefront application form (Shopify's
app-proxy signature and a form token, see tests/functional/test_applications.py for its
tokens for other shops, customers and times).
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import count_rows
from tests.proxy import proxy_path

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
# route -> what a forged request lacks
PROTECTED = {
    "/webhooks/shopify": "X-Shopify-Hmac-Sha256 over the raw body",
    "/proxy/apply": "the app-proxy signature and an HMAC form token",
    # The ambassador portal: the app-proxy signature, and an HMAC form token bound to the shop
    # and the ambassador (login: to the shop), see tests/functional/test_portal.py.
    "/proxy/dashboard/login": "the app-proxy signature and an HMAC form token",
    "/proxy/dashboard/disclosure": "the app-proxy signature and the ambassador's form token",
    "/proxy/dashboard/submissions": "the app-proxy signature and the ambassador's form token",
    "/proxy/dashboard/challenges/<int:challenge_id>/join":
        "the app-proxy signature and the ambassador's form token",
}
TEMPLATES = Path(__file__).resolve().parents[2] / "admin_ui" / "templates"


def test_every_unsafe_route_outside_the_api_is_known_and_protected(app):
    unsafe = {
        rule.rule
        for rule in app.url_map.iter_rules()
        if (rule.methods or set()) & UNSAFE and not rule.rule.startswith("/api/v1/")
    }
    assert unsafe == set(PROTECTED), "a new form route needs CSRF protection and a line here"


def test_a_forged_webhook_is_refused_and_stores_nothing(client, container):
    response = client.post("/webhooks/shopify", data=b'{"id": 1}', headers={
        "Content-Type": "application/json", "X-Shopify-Topic": "orders/create",
        "X-Shopify-Shop-Domain": "test-shop.myshopify.com", "X-Shopify-Webhook-Id": "forged"})
    assert response.status_code == 401
    assert count_rows(container, "webhook_deliveries") == 0


def test_a_cross_site_application_post_is_refused_and_stores_nothing(client, container):
    from tests.conftest import install_shop

    install_shop(container)
    fields = {"email": "victim@example.com", "first_name": "V", "answers.why": "forged"}
    # Without Shopify's signature (a form on another site posting straight to the app).
    assert client.post("/proxy/apply", data=fields).status_code == 401
    # Through the proxy (signed, as Shopify signs a visitor's request) but without the token
    # only our own form carries.
    assert client.post(proxy_path(customer_id=5), data=fields).status_code == 400
    assert count_rows(container, "applications") == 0


def test_the_admin_templates_post_no_form_to_the_server():
    for template in (TEMPLATES / "admin").glob("*.html"):
        text = template.read_text()
        assert not re.search(r"<form[^>]*method=[\"']?post", text, re.I), template.name


def test_a_cross_site_portal_post_is_refused_and_stores_nothing(client, container):
    from connector.domain.ambassadors import Ambassador, AmbassadorStatus
    from tests.conftest import install_shop

    shop = install_shop(container)
    with container.uow() as uow:
        uow.ambassadors.add(Ambassador(None, shop.id, "amb@example.com", AmbassadorStatus.ACTIVE,
                                       customer_id=5, code="AMB10"))
        uow.commit()
    fields = {"kind": "post", "url": "https://example.com/forged", "text": "#ad forged"}
    path = "/proxy/dashboard/submissions"
    assert client.post(path, data=fields).status_code == 401  # not signed by Shopify
    # Signed (the ambassador's own browser, lured by another site) but without the form token.
    assert client.post(proxy_path(path, customer_id=5), data=fields).status_code == 400
    assert count_rows(container, "content_submissions") == 0
