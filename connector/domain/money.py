"""Money: a Decimal amount with its ISO currency. Never float."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

#: Currencies whose minor unit is not cents (ISO 4217); everything else has 2 decimals.
_EXPONENTS = {
    "JPY": 0,
    "KRW": 0,
    "VND": 0,
    "CLP": 0,
    "ISK": 0,
    "HUF": 2,
    "BHD": 3,
    "KWD": 3,
    "JOD": 3,
    "OMR": 3,
    "TND": 3,
}


class MoneyError(ValueError):
    """Malformed amount, or arithmetic across currencies."""


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency.upper(), 2)


@dataclass(frozen=True, order=True)
class Money:
    amount: Decimal
    currency: str

    @classmethod
    def of(cls, amount: str | int | Decimal, currency: str) -> Money:
        """Parse an amount given as a string (Shopify sends ``"12.50"``), int or Decimal."""
        if isinstance(amount, float):
            raise MoneyError("money is never a float")
        try:
            value = Decimal(str(amount))
        except (InvalidOperation, ValueError) as exc:
            raise MoneyError(f"not an amount: {amount!r}") from exc
        if not value.is_finite():
            raise MoneyError(f"not an amount: {amount!r}")
        code = (currency or "").upper()
        if len(code) != 3 or not code.isalpha():
            raise MoneyError(f"not a currency code: {currency!r}")
        return cls(value, code)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency.upper())

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise MoneyError(f"cannot combine {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def times(self, factor: Decimal) -> Money:
        """Exact product (round with :meth:`rounded` when the result is booked)."""
        return Money(self.amount * factor, self.currency)

    def rounded(self) -> Money:
        """To the currency's minor unit, half-even (banker's rounding: no drift in sums)."""
        quantum = Decimal(1).scaleb(-exponent(self.currency))
        return Money(self.amount.quantize(quantum, rounding=ROUND_HALF_EVEN), self.currency)

    def __str__(self) -> str:
        return f"{self.rounded().amount} {self.currency}"

    def as_string(self) -> str:
        """The decimal string the API serves (``"12.50"``)."""
        return str(self.rounded().amount)
