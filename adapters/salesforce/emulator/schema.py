"""Field definitions, value rules and describe output of the emulated objects.

Values are held as Python values: ``str`` for text, picklist, url, email, date (``YYYY-MM-DD``)
and datetime (``YYYY-MM-DDTHH:MM:SS.000+0000``), ``Decimal`` for Number/Currency/Percent,
``bool`` for Checkbox, ``None`` for null. JSON answers render decimals as JSON numbers, as
Salesforce does.

Two stages, as on Salesforce:

* *deserialisation* (:func:`from_json`): a JSON value of the wrong kind (``"abc"`` for a
  number, ``"2026-09-01T12:00:00Z"`` for a date) fails the whole request with
  ``JSON_PARSER_ERROR``; a CSV cell (:func:`from_csv`) that cannot be converted fails only its
  row with ``INVALID_TYPE_ON_FIELD_IN_RECORD``;
* *save validation* (:func:`validate`): text longer than the field, a value outside a
  restricted picklist, a number with too many digits, a malformed email: per-record errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from .errors import ApiError, RecordError

NUMERIC_TYPES = frozenset({"double", "currency", "percent", "int"})
TEXT_TYPES = frozenset({"string", "textarea", "url", "email", "picklist", "id", "reference"})
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?(Z|[+-]\d{2}:?\d{2})$")


@dataclass(frozen=True)
class FieldDef:
    """One field of an object, with the attributes ``describe`` reports. ``createable`` and
    ``updateable`` here are the field's own; field-level security may take them away."""

    name: str
    label: str
    type: str
    length: int = 0
    precision: int = 0
    scale: int = 0
    custom: bool = False
    external_id: bool = False
    unique: bool = False
    case_sensitive: bool = False
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    calculated: bool = False
    name_field: bool = False
    required: bool = False  # required on create (REQUIRED_FIELD_MISSING)
    picklist_values: tuple[str, ...] = ()
    restricted: bool = False
    reference_to: tuple[str, ...] = ()
    defaulted_on_create: bool = False

    @property
    def soap_type(self) -> str:
        return {
            "id": "tns:ID",
            "reference": "tns:ID",
            "boolean": "xsd:boolean",
            "date": "xsd:date",
            "datetime": "xsd:dateTime",
            "double": "xsd:double",
            "currency": "xsd:double",
            "percent": "xsd:double",
            "int": "xsd:int",
        }.get(self.type, "xsd:string")

    def describe(self, *, createable: bool, updateable: bool) -> dict[str, Any]:
        """The field's entry in ``sobjects/X/describe`` (the keys real describes carry)."""
        length = self.length if self.type in TEXT_TYPES else 0
        return {
            "aggregatable": self.type not in ("textarea",),
            "autoNumber": False,
            "byteLength": length * 3,
            "calculated": self.calculated,
            "calculatedFormula": None,
            "caseSensitive": self.case_sensitive,
            "controllerName": None,
            "createable": createable,
            "custom": self.custom,
            "defaultValue": None,
            "defaultValueFormula": None,
            "defaultedOnCreate": self.defaulted_on_create,
            "dependentPicklist": False,
            "deprecatedAndHidden": False,
            "digits": 0,
            "externalId": self.external_id,
            "filterable": self.type != "textarea",
            "groupable": self.type not in NUMERIC_TYPES and self.type != "datetime",
            "htmlFormatted": False,
            "idLookup": self.type == "id" or self.name == "Email" or self.external_id,
            "inlineHelpText": None,
            "label": self.label,
            "length": length,
            "name": self.name,
            "nameField": self.name_field,
            "namePointing": False,
            "nillable": self.nillable,
            "picklistValues": [
                {
                    "active": True,
                    "defaultValue": False,
                    "label": value,
                    "validFor": None,
                    "value": value,
                }
                for value in self.picklist_values
            ],
            "precision": self.precision,
            "referenceTo": list(self.reference_to),
            "relationshipName": None,
            "relationshipOrder": None,
            "restrictedPicklist": self.restricted,
            "scale": self.scale,
            "soapType": self.soap_type,
            "sortable": self.type != "textarea",
            "type": self.type,
            "unique": self.unique,
            "updateable": updateable,
            "writeRequiresMasterRead": False,
        }


def _system(name: str, label: str, type_: str, **extra: Any) -> FieldDef:
    return FieldDef(
        name,
        label,
        type_,
        nillable=False,
        createable=False,
        updateable=False,
        defaulted_on_create=True,
        **extra,
    )


