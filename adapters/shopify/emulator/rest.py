"""REST-shaped JSON for webhook bodies (webhook payloads are still REST resources, unwrapped).

Shapes follow the 2026-07 REST examples in ``fixtures/shopify/shopify-app-js_rest_examples_2026-07``
(order, refund, customer, shop), reduced to what a plain online-store checkout produces: no tax,
no shipping charge, one ``bogus`` gateway payment. Money strings have two decimals; ``*_set``
fields carry shop and presentment money.
"""

from __future__ import annotations

from typing import Any

from .cost import plan_limits
from .state import Customer, LineItem, Order, Refund, Shop, Transaction
from .values import ZERO, gid, gql_decimal, rest_datetime, rest_money, rest_money_set


def customer_json(shop: Shop, customer: Customer) -> dict[str, Any]:
    tz = shop.tz
    return {
        "id": customer.id,
        "email": customer.email,
        "created_at": rest_datetime(customer.created_at, tz),
        "updated_at": rest_datetime(customer.updated_at, tz),
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "orders_count": customer.orders_count,
        "state": customer.state,
        "total_spent": rest_money(customer.amount_spent),
        "last_order_id": customer.last_order_id,
        "note": customer.note,
        "verified_email": customer.verified_email,
        "multipass_identifier": None,
        "tax_exempt": False,
        "tags": ", ".join(customer.tags),
        "last_order_name": customer.last_order_name,
        "currency": shop.currency,
        "phone": customer.phone,
        "addresses": [],
        "tax_exemptions": [],
        "email_marketing_consent": (
            {"state": "not_subscribed", "opt_in_level": "single_opt_in", "consent_updated_at": None}
            if customer.email
            else None
        ),
        "sms_marketing_consent": None,
        "admin_graphql_api_id": gid("Customer", customer.id),
        "default_address": None,
    }


def _customer_in_order(shop: Shop, customer: Customer) -> dict[str, Any]:
    tz = shop.tz
    return {
        "id": customer.id,
        "email": customer.email,
        "created_at": rest_datetime(customer.created_at, tz),
        "updated_at": rest_datetime(customer.updated_at, tz),
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "state": customer.state,
        "note": customer.note,
        "verified_email": customer.verified_email,
        "multipass_identifier": None,
        "tax_exempt": False,
        "phone": customer.phone,
        "tags": ", ".join(customer.tags),
        "currency": shop.currency,
        "tax_exemptions": [],
        "admin_graphql_api_id": gid("Customer", customer.id),
        "default_address": None,
    }


def _money(order: Order, presentment_amount: Any) -> dict[str, dict[str, str]]:
    return rest_money_set(
        order.shop_amount(presentment_amount),
        order.shop_currency,
        presentment_amount,
        order.presentment_currency,
    )


def line_item_json(order: Order, line: LineItem) -> dict[str, Any]:
    return {
        "id": line.id,
        "admin_graphql_api_id": gid("LineItem", line.id),
        "attributed_staffs": [],
        "current_quantity": line.current_quantity,
        "fulfillable_quantity": line.current_quantity,
        "fulfillment_service": "manual",
        "fulfillment_status": None,
        "gift_card": False,
        "grams": 0,
        "name": f"{line.title} - {line.variant_title}" if line.variant_title else line.title,
        "price": rest_money(order.shop_amount(line.price)),
        "price_set": _money(order, line.price),
        "product_exists": line.product_id is not None,
        "product_id": line.product_id,
        "properties": [],
        "quantity": line.quantity,
        "requires_shipping": True,
        "sku": line.sku,
        "taxable": True,
        "title": line.title,
        "total_discount": rest_money(ZERO),
        "total_discount_set": _money(order, ZERO),
        "variant_id": line.variant_id,
        "variant_inventory_management": "shopify" if line.variant_id else None,
        "variant_title": line.variant_title,
        "vendor": None,
        "tax_lines": [],
        "duties": [],
        "discount_allocations": [
            {
                "amount": rest_money(order.shop_amount(amount)),
                "amount_set": _money(order, amount),
                "discount_application_index": index,
            }
            for index, amount in line.allocations
        ],
    }


