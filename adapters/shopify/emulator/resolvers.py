"""Root fields of the emulated Admin API, registered by name.

Supported queries: ``shop``, ``currentAppInstallation``, ``customers``, ``customersCount``,
``customer``, ``orders``,
``order``, ``webhookSubscriptions``, ``webhookSubscription``, ``codeDiscountNodeByCode``,
``codeDiscountNode``, ``codeDiscountNodes``, ``discountNode``, ``discountNodes``,
``discountRedeemCodeBulkCreation``, ``job``,
``giftCards``, ``giftCard``, ``storeCreditAccount``, ``node``, ``nodes``.

Supported mutations: ``webhookSubscriptionCreate``, ``webhookSubscriptionDelete``,
``customerCreate``, ``customerUpdate``, ``tagsAdd``, ``tagsRemove``, ``discountCodeBasicCreate``,
``discountCodeBasicUpdate``,
``discountRedeemCodeBulkAdd``, ``discountCodeActivate``, ``discountCodeDeactivate``,
``discountCodeDelete``, ``discountCodeRedeemCodeBulkDelete``, ``giftCardCreate``,
``storeCreditAccountCredit``.

Bulk operations (``bulkOperationRunQuery``, ``bulkOperationCancel``, ``currentBulkOperation``,
``bulkOperation``, ``bulkOperations``) are registered by :mod:`.bulk`.

To add one: write ``def resolver(ctx, info, args)`` returning a view (see :mod:`.views`) and
decorate it with ``@registry.query("name")`` or ``@registry.mutation("name")``.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError, GraphQLResolveInfo

from . import commerce, rest
from .commerce import CommerceError, user_error
from .graphql_api import ResolverRegistry
from .search import matches, paginate
from .state import Discount, WebhookSubscription
from .values import gid, gid_type, parse_gid
from .views import (
    GIFT_CARD_FIELDS,
    GqlContext,
    View,
    app_installation_view,
    bulk_creation_view,
    customer_view,
    customers_connection,
    discount_node_view,
    filter_customers,
    gift_card_view,
    job_view,
    node_view,
    order_view,
    orders_connection,
    shop_view,
    store_credit_account_view,
    store_credit_txn_view,
    webhook_subscription_view,
)
from .webhooks import topic_from_enum

registry = ResolverRegistry()

Args = dict[str, Any]
Info = GraphQLResolveInfo


# --- queries ---------------------------------------------------------------------------------


@registry.query("shop")
def _shop(ctx: GqlContext, info: Info, args: Args) -> View:
    return shop_view(ctx)


@registry.query("currentAppInstallation")
def _current_app_installation(ctx: GqlContext, info: Info, args: Args) -> View:
    return app_installation_view(ctx)


@registry.query("customers")
def _customers(ctx: GqlContext, info: Info, args: Args) -> View:
    return customers_connection(ctx, list(ctx.shop.customers.values()), args)


@registry.query("customersCount")
def _customers_count(ctx: GqlContext, info: Info, args: Args) -> View:
    """``Count``: exact up to ``limit`` (default 10,000; null for none), else ``AT_LEAST``."""
    found = len(filter_customers(list(ctx.shop.customers.values()), args.get("query")))
    limit = args.get("limit", 10_000)
    if limit is not None and found > limit:
        return {"__typename": "Count", "count": limit, "precision": "AT_LEAST"}
    return {"__typename": "Count", "count": found, "precision": "EXACT"}


@registry.query("customer")
def _customer(ctx: GqlContext, info: Info, args: Args) -> View | None:
    number = parse_gid(args["id"], "Customer")
    found = ctx.shop.customers.get(number) if number is not None else None
    return customer_view(ctx, found) if found else None


@registry.query("orders")
def _orders(ctx: GqlContext, info: Info, args: Args) -> View:
    return orders_connection(ctx, list(ctx.shop.orders.values()), args)


@registry.query("order")
def _order(ctx: GqlContext, info: Info, args: Args) -> View | None:
    number = parse_gid(args["id"], "Order")
    found = ctx.shop.orders.get(number) if number is not None else None
    return order_view(ctx, found) if found else None


@registry.query("webhookSubscriptions")
def _webhook_subscriptions(ctx: GqlContext, info: Info, args: Args) -> View:
    topics = {topic_from_enum(t) for t in args.get("topics") or []}
    uri = args.get("uri") or args.get("callbackUrl")
    selected = [
        s
        for s in ctx.shop.webhook_subscriptions.values()
        if (not topics or s.topic in topics)
        and (not uri or s.uri == uri)
        and (not args.get("format") or s.format == args["format"])
    ]
    return paginate(
        selected,
        args,
        item_id=lambda s: s.id,
        sort_keys={"ID": lambda s: s.id, "CREATED_AT": lambda s: s.created_at},
        view=webhook_subscription_view,
    )


@registry.query("webhookSubscription")
def _webhook_subscription(ctx: GqlContext, info: Info, args: Args) -> View | None:
    number = parse_gid(args["id"], "WebhookSubscription")
    found = ctx.shop.webhook_subscriptions.get(number) if number is not None else None
    return webhook_subscription_view(found) if found else None


@registry.query("codeDiscountNodeByCode")
def _code_discount_node_by_code(ctx: GqlContext, info: Info, args: Args) -> View | None:
    redeem = ctx.shop.redeem_code(args["code"])
    discount = ctx.shop.discounts.get(redeem.discount_id) if redeem else None
    return discount_node_view(ctx, discount) if discount else None


@registry.query("codeDiscountNode")
def _code_discount_node(ctx: GqlContext, info: Info, args: Args) -> View | None:
    discount = _discount(ctx, args["id"])
    return discount_node_view(ctx, discount) if discount else None


@registry.query("discountNode")
def _discount_node(ctx: GqlContext, info: Info, args: Args) -> View | None:
    discount = _discount(ctx, args["id"])
    return discount_node_view(ctx, discount, typename="DiscountNode") if discount else None


@registry.query("discountNodes")
def _discount_nodes(ctx: GqlContext, info: Info, args: Args) -> View:
    return _discount_connection(ctx, args, "DiscountNode")


@registry.query("codeDiscountNodes")
def _code_discount_nodes(ctx: GqlContext, info: Info, args: Args) -> View:
    return _discount_connection(ctx, args, "DiscountCodeNode")


def _discount_connection(ctx: GqlContext, args: Args, typename: str) -> View:
    shop, now = ctx.shop, ctx.now
    fields: dict[str, Any] = {
        "id": lambda d: d.id,
        "title": lambda d: d.title,
        "code": lambda d: [shop.redeem_codes[i].code for i in d.code_ids if i in shop.redeem_codes],
        "status": lambda d: d.status(now).lower(),
        "starts_at": lambda d: d.starts_at,
        "ends_at": lambda d: d.ends_at,
        "created_at": lambda d: d.created_at,
        "updated_at": lambda d: d.updated_at,
        "times_used": lambda d: d.usage_count,
        "discount_type": lambda d: d.value_type,
    }
    selected = [
        d
        for d in shop.discounts.values()
        if matches(d, args.get("query"), fields, lambda d: [d.title])
    ]
    return paginate(
        selected,
        args,
        item_id=lambda d: d.id,
        sort_keys={
            "ID": lambda d: d.id,
            "RELEVANCE": lambda d: d.id,
            "CREATED_AT": lambda d: d.created_at,
            "UPDATED_AT": lambda d: d.updated_at,
            "STARTS_AT": lambda d: d.starts_at,
            "ENDS_AT": lambda d: d.ends_at,
            "TITLE": lambda d: d.title,
        },
        view=lambda d: discount_node_view(ctx, d, typename=typename),
    )


@registry.query("discountRedeemCodeBulkCreation")
def _bulk_creation(ctx: GqlContext, info: Info, args: Args) -> View | None:
    number = parse_gid(args["id"], "DiscountRedeemCodeBulkCreation")
    found = ctx.shop.bulk_creations.get(number) if number is not None else None
    return bulk_creation_view(ctx, found) if found else None


@registry.query("job")
def _job(ctx: GqlContext, info: Info, args: Args) -> View | None:
    number = parse_gid(args["id"], "Job")
    found = ctx.shop.jobs.get(number) if number is not None else None
    return job_view(found) if found else None


def _require_scope(ctx: GqlContext, info: Info, scope: str) -> None:
    """Shopify's answer to a field the token's scopes do not cover (a ``write_`` scope grants
    its ``read_``): the field is null and an ``ACCESS_DENIED`` error names the scope."""
    granted = {s.strip() for s in ctx.token.scope.split(",") if s.strip()}
    if scope in granted or scope.replace("read_", "write_", 1) in granted:
        return
    required = f"`{scope}` access scope."
    raise GraphQLError(
        f"Access denied for {info.field_name} field. Required access: {required}",
        extensions={
            "code": "ACCESS_DENIED",
            "documentation": "https://shopify.dev/api/usage/access-scopes",
            "requiredAccess": required,
        },
    )


@registry.query("giftCards")
def _gift_cards(ctx: GqlContext, info: Info, args: Args) -> View:
    _require_scope(ctx, info, "read_gift_cards")
    selected = [
        g
        for g in ctx.shop.gift_cards.values()
        if matches(g, args.get("query"), GIFT_CARD_FIELDS, lambda g: [g.code[-4:], g.note or ""])
    ]
    return paginate(
        selected,
        args,
        item_id=lambda g: g.id,
        sort_keys={
            "ID": lambda g: g.id,
            "CREATED_AT": lambda g: g.created_at,
            "UPDATED_AT": lambda g: g.updated_at,
            "BALANCE": lambda g: g.balance,
            "INITIAL_VALUE": lambda g: g.initial_value,
            "CODE": lambda g: g.code,
        },
        view=lambda g: gift_card_view(ctx, g),
    )


@registry.query("giftCard")
def _gift_card(ctx: GqlContext, info: Info, args: Args) -> View | None:
    number = parse_gid(args["id"], "GiftCard")
    found = ctx.shop.gift_cards.get(number) if number is not None else None
    return gift_card_view(ctx, found) if found else None


@registry.query("storeCreditAccount")
def _store_credit_account(ctx: GqlContext, info: Info, args: Args) -> View | None:
    number = parse_gid(args["id"], "StoreCreditAccount")
    found = ctx.shop.store_credit_accounts.get(number) if number is not None else None
    return store_credit_account_view(ctx, found) if found else None


@registry.query("node")
def _node(ctx: GqlContext, info: Info, args: Args) -> View | None:
    return node_view(ctx, args["id"])


@registry.query("nodes")
def _nodes(ctx: GqlContext, info: Info, args: Args) -> list[View | None]:
    return [node_view(ctx, i) for i in args["ids"]]


# --- mutations -------------------------------------------------------------------------------


def _errors(exc: CommerceError) -> list[dict[str, Any]]:
    return [user_error([exc.field] if exc.field else None, exc.message)]


def _discount(ctx: GqlContext, raw_id: Any) -> Discount | None:
    kind = gid_type(raw_id) if isinstance(raw_id, str) else None
    number = parse_gid(
        raw_id, kind if kind in ("DiscountCodeNode", "DiscountNode") else "DiscountCodeNode"
    )
    return ctx.shop.discounts.get(number) if number is not None else None


def _discount_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"code": None, "extraInfo": None, **e} for e in errors]


@registry.mutation("webhookSubscriptionCreate")
def _webhook_subscription_create(ctx: GqlContext, info: Info, args: Args) -> View:
    shop = ctx.shop
    data = args["webhookSubscription"]
    uri = data.get("uri") or data.get("callbackUrl")
    topic = topic_from_enum(args["topic"])
    field = ["webhookSubscription", "uri" if data.get("uri") else "callbackUrl"]
    error = None
    if not uri:
        error = user_error(field, "Address can't be blank")
    elif not uri.startswith(("https://", "http://", "pubsub://", "arn:aws:events:")):
        # Shopify wants https:// for HTTP endpoints; the emulator also takes http:// (local apps).
        error = user_error(field, "Address is invalid")
    elif any(s.topic == topic and s.uri == uri for s in shop.webhook_subscriptions.values()):
        error = user_error(field, "Address for this topic has already been taken")
    if error:
        return {"webhookSubscription": None, "userErrors": [error]}
    subscription = WebhookSubscription(
        id=ctx.env.ids.next(),
        topic=topic,
        uri=uri,
        format=data.get("format") or "JSON",
        api_version=ctx.api_version,
        created_at=ctx.now,
        updated_at=ctx.now,
        include_fields=list(data.get("includeFields") or []),
        filter=data.get("filter"),
        name=data.get("name"),
    )
    shop.webhook_subscriptions[subscription.id] = subscription
    return {"webhookSubscription": webhook_subscription_view(subscription), "userErrors": []}


@registry.mutation("webhookSubscriptionDelete")
def _webhook_subscription_delete(ctx: GqlContext, info: Info, args: Args) -> View:
    number = parse_gid(args["id"], "WebhookSubscription")
    if number is None or ctx.shop.webhook_subscriptions.pop(number, None) is None:
        return {
            "deletedWebhookSubscriptionId": None,
            "userErrors": [user_error(["id"], "Webhook subscription does not exist")],
        }
    return {"deletedWebhookSubscriptionId": gid("WebhookSubscription", number), "userErrors": []}


@registry.mutation("customerCreate")
def _customer_create(ctx: GqlContext, info: Info, args: Args) -> View:
    data = args["input"]
    try:
        customer = commerce.create_customer(
            ctx.env,
            email=data.get("email"),
            first_name=data.get("firstName"),
            last_name=data.get("lastName"),
            phone=data.get("phone"),
            tags=data.get("tags"),
            note=data.get("note"),
        )
    except CommerceError as exc:
        return {"customer": None, "userErrors": _errors(exc)}
    ctx.env.emit("customers/create", rest.customer_json(ctx.shop, customer))
    return {"customer": customer_view(ctx, customer), "userErrors": []}


@registry.mutation("customerUpdate")
def _customer_update(ctx: GqlContext, info: Info, args: Args) -> View:
    data = args["input"]
    number = parse_gid(data.get("id"), "Customer")
    customer = ctx.shop.customers.get(number) if number is not None else None
    if customer is None:
        return {"customer": None, "userErrors": [user_error(["id"], "Customer does not exist")]}
    email = data.get("email")
    if (
        email
        and email.lower() != (customer.email or "").lower()
        and ctx.shop.customer_by_email(email)
    ):
        return {
            "customer": None,
            "userErrors": [user_error(["email"], "Email has already been taken")],
        }
    for key, attribute in (
        ("email", "email"),
        ("firstName", "first_name"),
        ("lastName", "last_name"),
        ("phone", "phone"),
        ("note", "note"),
    ):
        if key in data:
            setattr(customer, attribute, data[key])
    if "tags" in data:
        customer.tags = commerce.normalize_tags(data["tags"])
    customer.updated_at = ctx.now
    ctx.env.emit("customers/update", rest.customer_json(ctx.shop, customer))
    return {"customer": customer_view(ctx, customer), "userErrors": []}


def _change_tags(ctx: GqlContext, args: Args, *, add: bool) -> View:
    raw_id = args["id"]
    kind = gid_type(raw_id)
    number = parse_gid(raw_id, kind) if kind else None
    shop = ctx.shop
    if kind == "Customer" and number in shop.customers:
        customer = shop.customers[number]
        tags = commerce.change_tags(customer.tags, args["tags"], add=add)
        if tags != customer.tags:
            customer.tags, customer.updated_at = tags, ctx.now
            ctx.env.emit("customers/update", rest.customer_json(shop, customer))
        return {"node": customer_view(ctx, customer), "userErrors": []}
    if kind == "Order" and number in shop.orders:
        order = shop.orders[number]
        tags = commerce.change_tags(order.tags, args["tags"], add=add)
        if tags != order.tags:
            order.tags, order.updated_at = tags, ctx.now
            ctx.env.emit("orders/updated", rest.order_json(shop, order))
        return {"node": order_view(ctx, order), "userErrors": []}
    if kind not in (None, "Customer", "Order"):
        message = f"The emulator supports tags on Customer and Order, not {kind}"
    else:
        message = "Resource does not exist"
    return {"node": None, "userErrors": [user_error(["id"], message)]}


@registry.mutation("tagsAdd")
def _tags_add(ctx: GqlContext, info: Info, args: Args) -> View:
    return _change_tags(ctx, args, add=True)


@registry.mutation("tagsRemove")
def _tags_remove(ctx: GqlContext, info: Info, args: Args) -> View:
    return _change_tags(ctx, args, add=False)


@registry.mutation("discountCodeBasicCreate")
def _discount_code_basic_create(ctx: GqlContext, info: Info, args: Args) -> View:
    discount, errors = commerce.create_basic_discount(ctx.env, args["basicCodeDiscount"])
    return {
        "codeDiscountNode": discount_node_view(ctx, discount) if discount else None,
        "userErrors": _discount_errors(errors),
    }


@registry.mutation("discountCodeBasicUpdate")
def _discount_code_basic_update(ctx: GqlContext, info: Info, args: Args) -> View:
    discount = _discount(ctx, args["id"])
    errors = commerce.update_basic_discount(ctx.env, discount, args["basicCodeDiscount"])
    return {
        "codeDiscountNode": discount_node_view(ctx, discount) if discount and not errors else None,
        "userErrors": _discount_errors(errors),
    }


@registry.mutation("discountRedeemCodeBulkAdd")
def _discount_redeem_code_bulk_add(ctx: GqlContext, info: Info, args: Args) -> View:
    creation, errors = commerce.start_bulk_add(
        ctx.env, parse_gid(args["discountId"], "DiscountCodeNode"), args["codes"], ctx.bulk_delay
    )
    return {
        "bulkCreation": bulk_creation_view(ctx, creation) if creation else None,
        "userErrors": _discount_errors(errors),
    }


def _set_active(ctx: GqlContext, args: Args, active: bool) -> View:
    discount = _discount(ctx, args["id"])
    if discount is None:
        return {
            "codeDiscountNode": None,
            "userErrors": _discount_errors(
                [user_error(["id"], "Discount does not exist", "INVALID")]
            ),
        }
    commerce.set_discount_active(ctx.env, discount, active)
    return {"codeDiscountNode": discount_node_view(ctx, discount), "userErrors": []}


@registry.mutation("discountCodeActivate")
def _discount_code_activate(ctx: GqlContext, info: Info, args: Args) -> View:
    return _set_active(ctx, args, True)


@registry.mutation("discountCodeDeactivate")
def _discount_code_deactivate(ctx: GqlContext, info: Info, args: Args) -> View:
    return _set_active(ctx, args, False)


@registry.mutation("discountCodeDelete")
def _discount_code_delete(ctx: GqlContext, info: Info, args: Args) -> View:
    discount = _discount(ctx, args["id"])
    if discount is None:
        return {
            "deletedCodeDiscountId": None,
            "userErrors": _discount_errors(
                [user_error(["id"], "Discount does not exist", "INVALID")]
            ),
        }
    shop = ctx.shop
    for code_id in discount.code_ids:
        redeem = shop.redeem_codes.pop(code_id, None)
        if redeem is not None:
            shop.code_index.pop(redeem.code.upper(), None)
    del shop.discounts[discount.id]
    return {"deletedCodeDiscountId": gid("DiscountCodeNode", discount.id), "userErrors": []}


@registry.mutation("discountCodeRedeemCodeBulkDelete")
def _discount_code_redeem_code_bulk_delete(ctx: GqlContext, info: Info, args: Args) -> View:
    job, errors = commerce.start_bulk_delete(
        ctx.env,
        parse_gid(args["discountId"], "DiscountCodeNode"),
        args.get("ids"),
        args.get("search"),
        ctx.bulk_delay,
    )
    return {"job": job_view(job) if job else None, "userErrors": _discount_errors(errors)}


@registry.mutation("giftCardCreate")
def _gift_card_create(ctx: GqlContext, info: Info, args: Args) -> View:
    _require_scope(ctx, info, "write_gift_cards")
    card, code, errors = commerce.create_gift_card(ctx.env, args["input"])
    return {
        "giftCard": gift_card_view(ctx, card) if card else None,
        "giftCardCode": code,
        "userErrors": [{"code": None, **e} for e in errors],
    }


@registry.mutation("storeCreditAccountCredit")
def _store_credit_account_credit(ctx: GqlContext, info: Info, args: Args) -> View:
    _require_scope(ctx, info, "write_store_credit_account_transactions")
    txn, account, errors = commerce.credit_store_credit(ctx.env, args["id"], args["creditInput"])
    return {
        "storeCreditAccountTransaction": store_credit_txn_view(ctx, account, txn)
        if txn and account
        else None,
        "userErrors": [{"code": None, **e} for e in errors],
    }