#: Standard Contact fields the emulator models (a real Contact has many more).
CONTACT_STANDARD_FIELDS: tuple[FieldDef, ...] = (
    _system("Id", "Contact ID", "id", length=18),
    _system("IsDeleted", "Deleted", "boolean"),
    _system("OwnerId", "Owner ID", "reference", length=18, reference_to=("User",)),
    FieldDef("AccountId", "Account ID", "reference", length=18, reference_to=("Account",)),
    FieldDef("LastName", "Last Name", "string", length=80, nillable=False, required=True),
    FieldDef("FirstName", "First Name", "string", length=40),
    FieldDef(
        "Name",
        "Full Name",
        "string",
        length=121,
        createable=False,
        updateable=False,
        name_field=True,
        nillable=False,
    ),
    FieldDef("Email", "Email", "email", length=80),
    FieldDef("Phone", "Business Phone", "string", length=40),
    _system("CreatedDate", "Created Date", "datetime"),
    _system("CreatedById", "Created By ID", "reference", length=18, reference_to=("User",)),
    _system("LastModifiedDate", "Last Modified Date", "datetime"),
    _system("LastModifiedById", "Last Modified By ID", "reference", length=18),
    _system("SystemModstamp", "System Modstamp", "datetime"),
)

PERMISSION_SET_FIELDS: tuple[FieldDef, ...] = (
    _system("Id", "Permission Set ID", "id", length=18),
    FieldDef("Name", "Name", "string", length=80, name_field=True, nillable=False),
    FieldDef("Label", "Label", "string", length=80, nillable=False),
)

PERMISSION_SET_ASSIGNMENT_FIELDS: tuple[FieldDef, ...] = (
    _system("Id", "Permission Set Assignment ID", "id", length=18),
    FieldDef(
        "AssigneeId",
        "Assignee ID",
        "reference",
        length=18,
        nillable=False,
        updateable=False,
        required=True,
        reference_to=("User",),
    ),
    FieldDef(
        "PermissionSetId",
        "Permission Set ID",
        "reference",
        length=18,
        nillable=False,
        updateable=False,
        required=True,
        reference_to=("PermissionSet",),
    ),
)


def _custom(name: str, label: str, type_: str, **extra: Any) -> FieldDef:
    return FieldDef(name, label, type_, custom=True, **extra)


#: The Ambassador fields of CONTRACT.md (../shared/CONTRACT.md, Salesforce section), as a
#: deploy of the app's metadata creates them. Seeded by
#: :meth:`SalesforceEmulator.provision_ambassador_fields`; a metadata deploy builds its own.
AMBASSADOR_FIELDS: tuple[FieldDef, ...] = (
    _custom(
        "Ambassador_Id__c",
        "Ambassador Id",
        "string",
        length=64,
        external_id=True,
        unique=True,
        case_sensitive=False,
    ),
    _custom(
        "Ambassador_Status__c",
        "Ambassador Status",
        "picklist",
        length=255,
        picklist_values=("applied", "active", "paused", "removed"),
        restricted=True,
    ),
    _custom("Ambassador_Tier__c", "Ambassador Tier", "string", length=80),
    _custom("Ambassador_Code__c", "Ambassador Code", "string", length=64),
    _custom("Ambassador_Referral_URL__c", "Ambassador Referral URL", "url", length=255),
    _custom("Ambassador_Orders__c", "Ambassador Orders", "double", precision=18, scale=0),
    _custom("Ambassador_Revenue__c", "Ambassador Revenue", "currency", precision=16, scale=2),
    _custom(
        "Ambassador_Rewards_Earned__c",
        "Ambassador Rewards Earned",
        "currency",
        precision=16,
        scale=2,
    ),
    _custom(
        "Ambassador_Rewards_Paid__c", "Ambassador Rewards Paid", "currency", precision=16, scale=2
    ),
    _custom(
        "Ambassador_Engagement__c",
        "Ambassador Engagement",
        "picklist",
        length=255,
        picklist_values=("not engaged", "marginal", "engaged"),
        restricted=True,
    ),
    _custom(
        "Ambassador_Engagement_Score__c",
        "Ambassador Engagement Score",
        "double",
        precision=5,
        scale=1,
    ),
    _custom("Ambassador_Since__c", "Ambassador Since", "date"),
    _custom("Ambassador_Last_Referral__c", "Ambassador Last Referral", "date"),
)


def with_name(fd: FieldDef, name: str) -> FieldDef:
    return replace(fd, name=name)


# --- deserialisation ------------------------------------------------------------------------


def _parser_error(fd: FieldDef, value: Any) -> ApiError:
    kind = type(value).__name__
    token = {"str": "VALUE_STRING", "bool": "VALUE_TRUE", "dict": "START_OBJECT"}.get(
        kind, "START_ARRAY" if kind == "list" else "VALUE_NUMBER"
    )
    target = {"double": "double", "currency": "double", "percent": "double"}.get(fd.type, fd.type)
    return ApiError(
        400,
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {target} from {token} value {value} "
        "or request may be missing a required field",
    )


