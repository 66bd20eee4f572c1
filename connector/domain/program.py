"""Program settings per shop: what the code gives the friend, how codes look, how people join.

Stored as one validated document per shop. :func:`ProgramSettings.from_dict` rejects bad input
with a message naming the field; unknown fields are refused rather than silently dropped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from connector.domain.codes import CodeFormat, CodeStrategy, InvalidCode
from connector.domain.content import storable
from connector.domain.engagement import EngagementSettings, EngagementSettingsInvalid
from connector.domain.payouts import PayoutSettings, PayoutSettingsInvalid


class SettingsInvalid(ValueError):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


class DiscountKind(StrEnum):
    PERCENTAGE = "percentage"
    FIXED_AMOUNT = "fixed_amount"


@dataclass(frozen=True)
class FriendDiscount:
    """The terms of the discount a friend gets with an ambassador's code. Ambassadors with the
    same terms share one Shopify discount (with one redeem code each)."""

    kind: DiscountKind = DiscountKind.PERCENTAGE
    value: Decimal = Decimal("10")
    minimum_subtotal: Decimal | None = None
    once_per_customer: bool = True
    combines_with_order: bool = False
    combines_with_product: bool = False
    combines_with_shipping: bool = True

    def key(self) -> str:
        """A stable text key of the terms (what makes two discounts the same)."""
        parts = [
            self.kind.value,
            f"{self.value.normalize()}",
            f"{self.minimum_subtotal.normalize() if self.minimum_subtotal else '-'}",
            "1" if self.once_per_customer else "0",
            "".join(
                "1" if b else "0"
                for b in (
                    self.combines_with_order,
                    self.combines_with_product,
                    self.combines_with_shipping,
                )
            ),
        ]
        return ":".join(parts)

    def title(self) -> str:
        amount = (
            f"{self.value.normalize():f}%"  # ":f": 10 is "10", not "1E+1"
            if self.kind is DiscountKind.PERCENTAGE
            else (f"{self.value.normalize():f} off")
        )
        return f"Ambassador friends {amount}"


@dataclass(frozen=True)
class ApplicationQuestion:
    id: str
    label: str
    required: bool = False
    kind: str = "text"  # text | textarea | url


@dataclass(frozen=True)
class ProgramSettings:
    friend_discount: FriendDiscount = field(default_factory=FriendDiscount)
    code_format: CodeFormat = field(default_factory=CodeFormat)
    default_commission_rate: Decimal = Decimal("10")  # percent of eligible paid amount
    hold_days: int = 30
    new_customers_only: bool = False
    approvals_required: int = 1
    reapply_after_days: int = 90
    auto_approve: bool = False
    tier_window_days: int = 90  # results counted over this rolling window
    tier_grace_days: int = 30  # below a tier this long before demotion
    customer_tag: str = "ambassador"
    questions: tuple[ApplicationQuestion, ...] = (
        ApplicationQuestion("why", "Why do you love our products?", required=True, kind="textarea"),
        ApplicationQuestion("audience", "Where do you share (links to your profiles)?"),
    )
    payouts: PayoutSettings = field(default_factory=PayoutSettings)
    engagement: EngagementSettings = field(default_factory=EngagementSettings)
    #: The program's own disclosure wording: content carrying it passes the disclosure check,
    #: and it is built into the resources' pre-written posts.
    disclosure_text: str = "#ad"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["friend_discount"]["kind"] = self.friend_discount.kind.value
        data["code_format"]["strategy"] = self.code_format.strategy.value
        data["questions"] = [asdict(q) for q in self.questions]
        data["payouts"] = self.payouts.to_dict()
        data["engagement"] = self.engagement.to_dict()
        return _jsonable(data)

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], base: ProgramSettings | None = None
    ) -> ProgramSettings:
        """Merge ``data`` over ``base`` (a partial update) and validate the result."""
        current = (base or cls()).to_dict()
        _known(data, {f.name for f in fields(cls)}, "")
        merged = {
            **current,
            **{
                k: v
                for k, v in data.items()
                if k not in ("friend_discount", "code_format", "payouts", "engagement")
            },
        }
        merged["friend_discount"] = {
            **current["friend_discount"],
            **_obj(data.get("friend_discount", {}), "friend_discount"),
        }
        merged["code_format"] = {
            **current["code_format"],
            **_obj(data.get("code_format", {}), "code_format"),
        }
        _known(
            merged["friend_discount"], {f.name for f in fields(FriendDiscount)}, "friend_discount."
        )
        _known(merged["code_format"], {f.name for f in fields(CodeFormat)}, "code_format.")
        fd = merged["friend_discount"]
        try:
            kind = DiscountKind(fd["kind"])
        except ValueError:
            raise SettingsInvalid(
                "friend_discount.kind", "must be 'percentage' or 'fixed_amount'"
            ) from None
        value = _decimal(fd["value"], "friend_discount.value")
        if value <= 0 or (kind is DiscountKind.PERCENTAGE and value > 100):
            raise SettingsInvalid(
                "friend_discount.value", "must be above 0 (and at most 100 for a percentage)"
            )
        minimum = fd.get("minimum_subtotal")
        friend = FriendDiscount(
            kind=kind,
            value=value,
            minimum_subtotal=_decimal(minimum, "friend_discount.minimum_subtotal")
            if minimum not in (None, "")
            else None,
            once_per_customer=_bool(fd["once_per_customer"], "friend_discount.once_per_customer"),
            combines_with_order=_bool(
                fd["combines_with_order"], "friend_discount.combines_with_order"
            ),
            combines_with_product=_bool(
                fd["combines_with_product"], "friend_discount.combines_with_product"
            ),
            combines_with_shipping=_bool(
                fd["combines_with_shipping"], "friend_discount.combines_with_shipping"
            ),
        )
        cf = merged["code_format"]
        try:
            code_format = CodeFormat(
                strategy=CodeStrategy(cf["strategy"]),
                prefix=str(cf["prefix"] or ""),
                suffix=str(cf["suffix"] or ""),
                length=_int(cf["length"], "code_format.length"),
            )
        except ValueError as exc:
            name = "code_format.strategy" if not isinstance(exc, InvalidCode) else "code_format"
            raise SettingsInvalid(name, str(exc)) from None
        rate = _decimal(merged["default_commission_rate"], "default_commission_rate")
        if not 0 <= rate <= 100:
            raise SettingsInvalid("default_commission_rate", "must be between 0 and 100")
        hold = _int(merged["hold_days"], "hold_days")
        if not 0 <= hold <= 365:
            raise SettingsInvalid("hold_days", "must be between 0 and 365")
        approvals = _int(merged["approvals_required"], "approvals_required")
        if not 1 <= approvals <= 10:
            raise SettingsInvalid("approvals_required", "must be between 1 and 10")
        reapply = _int(merged["reapply_after_days"], "reapply_after_days")
        if not 0 <= reapply <= 3650:
            raise SettingsInvalid("reapply_after_days", "must be between 0 and 3650")
        window = _int(merged.get("tier_window_days", 90), "tier_window_days")
        if not 7 <= window <= 730:
            raise SettingsInvalid("tier_window_days", "must be between 7 and 730")
        grace = _int(merged.get("tier_grace_days", 30), "tier_grace_days")
        if not 0 <= grace <= 365:
            raise SettingsInvalid("tier_grace_days", "must be between 0 and 365")
        tag = str(merged["customer_tag"] or "").strip()
        if not tag or len(tag) > 40 or "," in tag:
            raise SettingsInvalid("customer_tag", "1 to 40 characters, no commas")
        questions = _questions(merged["questions"])
        try:
            payouts = PayoutSettings.from_dict(
                data.get("payouts", {}), base.payouts if base else None
            )
        except PayoutSettingsInvalid as exc:
            raise SettingsInvalid(exc.field, str(exc).split(": ", 1)[1]) from None
        try:
            engagement = EngagementSettings.from_dict(
                data.get("engagement", {}), (base or cls()).engagement
            )
        except EngagementSettingsInvalid as exc:
            raise SettingsInvalid(exc.field, str(exc).split(": ", 1)[1]) from None
        disclosure = merged.get("disclosure_text", "#ad")
        if (
            not isinstance(disclosure, str)
            or not 2 <= len(disclosure.strip()) <= 200
            or not storable(disclosure)
        ):
            raise SettingsInvalid("disclosure_text", "2 to 200 characters")
        return cls(
            friend_discount=friend,
            code_format=code_format,
            default_commission_rate=rate,
            hold_days=hold,
            new_customers_only=_bool(merged["new_customers_only"], "new_customers_only"),
            approvals_required=approvals,
            reapply_after_days=reapply,
            auto_approve=_bool(merged["auto_approve"], "auto_approve"),
            customer_tag=tag,
            questions=questions,
            tier_window_days=window,
            tier_grace_days=grace,
            payouts=payouts,
            engagement=engagement,
            disclosure_text=disclosure.strip(),
        )


def _questions(raw: Any) -> tuple[ApplicationQuestion, ...]:
    if not isinstance(raw, list) or len(raw) > 20:
        raise SettingsInvalid("questions", "a list of at most 20 questions")
    out = []
    seen = set()
    for i, q in enumerate(raw):
        q = _obj(q, f"questions[{i}]")
        qid = str(q.get("id", "")).strip()
        label = str(q.get("label", "")).strip()
        kind = str(q.get("kind", "text"))
        if not qid or not qid.replace("_", "").isalnum() or len(qid) > 40 or qid in seen:
            raise SettingsInvalid(f"questions[{i}].id", "unique, letters, digits and _")
        if not label or len(label) > 300:
            raise SettingsInvalid(f"questions[{i}].label", "1 to 300 characters")
        if kind not in ("text", "textarea", "url"):
            raise SettingsInvalid(f"questions[{i}].kind", "text, textarea or url")
        seen.add(qid)
        out.append(
            ApplicationQuestion(
                qid, label, _bool(q.get("required", False), f"questions[{i}].required"), kind
            )
        )
    return tuple(out)


def _known(data: Any, allowed: set[str], prefix: str) -> None:
    if not isinstance(data, dict):
        raise SettingsInvalid(prefix.rstrip(".") or "settings", "must be an object")
    unknown = set(data) - allowed
    if unknown:
        raise SettingsInvalid(f"{prefix}{sorted(unknown)[0]}", "unknown setting")


def _obj(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SettingsInvalid(name, "must be an object")
    return value


def _decimal(value: Any, name: str) -> Decimal:
    if isinstance(value, bool) or isinstance(value, float):
        raise SettingsInvalid(name, 'give decimals as strings, e.g. "12.50"')
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise SettingsInvalid(name, "must be a decimal number") from None
    if not result.is_finite():
        raise SettingsInvalid(name, "must be a decimal number")
    return result


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise SettingsInvalid(name, "must be an integer")
    try:
        return int(value)
    except ValueError:
        raise SettingsInvalid(name, "must be an integer") from None


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise SettingsInvalid(name, "must be true or false")
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    return value