def _transaction_json(shop: Shop, order: Order, txn: Transaction) -> dict[str, Any]:
    return {
        "id": txn.id,
        "admin_graphql_api_id": gid("OrderTransaction", txn.id),
        "amount": rest_money(txn.amount),
        "authorization": None,
        "created_at": rest_datetime(txn.created_at, shop.tz),
        "currency": order.presentment_currency,
        "device_id": None,
        "error_code": None,
        "gateway": "bogus",
        "kind": txn.kind,
        "location_id": None,
        "message": None,
        "order_id": order.id,
        "parent_id": txn.parent_id,
        "payment_id": f"{order.name}.{txn.id % 1000}",
        "processed_at": rest_datetime(txn.created_at, shop.tz),
        "receipt": {},
        "source_name": "web",
        "status": "success",
        "test": order.test,
        "user_id": None,
    }


def refund_json(shop: Shop, order: Order, refund: Refund) -> dict[str, Any]:
    lines_by_id = {line.id: line for line in order.line_items}
    tz = shop.tz
    return {
        "id": refund.id,
        "admin_graphql_api_id": gid("Refund", refund.id),
        "created_at": rest_datetime(refund.created_at, tz),
        "note": refund.note,
        "order_id": order.id,
        "processed_at": rest_datetime(refund.created_at, tz),
        "restock": False,
        "total_duties_set": _money(order, ZERO),
        "total_additional_fees_set": _money(order, ZERO),
        "user_id": None,
        "order_adjustments": [],
        "transactions": [_transaction_json(shop, order, txn) for txn in refund.transactions],
        "refund_line_items": [
            {
                "id": line.id,
                "line_item_id": line.line_item_id,
                "location_id": None,
                "quantity": line.quantity,
                "restock_type": "no_restock",
                "subtotal": float(order.shop_amount(line.subtotal)),
                "subtotal_set": _money(order, line.subtotal),
                "total_tax": 0.0,
                "total_tax_set": _money(order, ZERO),
                "line_item": line_item_json(order, lines_by_id[line.line_item_id]),
            }
            for line in refund.lines
        ],
        "refund_shipping_lines": [],
        "duties": [],
        "additional_fees": [],
        "return": None,
    }