def from_json(fd: FieldDef, value: Any) -> Any:
    """A JSON value for ``fd`` as the emulator stores it; ApiError JSON_PARSER_ERROR for a value
    Salesforce's JSON reader refuses."""
    if value is None:
        return None
    if isinstance(value, dict | list):
        raise _parser_error(fd, value)
    if fd.type in NUMERIC_TYPES:
        if isinstance(value, bool):
            raise _parser_error(fd, value)
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise _parser_error(fd, value) from None
        if not number.is_finite():
            raise _parser_error(fd, value)
        return number
    if fd.type == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _parser_error(fd, value)
    if fd.type == "date":
        if isinstance(value, str) and _DATE.match(value) and _is_date(value):
            return value
        raise _parser_error(fd, value)
    if fd.type == "datetime":
        if isinstance(value, str) and _DATETIME.match(value):
            return _normalise_datetime(value)
        raise _parser_error(fd, value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def from_csv(fd: FieldDef, cell: str) -> Any:
    """A Bulk API CSV cell (already known not to be empty) for ``fd``; ``#N/A`` is null.
    RecordError INVALID_TYPE_ON_FIELD_IN_RECORD when the text does not convert."""
    if cell == "#N/A":
        return None
    try:
        if fd.type in NUMERIC_TYPES:
            number = Decimal(cell)
            if not number.is_finite():
                raise InvalidOperation
            return number
        if fd.type == "boolean":
            if cell.lower() not in ("true", "false", "1", "0"):
                raise ValueError(cell)
            return cell.lower() in ("true", "1")
        if fd.type == "date":
            if _DATE.match(cell) and _is_date(cell):
                return cell
            if _DATETIME.match(cell):  # Bulk accepts a dateTime for a date and keeps the day
                return cell[:10]
            raise ValueError(cell)
        if fd.type == "datetime":
            if not _DATETIME.match(cell):
                raise ValueError(cell)
            return _normalise_datetime(cell)
    except (InvalidOperation, ValueError):
        raise RecordError(
            "INVALID_TYPE_ON_FIELD_IN_RECORD",
            f"{fd.label}: value not of required type: {cell}",
            [fd.name],
        ) from None
    return cell


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _normalise_datetime(text: str) -> str:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return format_datetime(parsed)


def format_datetime(moment: datetime) -> str:
    """Salesforce's rendering: ``2026-11-22T08:45:40.000+0000`` (UTC)."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


# --- save validation ------------------------------------------------------------------------


def validate(fd: FieldDef, value: Any) -> Any:
    """The value as saved (numbers rounded to the field's scale), or RecordError."""
    if value is None:
        return None
    if fd.type in NUMERIC_TYPES:
        number: Decimal = value
        out_of_range = RecordError(
            "NUMBER_OUTSIDE_VALID_RANGE",
            f"{fd.label}: value outside of valid range on numeric field: {value}",
            [fd.name],
        )
        # Digits left of the point: Number(p, s) keeps at most p - s of them.
        integer_digits = number.adjusted() + 1 if abs(number) >= 1 else 0
        if fd.precision and integer_digits > fd.precision - fd.scale:
            raise out_of_range
        try:
            return number.quantize(Decimal(1).scaleb(-fd.scale), rounding=ROUND_HALF_UP)
        except InvalidOperation:
            raise out_of_range from None
    if fd.type == "picklist" and fd.restricted and value not in fd.picklist_values:
        raise RecordError(
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            f"{fd.label}: bad value for restricted picklist field: {value}",
            [fd.name],
        )
    if fd.type == "email" and not _EMAIL.match(value):
        raise RecordError(
            "INVALID_EMAIL_ADDRESS", f"{fd.label}: invalid email address: {value}", [fd.name]
        )
    if fd.type in TEXT_TYPES and fd.length and len(value) > fd.length:
        raise RecordError(
            "STRING_TOO_LONG",
            f"{fd.label}: data value too large: {value} (max length={fd.length})",
            [fd.name],
        )
    return value


def to_json_value(value: Any) -> Any:
    """A stored value as Salesforce's JSON renders it (numbers as JSON numbers)."""
    if isinstance(value, Decimal):
        return float(value)
    return value


def to_csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


@dataclass
class ObjectDef:
    """An sObject type: its key prefix, label and fields (ordered)."""

    name: str
    label: str
    label_plural: str
    key_prefix: str
    fields: dict[str, FieldDef] = field(default_factory=dict)
    custom: bool = False

    def field(self, name: str) -> FieldDef | None:
        """Field by name, case-insensitively as in SOQL and the REST API."""
        found = self.fields.get(name)
        if found is not None:
            return found
        lowered = name.lower()
        for candidate in self.fields.values():
            if candidate.name.lower() == lowered:
                return candidate
        return None
