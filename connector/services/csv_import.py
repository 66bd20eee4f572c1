"""Importing ambassadors from a CSV file: good rows in, bad rows reported with the reason.

Columns (header row, case-insensitive): ``email`` (required), ``first_name``, ``last_name``,
``customer_id`` (a number or ``gid://shopify/Customer/N``), ``tier`` (a tier name), ``code``
(a chosen code). Each row is enrolled on its own: one bad row never blocks the others, and a
row for someone already enrolled reports ``existing`` (no second code).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from connector.domain import codes
from connector.domain.shops import Shop
from connector.ports import Clock, JobQueue, UnitOfWorkFactory
from connector.services.ambassadors import ProgramError, enrol, set_code

MAX_ROWS = 10_000
MAX_BYTES = 5 * 1024 * 1024
KNOWN = {"email", "first_name", "last_name", "customer_id", "tier", "code"}


class CsvInvalid(ProgramError):
    def __init__(self, message: str) -> None:
        super().__init__("invalid_csv", message, 422)


@dataclass
class ImportReport:
    enrolled: list[dict[str, Any]] = field(default_factory=list)
    existing: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"enrolled": self.enrolled, "existing": self.existing, "rejected": self.rejected,
                "counts": {"enrolled": len(self.enrolled), "existing": len(self.existing),
                           "rejected": len(self.rejected)}}


def read_rows(data: bytes) -> list[tuple[int, dict[str, str]]]:
    """Parse and check the file as a whole (size, encoding, header); rows are checked later."""
    if len(data) > MAX_BYTES:
        raise CsvInvalid(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CsvInvalid("the file is not UTF-8 text") from None
    # newline="": the csv module handles line ends itself (a lone CR is a line end, not junk).
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in reader.fieldnames or []]
    except csv.Error as exc:
        raise CsvInvalid(f"line 1: {exc}") from None
    if "email" not in header:
        raise CsvInvalid("the header row must have an 'email' column")
    unknown = set(header) - KNOWN
    if unknown:
        raise CsvInvalid(f"unknown column(s): {', '.join(sorted(unknown))}")
    rows = []
    try:
        for number, raw in enumerate(reader, start=2):  # line 1 is the header
            if number - 1 > MAX_ROWS:
                raise CsvInvalid(f"at most {MAX_ROWS} rows per file")
            rows.append((number, {k.strip().lower(): (v or "").strip()
                                  for k, v in raw.items() if k is not None}))
    except csv.Error as exc:
        raise CsvInvalid(f"line {reader.line_num}: {exc}") from None
    return rows


def import_rows(
    uow_factory: UnitOfWorkFactory, jobs: JobQueue, clock: Clock, shop: Shop,
    rows: list[tuple[int, dict[str, str]]], *, actor: str,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    assert shop.id is not None
    with uow_factory() as uow:
        tiers = {t.name.lower(): t.id for t in uow.program.tiers(shop.id)}
    report = ImportReport()
    for number, row in _each(rows, progress):
        try:
            customer_id = _customer_id(row.get("customer_id", ""))
            tier_name = row.get("tier", "")
            if tier_name and tier_name.lower() not in tiers:
                raise ProgramError("invalid_tier", f"no tier named {tier_name!r}")
            wanted = _check_code(uow_factory, shop.id, row.get("code", ""))
            result = enrol(uow_factory(), jobs, clock, shop, email=row.get("email", ""),
                           first_name=row.get("first_name", ""),
                           last_name=row.get("last_name", ""), customer_id=customer_id,
                           tier_id=tiers.get(tier_name.lower()) if tier_name else None,
                           source="import", actor=actor)
            ambassador = result.ambassador
            if result.created and wanted:
                assert ambassador.id is not None
                ambassador = set_code(uow_factory(), jobs, clock, shop, ambassador.id,
                                      wanted, actor=actor)
        except ProgramError as exc:
            report.rejected.append({"line": number, "email": row.get("email", ""),
                                    "code": exc.code, "reason": exc.message})
            continue
        entry = {"line": number, "email": ambassador.email, "ambassador_id": ambassador.id,
                 "code": ambassador.code}
        (report.enrolled if result.created else report.existing).append(entry)
    return report


def _each(rows: list[tuple[int, dict[str, str]]],
          progress: Callable[[int], None] | None) -> Iterator[tuple[int, dict[str, str]]]:
    for item in rows:
        yield item
        if progress:
            progress(1)


def _check_code(uow_factory: UnitOfWorkFactory, shop_id: int, value: str) -> str | None:
    """Validate a chosen code before anything is written, so a bad code rejects the whole
    row instead of enrolling the person with another code."""
    if not value.strip():
        return None
    try:
        code = codes.normalise(value)
    except codes.InvalidCode as exc:
        raise ProgramError("invalid_code", str(exc)) from None
    with uow_factory() as uow:
        if uow.ambassadors.by_code(shop_id, code) is not None:
            raise ProgramError("code_taken", f"{code} belongs to another ambassador")
    return code


def _customer_id(value: str) -> int | None:
    text = value.strip()
    if not text:
        return None
    if text.startswith("gid://shopify/Customer/"):
        text = text.rsplit("/", 1)[1]
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) >= 2**63:
        raise ProgramError("invalid_customer_id", f"not a Shopify customer id: {value!r}")
    return int(text)
