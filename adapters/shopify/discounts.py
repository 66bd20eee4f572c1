"""``DiscountPlatform`` for Shopify: redeem codes on shared discounts, customers, tags.

Codes are added to one shared discount per set of terms with ``discountRedeemCodeBulkAdd``
(≤250 codes per call, processed asynchronously by Shopify; we poll the bulk creation until it is
done and read each code's result), instead of one ``discountCodeBasicCreate`` per ambassador.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import httpx

from adapters.shopify.graphql import GraphQLError, ShopifyGraphQLClient
from connector.domain.program import DiscountKind, FriendDiscount
from connector.ports import (
    BulkOperationBusy,
    BulkOperationState,
    CodeTaken,
    CustomerPage,
    CustomerSummary,
    PlatformError,
    PlatformRetryable,
    RedeemCodeResult,
)

BULK_ADD_LIMIT = 250

CREATE_DISCOUNT = """
mutation CreateAmbassadorDiscount($input: DiscountCodeBasicInput!) {
  discountCodeBasicCreate(basicCodeDiscount: $input) {
    codeDiscountNode {
      id
      codeDiscount { ... on DiscountCodeBasic { codes(first: 1) { nodes { id code } } } }
    }
    userErrors { code field message }
  }
}
"""

CODE_OWNER = """
query AmbassadorCodeOwner($code: String!) {
  codeDiscountNodeByCode(code: $code) {
    id
    codeDiscount { ... on DiscountCodeBasic { title codes(first: 2) { nodes { id code } } } }
  }
}
"""

UPDATE_DISCOUNT = """
mutation UpdateAmbassadorDiscount($id: ID!, $input: DiscountCodeBasicInput!) {
  discountCodeBasicUpdate(id: $id, basicCodeDiscount: $input) {
    codeDiscountNode { id }
    userErrors { code field message }
  }
}
"""

BULK_ADD = """
mutation AddAmbassadorCodes($discountId: ID!, $codes: [DiscountRedeemCodeInput!]!) {
  discountRedeemCodeBulkAdd(discountId: $discountId, codes: $codes) {
    bulkCreation { id }
    userErrors { code field message }
  }
}
"""

BULK_CREATION = """
query AmbassadorCodesCreation($id: ID!, $after: String) {
  discountRedeemCodeBulkCreation(id: $id) {
    done
    codesCount
    importedCount
    failedCount
    codes(first: 250, after: $after) {
      nodes { code errors { code field message } discountRedeemCode { id code } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""

BULK_DELETE = """
mutation RemoveAmbassadorCodes($discountId: ID!, $ids: [ID!]) {
  discountCodeRedeemCodeBulkDelete(discountId: $discountId, ids: $ids) {
    job { id done }
    userErrors { code field message }
  }
}
"""

BULK_CREATION_DONE = """
query AmbassadorCodesCreationDone($id: ID!) {
  discountRedeemCodeBulkCreation(id: $id) { done }
}
"""

JOB = """
query AmbassadorJob($id: ID!) { job(id: $id) { id done } }
"""

DISCOUNT_CODES = """
query AmbassadorDiscountCodes($id: ID!, $after: String) {
  codeDiscountNode(id: $id) {
    id
    codeDiscount {
      ... on DiscountCodeBasic {
        codes(first: 250, after: $after) {
          nodes { id code }
          pageInfo { hasNextPage endCursor }
        }
      }
    }
  }
}
"""

CUSTOMER_FIELDS = """
  id legacyResourceId firstName lastName createdAt tags numberOfOrders
  defaultEmailAddress { emailAddress }
  amountSpent { amount currencyCode }
  lastOrder { createdAt }
"""

CUSTOMERS = f"""
query AmbassadorCandidates($first: Int!, $after: String, $query: String,
                           $sort: CustomerSortKeys) {{
  customers(first: $first, after: $after, query: $query, sortKey: $sort, reverse: true) {{
    nodes {{ {CUSTOMER_FIELDS} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}
"""

CUSTOMER = f"""
query AmbassadorCustomer($id: ID!) {{
  customer(id: $id) {{ {CUSTOMER_FIELDS} }}
}}
"""

CUSTOMERS_COUNT = """
query AmbassadorCustomersCount { customersCount(limit: null) { count } }
"""

#: The bulk export of candidates: every customer who ordered, with what ranking needs. A bulk
#: query takes no variables and no page size: Shopify reads the whole connection.
CUSTOMER_EXPORT_QUERY = f"""
{{
  customers(query: "orders_count:>0") {{
    edges {{ node {{ {CUSTOMER_FIELDS} }} }}
  }}
}}
"""

BULK_RUN = """
mutation AmbassadorCustomerExport($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status objectCount errorCode url }
    userErrors { code field message }
  }
}
"""

BULK_OPERATION = """
query AmbassadorBulkOperation($id: ID!) {
  node(id: $id) { ... on BulkOperation { id status objectCount errorCode url } }
}
"""

BULK_CANCEL = """
mutation AmbassadorBulkCancel($id: ID!) {
  bulkOperationCancel(id: $id) { bulkOperation { id status } userErrors { field message } }
}
"""

TAGS_ADD = """
mutation TagAmbassador($id: ID!, $tags: [String!]!) {
  tagsAdd(id: $id, tags: $tags) { userErrors { field message } }
}
"""

TAGS_REMOVE = """
mutation UntagAmbassador($id: ID!, $tags: [String!]!) {
  tagsRemove(id: $id, tags: $tags) { userErrors { field message } }
}
"""


def customer_gid(customer_id: int) -> str:
    return f"gid://shopify/Customer/{customer_id}"


def terms_input(terms: FriendDiscount, title: str) -> dict[str, Any]:
    """The ``DiscountCodeBasicInput`` fields that carry the terms (no code, dates or context):
    a full statement of them, so an update leaves nothing of the old terms behind."""
    if terms.kind is DiscountKind.PERCENTAGE:
        value: dict[str, Any] = {"percentage": float(terms.value / 100)}  # API takes a Float
    else:
        value = {"discountAmount": {"amount": str(terms.value), "appliesOnEachItem": False}}
    data: dict[str, Any] = {
        "title": title,
        "customerGets": {"value": value, "items": {"all": True}},
        "appliesOncePerCustomer": terms.once_per_customer,
        "combinesWith": {
            "orderDiscounts": terms.combines_with_order,
            "productDiscounts": terms.combines_with_product,
            "shippingDiscounts": terms.combines_with_shipping,
        },
    }
    if terms.minimum_subtotal:
        data["minimumRequirement"] = {
            "subtotal": {"greaterThanOrEqualToSubtotal": str(terms.minimum_subtotal)}
        }
    else:
        # Both null is how the Admin API removes a minimum (absent would keep the old one).
        data["minimumRequirement"] = {
            "subtotal": {"greaterThanOrEqualToSubtotal": None},
            "quantity": {"greaterThanOrEqualToQuantity": None},
        }
    return data


def discount_input(terms: FriendDiscount, title: str, first_code: str) -> dict[str, Any]:
    data = terms_input(terms, title)
    if not terms.minimum_subtotal:
        del data["minimumRequirement"]
    return {
        **data,
        "code": first_code,
        # A little in the past: a clock running ahead of Shopify's must not make codes "not
        # active yet" for their first seconds.
        "startsAt": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
        "context": {"all": "ALL"},
    }


def _is_taken(error: dict[str, Any]) -> bool:
    code = str(error.get("code") or "").upper()
    return code == "TAKEN" or "taken" in str(error.get("message", "")).lower()


class ShopifyDiscounts:
    """``DiscountPlatform`` and ``CustomerExport``. ``http`` downloads bulk results (their
    signed URLs need no token); without one, a plain client with timeouts is used."""

    def __init__(
        self,
        graphql: ShopifyGraphQLClient,
        *,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        poll_timeout: float = 120.0,
    ) -> None:
        self._gql = graphql
        self._http = http
        self._sleep = sleep
        self._poll_timeout = poll_timeout

    def create_code_discount(
        self,
        shop_domain: str,
        access_token: str,
        terms: FriendDiscount,
        title: str,
        first_code: str,
    ) -> tuple[str, RedeemCodeResult]:
        data = self._gql.execute(
            shop_domain,
            access_token,
            CREATE_DISCOUNT,
            {"input": discount_input(terms, title, first_code)},
        ).data["discountCodeBasicCreate"]
        errors = data.get("userErrors") or []
        if errors:
            if any(_is_taken(e) for e in errors):
                made = self._made_by_a_lost_answer(shop_domain, access_token, title, first_code)
                if made is not None:
                    return made
                raise CodeTaken(first_code)
            raise PlatformError(f"{shop_domain}: discount refused: {errors[0].get('message')}")
        node = data["codeDiscountNode"]
        codes = node["codeDiscount"]["codes"]["nodes"]
        return node["id"], RedeemCodeResult(first_code, codes[0]["id"] if codes else None)

    def _made_by_a_lost_answer(
        self, shop_domain: str, access_token: str, title: str, first_code: str
    ) -> tuple[str, RedeemCodeResult] | None:
        """The discount an earlier attempt of this very create made, when Shopify carried it
        out but its answer was lost (a timeout, a reset, a 5xx after the fact) and the create
        was sent again: our title and ``first_code`` as its only code. Adopted instead of
        moving the ambassador to another code, which would leave a second discount behind."""
        node = (
            self._gql.execute(
                shop_domain, access_token, CODE_OWNER, {"code": first_code}, estimated_cost=3
            ).data.get("codeDiscountNodeByCode")
            or {}
        )
        discount = node.get("codeDiscount") or {}
        codes = (discount.get("codes") or {}).get("nodes") or []
        if (
            discount.get("title") == title
            and len(codes) == 1
            and str(codes[0].get("code", "")).upper() == first_code.upper()
        ):
            return node["id"], RedeemCodeResult(first_code, codes[0]["id"])
        return None

    def update_code_discount(
        self, shop_domain: str, access_token: str, discount_gid: str, terms: FriendDiscount
    ) -> bool:
        result = self._gql.execute(
            shop_domain,
            access_token,
            UPDATE_DISCOUNT,
            {"id": discount_gid, "input": terms_input(terms, terms.title())},
        ).data["discountCodeBasicUpdate"]
        errors = result.get("userErrors") or []
        if errors:
            if any("does not exist" in str(e.get("message", "")).lower() for e in errors):
                return False
            raise PlatformError(f"{shop_domain}: discount update refused: {errors[0]['message']}")
        return True

    def add_redeem_codes(
        self, shop_domain: str, access_token: str, discount_gid: str, codes: list[str]
    ) -> list[RedeemCodeResult]:
        results: list[RedeemCodeResult] = []
        for start in range(0, len(codes), BULK_ADD_LIMIT):
            chunk = codes[start : start + BULK_ADD_LIMIT]
            added = self._gql.execute(
                shop_domain,
                access_token,
                BULK_ADD,
                {"discountId": discount_gid, "codes": [{"code": c} for c in chunk]},
            ).data["discountRedeemCodeBulkAdd"]
            if added.get("userErrors"):
                message = added["userErrors"][0].get("message")
                raise PlatformError(f"{shop_domain}: codes refused: {message}")
            created = self._await_creation(
                shop_domain, access_token, added["bulkCreation"]["id"], chunk
            )
            if any(r.error == "taken" for r in created):
                created = self._already_ours(shop_domain, access_token, discount_gid, created)
            results.extend(created)
        return results

    def _already_ours(
        self,
        shop_domain: str,
        access_token: str,
        discount_gid: str,
        results: list[RedeemCodeResult],
    ) -> list[RedeemCodeResult]:
        """Codes refused as taken because they are on this very discount already (an earlier
        add whose answer was lost and that was sent again) are ours: confirmed, not moved to
        another code (which would leave the first one in Shopify, owned by no one)."""
        held = self.discount_codes(shop_domain, access_token, discount_gid) or {}
        return [
            RedeemCodeResult(r.code, held[r.code.upper()])
            if r.error == "taken" and r.code.upper() in held
            else r
            for r in results
        ]

    def _await_creation(
        self, shop_domain: str, access_token: str, creation_id: str, chunk: list[str]
    ) -> list[RedeemCodeResult]:
        deadline = time.monotonic() + self._poll_timeout
        delay = 0.2
        # Poll the cheap `done` flag; read the (costly) per-code results once, when done.
        while True:
            state = self._gql.execute(
                shop_domain, access_token, BULK_CREATION_DONE, {"id": creation_id}, estimated_cost=1
            ).data
            if (state.get("discountRedeemCodeBulkCreation") or {}).get("done"):
                break
            if time.monotonic() > deadline:
                raise PlatformError(f"{shop_domain}: code creation {creation_id} not done")
            self._sleep(delay)
            delay = min(delay * 2, 5.0)
        creation = self._gql.execute(
            shop_domain, access_token, BULK_CREATION, {"id": creation_id}, estimated_cost=30
        ).data["discountRedeemCodeBulkCreation"]
        by_code: dict[str, RedeemCodeResult] = {}
        page: dict[str, Any] | None = creation
        while page is not None:
            for node in page["codes"]["nodes"]:
                code = str(node["code"]).upper()
                redeem = node.get("discountRedeemCode")
                errors = node.get("errors") or []
                if redeem and not errors:
                    by_code[code] = RedeemCodeResult(code, redeem["id"])
                else:
                    reason = (
                        "taken"
                        if any(_is_taken(e) for e in errors)
                        else (str(errors[0].get("message")) if errors else "not created")
                    )
                    by_code[code] = RedeemCodeResult(code, None, reason)
            info = page["codes"]["pageInfo"]
            if not info["hasNextPage"]:
                break
            page = self._gql.execute(
                shop_domain,
                access_token,
                BULK_CREATION,
                {"id": creation_id, "after": info["endCursor"]},
                estimated_cost=30,
            ).data["discountRedeemCodeBulkCreation"]
        return [
            by_code.get(c.upper(), RedeemCodeResult(c.upper(), None, "not reported")) for c in chunk
        ]

    def delete_redeem_codes(
        self, shop_domain: str, access_token: str, discount_gid: str, redeem_code_gids: list[str]
    ) -> None:
        """Delete codes and wait for Shopify's asynchronous job, so a code removed here is gone
        before anything else (a re-add, a drift check) looks at it."""
        for start in range(0, len(redeem_code_gids), BULK_ADD_LIMIT):
            result = self._gql.execute(
                shop_domain,
                access_token,
                BULK_DELETE,
                {
                    "discountId": discount_gid,
                    "ids": redeem_code_gids[start : start + BULK_ADD_LIMIT],
                },
            ).data["discountCodeRedeemCodeBulkDelete"]
            if result.get("userErrors"):
                message = result["userErrors"][0].get("message")
                raise PlatformError(f"{shop_domain}: delete refused: {message}")
            job = result.get("job") or {}
            if job.get("id") and not job.get("done"):
                self._await_job(shop_domain, access_token, job["id"])

    def _await_job(self, shop_domain: str, access_token: str, job_id: str) -> None:
        deadline = time.monotonic() + self._poll_timeout
        delay = 0.2
        while True:
            job = self._gql.execute(
                shop_domain, access_token, JOB, {"id": job_id}, estimated_cost=1
            ).data.get("job")
            if job is None or job.get("done"):
                return
            if time.monotonic() > deadline:
                raise PlatformError(f"{shop_domain}: job {job_id} not done")
            self._sleep(delay)
            delay = min(delay * 2, 5.0)

    def discount_codes(
        self, shop_domain: str, access_token: str, discount_gid: str
    ) -> dict[str, str] | None:
        codes: dict[str, str] = {}
        after = None
        while True:
            try:
                node = self._gql.execute(
                    shop_domain,
                    access_token,
                    DISCOUNT_CODES,
                    {"id": discount_gid, "after": after},
                    estimated_cost=260,
                ).data["codeDiscountNode"]
            except GraphQLError:
                raise
            if node is None or not node.get("codeDiscount"):
                return None
            connection = node["codeDiscount"]["codes"]
            for item in connection["nodes"]:
                codes[str(item["code"]).upper()] = item["id"]
            if not connection["pageInfo"]["hasNextPage"]:
                return codes
            after = connection["pageInfo"]["endCursor"]

    def search_customers(
        self,
        shop_domain: str,
        access_token: str,
        query: str | None,
        after: str | None,
        first: int = 100,
        sort: str = "UPDATED_AT",
    ) -> CustomerPage:
        data = self._gql.execute(
            shop_domain,
            access_token,
            CUSTOMERS,
            {"first": first, "after": after, "query": query, "sort": sort},
            estimated_cost=2 + first * 3,
        ).data["customers"]
        info = data["pageInfo"]
        return CustomerPage(
            [_customer(n) for n in data["nodes"]],
            info["endCursor"] if info["hasNextPage"] else None,
        )

    def find_customer_by_email(
        self, shop_domain: str, access_token: str, email: str
    ) -> CustomerSummary | None:
        quoted = email.replace("\\", "\\\\").replace('"', '\\"')
        page = self.search_customers(shop_domain, access_token, f'email:"{quoted}"', None, 5)
        for customer in page.customers:
            if (customer.email or "").lower() == email.lower():
                return customer
        return None

    def get_customer(
        self, shop_domain: str, access_token: str, customer_id: int
    ) -> CustomerSummary | None:
        node = self._gql.execute(
            shop_domain, access_token, CUSTOMER, {"id": customer_gid(customer_id)}, estimated_cost=3
        ).data
        return _customer(node["customer"]) if node.get("customer") else None

    def tag_customer(
        self, shop_domain: str, access_token: str, customer_id: int, tag: str, *, add: bool
    ) -> None:
        document, field = (TAGS_ADD, "tagsAdd") if add else (TAGS_REMOVE, "tagsRemove")
        result = self._gql.execute(
            shop_domain, access_token, document, {"id": customer_gid(customer_id), "tags": [tag]}
        ).data[field]
        if result.get("userErrors"):
            message = result["userErrors"][0].get("message")
            raise PlatformError(f"{shop_domain}: tag refused: {message}")

    # --- CustomerExport: bulk operations ----------------------------------------------------

    def count_customers(self, shop_domain: str, access_token: str) -> int:
        data = self._gql.execute(shop_domain, access_token, CUSTOMERS_COUNT, estimated_cost=1).data
        return int((data.get("customersCount") or {}).get("count") or 0)

    def start_customer_export(self, shop_domain: str, access_token: str) -> BulkOperationState:
        result = self._gql.execute(
            shop_domain, access_token, BULK_RUN, {"query": CUSTOMER_EXPORT_QUERY}
        ).data["bulkOperationRunQuery"]
        errors = result.get("userErrors") or []
        if errors:
            codes = {str(e.get("code") or "") for e in errors}
            message = str(errors[0].get("message"))
            if codes & {"OPERATION_IN_PROGRESS", "LIMIT_REACHED"}:
                raise BulkOperationBusy(f"{shop_domain}: {message}")
            raise PlatformError(f"{shop_domain}: bulk query refused: {message}")
        return _bulk_state(result["bulkOperation"])

    def bulk_operation(
        self, shop_domain: str, access_token: str, operation_id: str
    ) -> BulkOperationState | None:
        node = self._gql.execute(
            shop_domain, access_token, BULK_OPERATION, {"id": operation_id}, estimated_cost=1
        ).data.get("node")
        return _bulk_state(node) if node else None

    def cancel_bulk_operation(self, shop_domain: str, access_token: str, operation_id: str) -> None:
        # userErrors here mean it already finished: nothing left to stop.
        self._gql.execute(shop_domain, access_token, BULK_CANCEL, {"id": operation_id})

    @contextmanager
    def open_customer_export(self, url: str) -> Iterator[Iterable[CustomerSummary]]:
        with tempfile.TemporaryDirectory(prefix="customer-export-") as folder:
            path = Path(folder) / "export.jsonl"
            with path.open("wb") as out:
                self._download(url, out)
            yield _ExportFile(path)

    def _download(self, url: str, out: IO[bytes]) -> None:
        client = self._http or httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0))
        try:
            with client.stream("GET", url) as response:
                if response.status_code >= 500:
                    raise PlatformRetryable(f"bulk result download: HTTP {response.status_code}")
                if response.status_code != 200:
                    raise PlatformError(
                        f"bulk result download refused (HTTP {response.status_code}): the link "
                        "may have expired; run the scan again"
                    )
                for chunk in response.iter_bytes(1 << 16):
                    out.write(chunk)
        except httpx.HTTPError as exc:
            raise PlatformRetryable(f"bulk result download: {type(exc).__name__}") from None
        finally:
            if self._http is None:
                client.close()


class _ExportFile:
    """The customers of a downloaded JSONL export, read line by line on each iteration. Lines
    of nested connections (with ``__parentId``) are skipped: the query has none today."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def __iter__(self) -> Iterator[CustomerSummary]:
        with self._path.open("rb") as lines:
            for line in lines:
                if not line.strip():
                    continue
                node = json.loads(line)
                if "__parentId" not in node:
                    yield _customer(node)


def _bulk_state(node: dict[str, Any]) -> BulkOperationState:
    return BulkOperationState(
        id=node["id"],
        status=node["status"],
        object_count=int(node.get("objectCount") or 0),
        error_code=node.get("errorCode"),
        url=node.get("url"),
    )


def _customer(node: dict[str, Any]) -> CustomerSummary:
    email = (node.get("defaultEmailAddress") or {}).get("emailAddress")
    spent = node.get("amountSpent") or {"amount": "0", "currencyCode": "USD"}
    last = (node.get("lastOrder") or {}).get("createdAt")
    return CustomerSummary(
        id=int(node["legacyResourceId"]),
        email=email,
        first_name=node.get("firstName") or "",
        last_name=node.get("lastName") or "",
        orders=int(node.get("numberOfOrders") or 0),
        amount_spent=Decimal(str(spent["amount"])),
        currency=spent["currencyCode"],
        last_order_at=_ts(last),
        created_at=_ts(node.get("createdAt")),
        tags=tuple(node.get("tags") or ()),
    )


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None