def order_json(shop: Shop, order: Order) -> dict[str, Any]:
    tz = shop.tz
    customer = shop.customers.get(order.customer_id) if order.customer_id else None
    amounts = {
        "current_subtotal_price": order.current_subtotal_price,
        "current_total_discounts": order.current_total_discounts,
        "current_total_price": order.current_total_price,
        "current_total_tax": ZERO,
        "subtotal_price": order.subtotal_price,
        "total_discounts": order.total_discounts,
        "total_line_items_price": order.total_line_items_price,
        "total_price": order.total_price,
        "total_tax": order.total_tax,
    }
    body: dict[str, Any] = {
        "id": order.id,
        "admin_graphql_api_id": gid("Order", order.id),
        "app_id": None,
        "browser_ip": None,
        "buyer_accepts_marketing": False,
        "cancel_reason": order.cancel_reason,
        "cancelled_at": rest_datetime(order.cancelled_at, tz),
        "cart_token": None,
        "checkout_id": None,
        "checkout_token": order.token,
        "client_details": None,
        "closed_at": None,
        "confirmation_number": order.token[:9].upper(),
        "confirmed": True,
        "contact_email": order.email,
        "created_at": rest_datetime(order.created_at, tz),
        "currency": order.shop_currency,
        "customer_locale": "en",
        "device_id": None,
        "discount_codes": [
            {
                "code": application.code,
                "amount": rest_money(order.shop_amount(application.amount)),
                "type": application.value_type,
            }
            for application in order.applications
        ],
        "duties_included": False,
        "email": order.email,
        "estimated_taxes": False,
        "financial_status": order.financial_status,
        "fulfillment_status": None,
        "landing_site": None,
        "landing_site_ref": None,
        "location_id": None,
        "name": order.name,
        "note": order.note,
        "note_attributes": [],
        "number": order.number,
        "order_number": order.order_number,
        "order_status_url": f"https://{shop.domain}/{shop.id}/orders/{order.token}/authenticate",
        "payment_gateway_names": ["bogus"],
        "phone": None,
        "presentment_currency": order.presentment_currency,
        "processed_at": rest_datetime(order.created_at, tz),
        "reference": None,
        "referring_site": None,
        "source_identifier": None,
        "source_name": "web",
        "source_url": None,
        "tags": ", ".join(order.tags),
        "tax_exempt": False,
        "tax_lines": [],
        "taxes_included": False,
        "test": order.test,
        "token": order.token,
        "total_outstanding": rest_money(ZERO),
        "total_shipping_price_set": _money(order, ZERO),
        "total_tip_received": rest_money(ZERO),
        "total_weight": 0,
        "updated_at": rest_datetime(order.updated_at, tz),
        "user_id": None,
        "billing_address": order.shipping_address,
        "customer": _customer_in_order(shop, customer) if customer else None,
        "discount_applications": [
            {
                "target_type": "line_item",
                "type": "discount_code",
                "value": gql_decimal(application.value),
                "value_type": application.value_type,
                "allocation_method": application.allocation_method,
                "target_selection": "all",
                "code": application.code,
            }
            for application in order.applications
        ],
        "fulfillments": [],
        "line_items": [line_item_json(order, line) for line in order.line_items],
        "payment_terms": None,
        "refunds": [refund_json(shop, order, refund) for refund in order.refunds],
        "shipping_address": order.shipping_address,
        "shipping_lines": [],
    }
    for key, amount in amounts.items():
        body[key] = rest_money(order.shop_amount(amount))
        body[f"{key}_set"] = _money(order, amount)
    return body


def shop_json(shop: Shop) -> dict[str, Any]:
    """The Shop resource (the ``app/uninstalled`` body)."""
    return {
        "id": shop.id,
        "name": shop.name,
        "email": shop.email,
        "domain": shop.domain,
        "province": None,
        "country": "US",
        "address1": None,
        "zip": None,
        "city": None,
        "source": None,
        "phone": None,
        "latitude": None,
        "longitude": None,
        "primary_locale": "en",
        "address2": None,
        "created_at": rest_datetime(shop.created_at, shop.tz),
        "updated_at": rest_datetime(shop.created_at, shop.tz),
        "country_code": "US",
        "country_name": "United States",
        "currency": shop.currency,
        "customer_email": shop.email,
        "timezone": shop.iana_timezone,
        "iana_timezone": shop.iana_timezone,
        "shop_owner": shop.name,
        "money_format": "{{amount}}",
        "money_with_currency_format": "{{amount}} " + shop.currency,
        "weight_unit": "kg",
        "province_code": None,
        "taxes_included": False,
        "auto_configure_tax_inclusivity": None,
        "tax_shipping": None,
        "county_taxes": True,
        "plan_display_name": plan_limits(shop.plan).display_name,
        "plan_name": shop.plan,
        "has_discounts": bool(shop.discounts),
        "has_gift_cards": bool(shop.gift_cards),
        "myshopify_domain": shop.domain,
        "google_apps_domain": None,
        "google_apps_login_enabled": None,
        "money_in_emails_format": "{{amount}}",
        "money_with_currency_in_emails_format": "{{amount}} " + shop.currency,
        "eligible_for_payments": True,
        "requires_extra_payments_agreement": False,
        "password_enabled": False,
        "has_storefront": True,
        "finances": True,
        "primary_location_id": None,
        "checkout_api_supported": True,
        "multi_location_enabled": True,
        "setup_required": False,
        "pre_launch_enabled": False,
        "enabled_presentment_currencies": [shop.currency],
        "marketing_sms_consent_enabled_at_checkout": False,
        "transactional_sms_disabled": False,
    }
