"""``RewardPlatform`` for Shopify: gift cards, store credit and single-use reward codes.

Exactly once: a payout's fulfilment carries a deterministic key. On a retry (``since`` given:
an earlier attempt may have reached Shopify before its worker died) we first look for what
that attempt created and create only when nothing is found:

* gift cards carry the key in their ``note``; found with ``giftCards`` filtered by customer and
  creation time (documented search fields), then matched on the note;
* reward codes are derived from the key (see :func:`connector.domain.payouts.reward_code`); found
  with ``codeDiscountNodeByCode``;
* store credit transactions have no note and ``storeCreditAccountCredit`` does not document the
  ``@idempotent`` directive (2026-07), so a retry looks for a credit transaction of exactly the
  payout's value on the customer's account created since the first attempt that no other
  payout has recorded. Two payouts of the same value to the same customer in flight at once
  would make that ambiguous; the service never has two Shopify payouts of one ambassador in
  flight (it fulfils them one after another).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from adapters.shopify.discounts import customer_gid
from adapters.shopify.graphql import GraphQLError, ShopifyGraphQLClient
from connector.domain.money import Money
from connector.ports import IssuedReward, PlatformError, RewardRefused

GIFT_CARD_CREATE = """
mutation AmbassadorRewardGiftCard($input: GiftCardCreateInput!) {
  giftCardCreate(input: $input) {
    giftCard { id lastCharacters note }
    userErrors { code field message }
  }
}
"""

GIFT_CARDS = """
query AmbassadorRewardGiftCards($query: String!) {
  giftCards(first: 50, query: $query, sortKey: CREATED_AT) {
    nodes { id lastCharacters note }
  }
}
"""

STORE_CREDIT = """
mutation AmbassadorRewardStoreCredit($id: ID!, $credit: StoreCreditAccountCreditInput!) {
  storeCreditAccountCredit(id: $id, creditInput: $credit) {
    storeCreditAccountTransaction { id amount { amount currencyCode } }
    userErrors { code field message }
  }
}
"""

STORE_CREDIT_TRANSACTIONS = """
query AmbassadorRewardStoreCreditTransactions($id: ID!) {
  customer(id: $id) {
    storeCreditAccounts(first: 5) {
      nodes {
        id
        balance { currencyCode }
        transactions(first: 25, reverse: true, sortKey: CREATED_AT) {
          nodes {
            ... on StoreCreditAccountCreditTransaction {
              id
              amount { amount currencyCode }
              createdAt
            }
          }
        }
      }
    }
  }
}
"""

CODE_CREATE = """
mutation AmbassadorRewardCode($input: DiscountCodeBasicInput!) {
  discountCodeBasicCreate(basicCodeDiscount: $input) {
    codeDiscountNode { id }
    userErrors { code field message }
  }
}
"""

CODE_LOOKUP = """
query AmbassadorRewardCodeLookup($code: String!) {
  codeDiscountNodeByCode(code: $code) { id }
}
"""

#: A retry's lookup window starts a little before the first attempt (clock skew with Shopify).
SKEW = timedelta(minutes=5)


def _refusal(errors: list[dict[str, Any]]) -> RewardRefused:
    first = errors[0]
    code = str(first.get("code") or "invalid").lower()
    return RewardRefused(code, str(first.get("message") or code))


def _access_denied(exc: GraphQLError) -> RewardRefused | None:
    for error in exc.errors:
        extensions = error.get("extensions") if isinstance(error, dict) else None
        if isinstance(extensions, dict) and extensions.get("code") == "ACCESS_DENIED":
            return RewardRefused("missing_scope", str(error.get("message") or exc))
    return None


class ShopifyRewards:
    def __init__(self, graphql: ShopifyGraphQLClient) -> None:
        self._gql = graphql

    def _run(
        self, shop: str, token: str, document: str, variables: dict[str, Any], field: str
    ) -> Any:
        try:
            data = self._gql.execute(shop, token, document, variables).data
        except GraphQLError as exc:
            raise _access_denied(exc) or exc from exc
        result = data.get(field)
        if result is None:
            raise PlatformError(f"{shop}: {field} returned nothing")
        return result

    # --- gift cards ----------------------------------------------------------------------------

    def issue_gift_card(
        self,
        shop_domain: str,
        access_token: str,
        *,
        key: str,
        customer_id: int,
        value: Money,
        message: str,
        since: datetime | None,
    ) -> IssuedReward:
        if since is not None:
            found = self._find_gift_card(shop_domain, access_token, key, customer_id, since)
            if found is not None:
                return found
        payload = {
            "initialAmount": {"amount": str(value.amount), "currencyCode": value.currency},
            "customerId": customer_gid(customer_id),
            "note": key,
            "recipientAttributes": {"id": customer_gid(customer_id), "message": message[:200]},
        }
        result = self._run(
            shop_domain, access_token, GIFT_CARD_CREATE, {"input": payload}, "giftCardCreate"
        )
        if result.get("userErrors"):
            raise _refusal(result["userErrors"])
        card = result["giftCard"]
        return IssuedReward(card["id"], card.get("lastCharacters"))

    def _find_gift_card(
        self, shop: str, token: str, key: str, customer_id: int, since: datetime
    ) -> IssuedReward | None:
        after = (since - SKEW).strftime("%Y-%m-%dT%H:%M:%SZ")
        query = f"customer_id:{customer_id} created_at:>='{after}'"
        data = self._run(shop, token, GIFT_CARDS, {"query": query}, "giftCards")
        for node in data["nodes"]:
            if node.get("note") == key:
                return IssuedReward(node["id"], node.get("lastCharacters"), found_existing=True)
        return None

    # --- store credit --------------------------------------------------------------------------

    def issue_store_credit(
        self,
        shop_domain: str,
        access_token: str,
        *,
        key: str,
        customer_id: int,
        value: Money,
        since: datetime | None,
        taken: set[str],
    ) -> IssuedReward:
        if since is not None:
            found = self._find_credit(shop_domain, access_token, customer_id, value, since, taken)
            if found is not None:
                return found
        credit = {
            "creditAmount": {"amount": str(value.amount), "currencyCode": value.currency},
            "notify": True,
        }
        result = self._run(
            shop_domain,
            access_token,
            STORE_CREDIT,
            {"id": customer_gid(customer_id), "credit": credit},
            "storeCreditAccountCredit",
        )
        if result.get("userErrors"):
            raise _refusal(result["userErrors"])
        txn = result["storeCreditAccountTransaction"]
        return IssuedReward(txn["id"], None)

    def _find_credit(
        self,
        shop: str,
        token: str,
        customer_id: int,
        value: Money,
        since: datetime,
        taken: set[str],
    ) -> IssuedReward | None:
        data = self._gql.execute(
            shop, token, STORE_CREDIT_TRANSACTIONS, {"id": customer_gid(customer_id)}
        ).data
        customer = data.get("customer")
        if customer is None:
            raise RewardRefused("customer_not_found", "the customer no longer exists in Shopify")
        floor = since - SKEW
        for account in customer["storeCreditAccounts"]["nodes"]:
            for txn in account["transactions"]["nodes"]:
                if not txn.get("id"):  # a debit or an expiry: not ours
                    continue
                amount = txn.get("amount") or {}
                created = datetime.fromisoformat(str(txn["createdAt"]).replace("Z", "+00:00"))
                if (
                    txn["id"] not in taken
                    and amount.get("currencyCode") == value.currency
                    and Decimal(str(amount.get("amount"))) == value.amount
                    and created >= floor
                ):
                    return IssuedReward(txn["id"], None, found_existing=True)
        return None

    # --- single-use codes ----------------------------------------------------------------------

    def issue_code(
        self,
        shop_domain: str,
        access_token: str,
        *,
        key: str,
        code: str,
        customer_id: int,
        value: Money | None,
        product_id: str | None,
        title: str,
        since: datetime | None,
    ) -> IssuedReward:
        if since is not None:
            found = self._gql.execute(shop_domain, access_token, CODE_LOOKUP, {"code": code}).data
            node = found.get("codeDiscountNodeByCode")
            if node:
                return IssuedReward(node["id"], code, found_existing=True)
        if product_id is not None:
            gets: dict[str, Any] = {
                "value": {"percentage": 1.0},
                "items": {"products": {"productsToAdd": [product_id]}},
            }
        elif value is not None:
            gets = {
                "value": {
                    "discountAmount": {"amount": str(value.amount), "appliesOnEachItem": False}
                },
                "items": {"all": True},
            }
        else:
            raise ValueError("a reward code needs a value or a product")
        payload = {
            "title": title[:255],
            "code": code,
            "startsAt": (datetime.now().astimezone() - SKEW).isoformat(),
            "customerGets": gets,
            "context": {"customers": {"add": [customer_gid(customer_id)]}},
            "usageLimit": 1,
            "appliesOncePerCustomer": True,
            "combinesWith": {
                "orderDiscounts": False,
                "productDiscounts": False,
                "shippingDiscounts": True,
            },
        }
        result = self._run(
            shop_domain, access_token, CODE_CREATE, {"input": payload}, "discountCodeBasicCreate"
        )
        if result.get("userErrors"):
            errors = result["userErrors"]
            taken = any("taken" in str(e.get("message", "")).lower() for e in errors)
            if taken and since is not None:  # created by the attempt whose lookup raced us
                again = self._gql.execute(
                    shop_domain, access_token, CODE_LOOKUP, {"code": code}
                ).data.get("codeDiscountNodeByCode")
                if again:
                    return IssuedReward(again["id"], code, found_existing=True)
            raise _refusal(errors)
        return IssuedReward(result["codeDiscountNode"]["id"], code)
