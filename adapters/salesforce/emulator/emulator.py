"""``SalesforceEmulator``: one Salesforce org in memory, for ``ambassador demo`` and the tests.

The HTTP side is :func:`adapters.salesforce.emulator.app.create_emulator_app`; this class holds
the org (objects, records, permission sets, OAuth grants, API usage, Bulk jobs, deploys) and
the control methods tests and the demo use to seed data and inject faults. The module
docstring of the package lists the emulated surface.

Thread safety: one re-entrant lock guards all state; every public method and every HTTP request
takes it. Injected latency sleeps outside the lock.

Time: ``clock`` (epoch seconds) stamps records, tokens, jobs and deploys; inject it to make
tests deterministic.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import oauth, soql
from .errors import ApiError, RecordError, not_found
from .ids import PREFIX, IdFactory, is_valid_id, to18
from .oauth import OAuthError, OAuthState
from .schema import (
    AMBASSADOR_FIELDS,
    CONTACT_STANDARD_FIELDS,
    PERMISSION_SET_ASSIGNMENT_FIELDS,
    PERMISSION_SET_FIELDS,
    FieldDef,
    ObjectDef,
    format_datetime,
    from_json,
    to_json_value,
    validate,
)

#: API versions served: ``/services/data`` lists MIN..latest; others are 404 NOT_FOUND.
MIN_API_VERSION = 20
DEFAULT_LATEST_API_VERSION = "66.0"
#: The daily API pool is a rolling window of this many seconds.
API_WINDOW = 24 * 3600.0
#: sObject Collections (create/update/upsert) take at most this many records.
COLLECTION_LIMIT = 200
#: Salesforce's default query page (``Sforce-Query-Options: batchSize`` may ask 200..2000).
DEFAULT_QUERY_BATCH = 2000
DEFAULT_PERMISSION_SET = "Ambassador_Connector"

INVALID_SESSION = "Session expired or invalid"
LOCK_MESSAGE = "unable to obtain exclusive access to this record or 1 records: {id}"
ROLLED_BACK = (
    "Record rolled back because not all records were valid and the request was using "
    "AllOrNone header"
)


@dataclass
class User:
    id: str
    username: str
    first_name: str
    last_name: str
    email: str


@dataclass
class PermissionSet:
    id: str
    name: str
    label: str
    #: "Contact.Field__c" → (readable, editable)
    field_permissions: dict[str, tuple[bool, bool]] = field(default_factory=dict)


@dataclass
class ValidationRule:
    """A validation rule: rejects a record whose values (after the write) satisfy
    ``predicate`` with FIELD_CUSTOM_VALIDATION_EXCEPTION ``message``."""

    name: str
    predicate: Callable[[dict[str, Any]], bool]
    message: str
    field: str | None = None


#: How :meth:`SalesforceEmulator.lose_next_write_answers` loses an answer.
LOST_ANSWER_KINDS = ("reset", "5xx")


@dataclass
class CallFault:
    """The next ``remaining`` API calls fail with this request-level error."""

    remaining: int
    status: int
    error_code: str
    message: str
    fields: list[str] | None = None


@dataclass
class Session:
    """The authenticated caller of one REST request."""

    user_id: str
    version: str
    access_token: str


class SalesforceEmulator:
    """A local Salesforce org for one External Client App (``client_id``/``client_secret``),
    with one integration user.

    ``redirect_uris``: the app's registered callback URLs (exact match, as on Salesforce).
    ``daily_api_limit``: the rolling 24-hour API request pool (15,000: Developer Edition).
    ``auto_approve``: the authorize endpoint redirects back at once instead of showing the
    consent page. ``rotate_refresh_tokens``: each refresh token works once and the refresh
    answer carries a new one. ``bulk_delay`` / ``deploy_delay``: seconds before an uploaded
    Bulk job or a metadata deploy is processed (processing happens on the first status read
    after the delay; 0 = on the first read). ``ambassador_fields``: start with the Ambassador
    fields and their permission set already deployed and assigned (as after provisioning).
    ``session_timeout``: seconds of inactivity after which an access token stops working (the
    org's session timeout, 2 hours by default on Salesforce; None: never, by ``clock``).
    """

    def __init__(
        self,
        client_id: str = "emulator-salesforce-client-id",
        client_secret: str = "emulator-salesforce-client-secret",  # noqa: S107 (a local test org)
        redirect_uris: Iterable[str] = ("http://127.0.0.1:8000/salesforce/callback",),
        *,
        latest_api_version: str = DEFAULT_LATEST_API_VERSION,
        daily_api_limit: int = 15000,
        auto_approve: bool = False,
        rotate_refresh_tokens: bool = False,
        require_client_secret: bool = True,
        bulk_delay: float = 0.0,
        deploy_delay: float = 0.0,
        query_batch_size: int = DEFAULT_QUERY_BATCH,
        ambassador_fields: bool = False,
        session_timeout: float | None = None,
        username: str = "integration@acme.example",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uris = set(redirect_uris)
        self.latest_api_version = latest_api_version
        self.auto_approve = auto_approve
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.require_client_secret = require_client_secret
        self.bulk_delay = bulk_delay
        self.deploy_delay = deploy_delay
        self.query_batch_size = query_batch_size
        self.session_timeout = session_timeout
        self.base_url: str | None = None  # set by serve_in_thread
        self._clock = clock
        self._lock = threading.RLock()
        self._ids = IdFactory()
        self.org_id = self._ids.new("Organization")
        self.user = User(self._ids.new("User"), username, "Integration", "User", username)
        self.oauth = OAuthState()
        self._objects: dict[str, ObjectDef] = {
            "Contact": ObjectDef(
                "Contact",
                "Contact",
                "Contacts",
                PREFIX["Contact"],
                {f.name: f for f in CONTACT_STANDARD_FIELDS},
            ),
            "PermissionSet": ObjectDef(
                "PermissionSet",
                "Permission Set",
                "Permission Sets",
                PREFIX["PermissionSet"],
                {f.name: f for f in PERMISSION_SET_FIELDS},
            ),
            "PermissionSetAssignment": ObjectDef(
                "PermissionSetAssignment",
                "Permission Set Assignment",
                "Permission Set Assignments",
                PREFIX["PermissionSetAssignment"],
                {f.name: f for f in PERMISSION_SET_ASSIGNMENT_FIELDS},
            ),
        }
        self._contacts: dict[str, dict[str, Any]] = {}
        #: unique fields' index: field name → lower-cased value → record id
        self._unique: dict[str, dict[str, str]] = {}
        self._permission_sets: dict[str, PermissionSet] = {}
        self._assignments: dict[str, tuple[str, str]] = {}  # id → (assignee, permission set)
        self._query_cursors: dict[str, tuple[str, list[dict[str, Any]]]] = {}
        self._cursor_sizes: dict[str, int] = {}
        self.bulk_jobs: dict[str, Any] = {}
        self.deploys: dict[str, Any] = {}
        # API budget: a rolling 24-hour window, as Salesforce counts it
        self.daily_api_limit = daily_api_limit
        self._charges: deque[float] = deque()  # when each charged call was made
        self._usage_base = 0  # usage set by control, outside the window
        # faults
        self._down: tuple[int, str] | None = None
        self.latency = 0.0
        self._call_faults: list[CallFault] = []
        self._record_lock_failures = 0
        self._validation_rules: list[ValidationRule] = []
        self._lost_answers: list[str] = []  # how the next record writes' answers are lost
        # audit
        self._write_log: list[dict[str, Any]] = []
        self._api_calls: list[dict[str, Any]] = []
        self._token_requests: list[dict[str, Any]] = []
        if ambassador_fields:
            self.provision_ambassador_fields()

    # --- time and ids ----------------------------------------------------------------------

    def now(self) -> float:
        return self._clock()

    def timestamp(self) -> str:
        return format_datetime(datetime.fromtimestamp(self._clock(), UTC))

    def new_id(self, sobject: str) -> str:
        return self._ids.new(sobject)

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    @property
    def instance_url(self) -> str:
        if not self.base_url:
            raise RuntimeError("the emulator is not served yet (serve_in_thread sets base_url)")
        return self.base_url

    def identity_url(self) -> str:
        return f"{self.instance_url}/id/{self.org_id}/{self.user.id}"

    # --- versions ----------------------------------------------------------------------------

    def versions(self) -> list[dict[str, str]]:
        """``GET /services/data``: every version from 20.0 to the latest, with release names
        (v20 = Winter '11, then Spring, Summer, Winter of the next year, ...)."""
        latest = int(float(self.latest_api_version))
        answer = []
        for number in range(MIN_API_VERSION, latest + 1):
            step = number - MIN_API_VERSION
            season = ("Winter", "Spring", "Summer")[step % 3]
            year = 11 + step // 3
            answer.append(
                {
                    "version": f"{number}.0",
                    "url": f"/services/data/v{number}.0",
                    "label": f"{season} '{year:02d}",
                }
            )
        return answer

    def check_version(self, version: str) -> str:
        """``vNN.N`` from a URL → ``NN.N``; ApiError 404 NOT_FOUND if not served."""
        if not version.startswith("v"):
            raise not_found()
        try:
            number = float(version[1:])
        except ValueError:
            raise not_found() from None
        if not number.is_integer() or not (
            MIN_API_VERSION <= number <= float(self.latest_api_version)
        ):
            raise not_found()
        return f"{int(number)}.0"

    # --- OAuth -----------------------------------------------------------------------------

    def check_authorize(self, params: Mapping[str, str]) -> tuple[str, str] | None:
        """None when the authorize request may show the consent page; else ``(error,
        description)`` for Salesforce's own error page (the app is not redirected to)."""
        if params.get("client_id") != self.client_id:
            return "invalid_client_id", "client identifier invalid"
        if params.get("redirect_uri") not in self.redirect_uris:
            return "redirect_uri_mismatch", "redirect_uri must match configuration"
        return None

    def approve(self, params: Mapping[str, str]) -> dict[str, str]:
        """The user approved: the query to send back to ``redirect_uri`` (``code``, ``state``,
        or ``error`` for a bad ``response_type``)."""
        answer: dict[str, str] = {}
        with self._lock:
            if params.get("response_type") != "code":
                answer = {
                    "error": "unsupported_response_type",
                    "error_description": "response type not supported",
                }
            else:
                answer = {
                    "code": oauth.issue_code(
                        self.oauth,
                        client_id=params["client_id"],
                        redirect_uri=params["redirect_uri"],
                        code_challenge=params.get("code_challenge") or None,
                        scope=oauth.granted_scope(params.get("scope")),
                        user_id=self.user.id,
                        now=self.now(),
                    )
                }
        if params.get("state") is not None:
            answer["state"] = params["state"]
        return answer

    def deny(self, params: Mapping[str, str]) -> dict[str, str]:
        answer = {"error": "access_denied", "error_description": "end-user denied authorization"}
        if params.get("state") is not None:
            answer["state"] = params["state"]
        return answer

    def token_endpoint(
        self, form: Mapping[str, str], authorization: str | None
    ) -> tuple[int, dict[str, Any]]:
        """``POST /services/oauth2/token``: ``(status, JSON body)``."""
        grant = form.get("grant_type", "")
        with self._lock:
            try:
                answer = self._token(grant, form, authorization)
            except OAuthError as error:
                self._token_requests.append(
                    {"grant_type": grant, "status": error.status, "error": error.error}
                )
                return error.status, error.body()
            self._token_requests.append({"grant_type": grant, "status": 200, "error": None})
            return 200, answer

    def _token(
        self, grant: str, form: Mapping[str, str], authorization: str | None
    ) -> dict[str, Any]:
        if grant not in ("authorization_code", "refresh_token"):
            raise OAuthError("unsupported_grant_type", "grant type not supported")
        client_id, secret = oauth.client_credentials(form, authorization)
        if client_id != self.client_id:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        if (secret is not None or self.require_client_secret) and secret != self.client_secret:
            raise OAuthError("invalid_client", "invalid client credentials")
        if grant == "authorization_code":
            code = oauth.redeem_code(self.oauth, form, client_id, self.now())
            refresh = oauth.RefreshToken(
                oauth.new_token("5Aep861"), client_id, code.user_id, code.scope
            )
            if "refresh_token" in code.scope.split():
                self.oauth.refresh_tokens[refresh.token] = refresh
                return self._token_answer(refresh.scope, code.user_id, refresh.token, True)
            return self._token_answer(code.scope, code.user_id, None, False)
        presented = self.oauth.refresh_tokens.get(form.get("refresh_token", ""))
        if presented is None or not presented.active or presented.client_id != client_id:
            raise OAuthError("invalid_grant", "expired access/refresh token")
        if self.rotate_refresh_tokens:
            presented.active = False
            presented.ended = "rotated"
            for token in self.oauth.access_tokens.values():
                if token.refresh_token == presented.token:
                    token.refresh_token = None
            successor = oauth.RefreshToken(
                oauth.new_token("5Aep861"), client_id, presented.user_id, presented.scope
            )
            self.oauth.refresh_tokens[successor.token] = successor
            return self._token_answer(successor.scope, successor.user_id, successor.token, True)
        return self._token_answer(presented.scope, presented.user_id, presented.token, False)

    def _token_answer(
        self, scope: str, user_id: str, refresh_token: str | None, include_refresh: bool
    ) -> dict[str, Any]:
        now = self.now()
        access = oauth.AccessToken(
            f"{self.org_id[:15]}!{oauth.new_token('AQ', 72)}",
            self.client_id,
            user_id,
            scope,
            now,
            refresh_token,
        )
        self.oauth.access_tokens[access.token] = access
        issued_at = str(int(now * 1000))
        identity = f"{self.instance_url}/id/{self.org_id}/{user_id}"
        answer: dict[str, Any] = {"access_token": access.token}
        if include_refresh and refresh_token is not None:
            answer["refresh_token"] = refresh_token
        answer.update(
            {
                "signature": oauth.token_signature(self.client_secret, identity, issued_at),
                "scope": scope,
                "instance_url": self.instance_url,
                "id": identity,
                "token_type": "Bearer",
                "issued_at": issued_at,
            }
        )
        return answer

    def revoke(self, token: str) -> bool:
        """``POST /services/oauth2/revoke``: a refresh token ends with every access token it
        issued; an access token ends alone. False when the token is unknown."""
        with self._lock:
            refresh = self.oauth.refresh_tokens.get(token)
            if refresh is not None:
                self._end_refresh_token(refresh, "revoked")
                return True
            access = self.oauth.access_tokens.get(token)
            if access is not None:
                access.active = False
                return True
            return False

    def _end_refresh_token(self, refresh: oauth.RefreshToken, reason: str) -> None:
        refresh.active = False
        refresh.ended = reason
        for access in self.oauth.access_tokens.values():
            if access.refresh_token == refresh.token:
                access.active = False

    def authenticate(self, header: str | None, version: str) -> Session:
        """The session of a ``Authorization: Bearer <token>`` (or ``OAuth <token>``) header;
        ApiError 401 INVALID_SESSION_ID (with ``WWW-Authenticate: Token``) otherwise."""
        token = ""
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() in ("bearer", "oauth"):
                token = value.strip()
        with self._lock:
            access = self.oauth.access_tokens.get(token)
            now = self.now()
            if (
                access is not None
                and self.session_timeout is not None
                and now - max(access.issued_at, access.last_used) > self.session_timeout
            ):
                access.active = False  # idle longer than the org's session timeout
            if access is None or not access.active:
                raise ApiError(
                    401,
                    "INVALID_SESSION_ID",
                    INVALID_SESSION,
                    headers={"WWW-Authenticate": "Token"},
                )
            access.last_used = now
            return Session(access.user_id, version, token)

    def identity(self, header: str | None, token_param: str | None) -> dict[str, Any] | None:
        """The identity URL's answer for a valid access token, else None (HTTP 403)."""
        token = token_param or ""
        if header and header.lower().startswith(("bearer ", "oauth ")):
            token = header.split(" ", 1)[1].strip()
        with self._lock:
            access = self.oauth.access_tokens.get(token)
            if access is None or not access.active:
                return None
            base = self.instance_url
            version = self.latest_api_version
            urls = {
                name: f"{base}/services/data/v{version}/{path}"
                for name, path in (
                    ("rest", ""),
                    ("sobjects", "sobjects/"),
                    ("search", "search/"),
                    ("query", "query/"),
                    ("recent", "recent/"),
                )
            }
            urls.update(
                {
                    "enterprise": f"{base}/services/Soap/c/{version}/{self.org_id[:15]}",
                    "metadata": f"{base}/services/Soap/m/{version}/{self.org_id[:15]}",
                    "partner": f"{base}/services/Soap/u/{version}/{self.org_id[:15]}",
                    "profile": f"{base}/{self.user.id}",
                    "custom_domain": base,
                }
            )
            return {
                "id": self.identity_url(),
                "asserted_user": True,
                "user_id": self.user.id,
                "organization_id": self.org_id,
                "username": self.user.username,
                "nick_name": self.user.username.split("@")[0],
                "display_name": f"{self.user.first_name} {self.user.last_name}",
                "email": self.user.email,
                "email_verified": True,
                "first_name": self.user.first_name,
                "last_name": self.user.last_name,
                "active": True,
                "user_type": "STANDARD",
                "language": "en_US",
                "locale": "en_US",
                "utcOffset": 0,
                "urls": urls,
                "is_app_installed": True,
            }

    # --- API budget and request-level faults -------------------------------------------------

    @property
    def api_usage(self) -> int:
        """Calls charged in the last 24 hours (by ``clock``), plus any usage set by
        :meth:`set_api_usage`, which stays until changed."""
        with self._lock:
            horizon = self.now() - API_WINDOW
            while self._charges and self._charges[0] <= horizon:
                self._charges.popleft()
            return self._usage_base + len(self._charges)

    def charge_api_call(self) -> None:
        """Charge one call to the daily pool; ApiError 403 REQUEST_LIMIT_EXCEEDED (nothing
        charged) when the pool is spent."""
        with self._lock:
            if self.api_usage >= self.daily_api_limit:
                raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            self._charges.append(self.now())

    def apply_call_fault(self) -> None:
        """Raise the next injected call fault (see :meth:`fail_next_calls`), if any."""
        with self._lock:
            if not self._call_faults:
                return
            fault = self._call_faults[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._call_faults.pop(0)
            raise ApiError(fault.status, fault.error_code, fault.message, fault.fields)

    def limit_info(self) -> str:
        with self._lock:
            return f"api-usage={self.api_usage}/{self.daily_api_limit}"

    def down_response(self) -> tuple[int, str] | None:
        with self._lock:
            return self._down

    def record_call(self, method: str, path: str, status: int, counted: bool) -> None:
        with self._lock:
            self._api_calls.append(
                {
                    "seq": len(self._api_calls) + 1,
                    "method": method,
                    "path": path,
                    "status": status,
                    "counted": counted,
                    "at": self.now(),
                }
            )

    def limits(self) -> dict[str, Any]:
        """``GET limits`` (the shape of the recorded answer; only DailyApiRequests moves)."""
        with self._lock:
            remaining = max(0, self.daily_api_limit - self.api_usage)
            return {
                "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
                "ConcurrentSyncReportRuns": {"Max": 20, "Remaining": 20},
                "DailyApiRequests": {"Max": self.daily_api_limit, "Remaining": remaining},
                "DailyAsyncApexExecutions": {"Max": 250000, "Remaining": 250000},
                "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
                "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
                "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
                "DataStorageMB": {"Max": 5, "Remaining": 5},
                "FileStorageMB": {"Max": 20, "Remaining": 20},
                "HourlyODataCallout": {"Max": 10000, "Remaining": 10000},
                "SingleEmail": {"Max": 15, "Remaining": 15},
            }

    # --- objects, field-level security, describe ------------------------------------------

    def object_def(self, name: str) -> ObjectDef:
        """The object by API name (case-insensitive); ApiError 404 NOT_FOUND otherwise."""
        for candidate, obj in self._objects.items():
            if candidate.lower() == name.lower():
                return obj
        raise not_found()

    def field_access(self, user_id: str, obj: ObjectDef, fd: FieldDef) -> tuple[bool, bool]:
        """``(readable, editable)`` for the user: standard fields by their definition, custom
        fields only through an assigned permission set (as fields created by the Metadata API
        are invisible until a permission set grants them)."""
        if not fd.custom:
            return True, fd.createable or fd.updateable
        readable = editable = False
        key = f"{obj.name}.{fd.name}"
        for assignee, ps_id in self._assignments.values():
            if assignee != user_id:
                continue
            ps = self._permission_sets.get(ps_id)
            if ps is None:
                continue
            read, edit = ps.field_permissions.get(key, (False, False))
            readable = readable or read or edit
            editable = editable or edit
        return readable, editable

    def describe(self, session: Session, name: str) -> dict[str, Any]:
        """``sobjects/{name}/describe``: the fields the user can read; ``createable`` /
        ``updateable`` false where the user may only read."""
        with self._lock:
            obj = self.object_def(name)
            fields = []
            for fd in obj.fields.values():
                readable, editable = self.field_access(session.user_id, obj, fd)
                if not readable:
                    continue
                fields.append(
                    fd.describe(
                        createable=fd.createable and editable,
                        updateable=fd.updateable and editable,
                    )
                )
            answer = self._object_summary(obj, session.version)
            answer.update(
                {
                    "childRelationships": [],
                    "fields": fields,
                    "recordTypeInfos": [],
                }
            )
            return dict(sorted(answer.items()))

    def _object_summary(self, obj: ObjectDef, version: str) -> dict[str, Any]:
        base = f"/services/data/v{version}/sobjects/{obj.name}"
        writable = obj.name != "PermissionSet"
        return {
            "activateable": False,
            "createable": writable,
            "custom": obj.custom,
            "customSetting": False,
            "deletable": writable,
            "deprecatedAndHidden": False,
            "feedEnabled": obj.name == "Contact",
            "keyPrefix": obj.key_prefix,
            "label": obj.label,
            "labelPlural": obj.label_plural,
            "layoutable": obj.name == "Contact",
            "mergeable": obj.name == "Contact",
            "name": obj.name,
            "queryable": True,
            "replicateable": True,
            "retrieveable": True,
            "searchable": obj.name == "Contact",
            "triggerable": True,
            "undeletable": obj.name == "Contact",
            "updateable": writable,
            "urls": {
                "sobject": base,
                "describe": f"{base}/describe",
                "rowTemplate": f"{base}/{{ID}}",
            },
        }

    def describe_global(self, session: Session) -> dict[str, Any]:
        with self._lock:
            return {
                "encoding": "UTF-8",
                "maxBatchSize": COLLECTION_LIMIT,
                "sobjects": [
                    self._object_summary(obj, session.version) for obj in self._objects.values()
                ],
            }

    def sobject_info(self, session: Session, name: str) -> dict[str, Any]:
        """``GET sobjects/{name}``: basic information and recently viewed items (none)."""
        with self._lock:
            obj = self.object_def(name)
            return {
                "objectDescribe": self._object_summary(obj, session.version),
                "recentItems": [],
            }

    # --- query -------------------------------------------------------------------------------

    def _rows(self, obj: ObjectDef) -> list[dict[str, Any]]:
        if obj.name == "Contact":
            return list(self._contacts.values())
        if obj.name == "PermissionSet":
            return [
                {"Id": ps.id, "Name": ps.name, "Label": ps.label}
                for ps in self._permission_sets.values()
            ]
        return [
            {"Id": psa_id, "AssigneeId": assignee, "PermissionSetId": ps_id}
            for psa_id, (assignee, ps_id) in self._assignments.items()
        ]

    def query(self, session: Session, text: str, batch_size: int | None = None) -> dict[str, Any]:
        """``GET query?q=``: the first page; more pages through ``nextRecordsUrl``."""
        parsed = soql.parse(text)
        with self._lock:
            try:
                obj = self.object_def(parsed.object)
            except ApiError:
                raise soql.unsupported_object(parsed) from None

            def visible(fd: FieldDef) -> bool:
                return self.field_access(session.user_id, obj, fd)[0]

            fields = soql.bind(parsed, obj, visible)
            predicate = soql.compile_where(parsed.where, fields)
            rows = [r for r in self._rows(obj) if predicate(r)]
            rows = soql.sort_records(rows, parsed.order, fields)
            rows = rows[parsed.offset :]
            if parsed.limit is not None:
                rows = rows[: parsed.limit]
            if parsed.count:
                return {"totalSize": len(rows), "done": True, "records": []}
            selected = [fields[ref.name] for ref in parsed.fields]
            records = [self._project(obj, row, selected, session.version) for row in rows]
            size = batch_size or self.query_batch_size
            return self._page(session.version, None, records, 0, size)

    def query_more(self, session: Session, locator: str) -> dict[str, Any]:
        """``GET query/{locator}-{offset}``; ApiError INVALID_QUERY_LOCATOR when unknown."""
        cursor_id, _, offset = locator.rpartition("-")
        with self._lock:
            cursor = self._query_cursors.get(cursor_id)
            if cursor is None or not offset.isdigit():
                raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            _, records = cursor
            return self._page(session.version, cursor_id, records, int(offset), None)

    def _page(
        self,
        version: str,
        cursor_id: str | None,
        records: list[dict[str, Any]],
        offset: int,
        size: int | None,
    ) -> dict[str, Any]:
        if size is None:
            size = self._cursor_sizes.get(cursor_id or "", self.query_batch_size)
        page = records[offset : offset + size]
        answer: dict[str, Any] = {"totalSize": len(records), "done": offset + size >= len(records)}
        if not answer["done"]:
            if cursor_id is None:
                cursor_id = self.new_id("QueryLocator")
                self._query_cursors[cursor_id] = (version, records)
                self._cursor_sizes[cursor_id] = size
            answer["nextRecordsUrl"] = (
                f"/services/data/v{version}/query/{cursor_id}-{offset + size}"
            )
        answer["records"] = page
        return answer

    def _project(
        self, obj: ObjectDef, row: dict[str, Any], fields: Sequence[FieldDef], version: str
    ) -> dict[str, Any]:
        record: dict[str, Any] = {
            "attributes": {
                "type": obj.name,
                "url": f"/services/data/v{version}/sobjects/{obj.name}/{row['Id']}",
            }
        }
        for fd in fields:
            record[fd.name] = to_json_value(row.get(fd.name))
        return record

    # --- records: reading ----------------------------------------------------------------------

    def get_record(
        self, session: Session, name: str, record_id: str, fields: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """``GET sobjects/{name}/{id}[?fields=a,b]``."""
        with self._lock:
            obj = self.object_def(name)
            row = self._find_row(obj, record_id)
            wanted: list[FieldDef] = []
            for fd in obj.fields.values():
                if self.field_access(session.user_id, obj, fd)[0]:
                    wanted.append(fd)
            if fields:
                chosen = []
                for requested in fields:
                    found = obj.field(requested)
                    if found is None or found not in wanted:
                        raise ApiError(
                            400,
                            "INVALID_FIELD",
                            f"No such column '{requested}' on sobject of type {obj.name}",
                        )
                    chosen.append(found)
                wanted = chosen
            return self._project(obj, row, wanted, session.version)

    def _find_row(self, obj: ObjectDef, record_id: str) -> dict[str, Any]:
        if not is_valid_id(record_id):
            raise not_found(
                f"Provided external ID field does not exist or is not accessible: {record_id}"
            )
        full = to18(record_id)
        for row in self._rows(obj):
            if row["Id"] == full:
                return row
        raise not_found()

    # --- records: writing ---------------------------------------------------------------------

    def _deserialize(
        self, session: Session, obj: ObjectDef, body: Mapping[str, Any], *, skip: Iterable[str] = ()
    ) -> dict[str, Any]:
        """JSON field values → stored values keyed by canonical name. ApiError 400 for a field
        the user cannot see (INVALID_FIELD) or a value of the wrong JSON kind."""
        skipped = {s.lower() for s in skip}
        values: dict[str, Any] = {}
        for key, raw in body.items():
            if key == "attributes" or key.lower() in skipped:
                continue
            fd = obj.field(key)
            if fd is None or not self.field_access(session.user_id, obj, fd)[0]:
                raise ApiError(
                    400, "INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}"
                )
            values[fd.name] = from_json(fd, raw)
        return values

    def _check_writable(
        self, session: Session, obj: ObjectDef, values: Mapping[str, Any], creating: bool
    ) -> None:
        denied = []
        for name in values:
            fd = obj.fields[name]
            own = fd.createable if creating else fd.updateable
            if name == "Id" and not creating:
                continue
            if not own or not self.field_access(session.user_id, obj, fd)[1]:
                denied.append(name)
        if denied:
            raise RecordError(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(denied)}. Please check the security "
                "settings of this field and verify that it is read/write for your profile or "
                "permission set.",
                denied,
            )

    def save_contact(
        self,
        txn: ContactTxn,
        session: Session,
        values: Mapping[str, Any],
        existing_id: str | None,
        *,
        as_admin: bool = False,
    ) -> tuple[str, bool]:
        """Validate and stage one Contact create (``existing_id`` None) or update; returns
        ``(id, created)`` or raises RecordError. Nothing is visible until ``txn.commit()``.
        ``as_admin`` (seeding) skips field-level security, validation rules and lock faults."""
        obj = self._objects["Contact"]
        creating = existing_id is None
        if self._record_lock_failures > 0 and not as_admin:
            self._record_lock_failures -= 1
            raise RecordError(
                "UNABLE_TO_LOCK_ROW",
                LOCK_MESSAGE.format(id=existing_id)
                if existing_id
                else "unable to obtain exclusive access to this record",
            )
        if not as_admin:
            self._check_writable(session, obj, values, creating)
        saved = {name: validate(obj.fields[name], value) for name, value in values.items()}
        before = txn.get(existing_id) if existing_id else None
        record: dict[str, Any] = dict(before or {})
        record.update(saved)
        if record.get("LastName") in (None, ""):
            raise RecordError(
                "REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]", ["LastName"]
            )
        record_id = existing_id or self.new_id("Contact")
        for fd in obj.fields.values():
            if fd.unique and record.get(fd.name) is not None:
                holder = txn.unique_holder(fd.name, str(record[fd.name]))
                if holder is not None and holder != record_id:
                    raise RecordError(
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {fd.name} duplicates value on record with id: "
                        f"{holder}",
                    )
        for rule in [] if as_admin else self._validation_rules:
            if rule.predicate(dict(record)):
                raise RecordError(
                    "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                    rule.message,
                    [rule.field] if rule.field else [],
                )
        stamp = self.timestamp()
        if creating:
            record.update(
                {
                    "Id": record_id,
                    "IsDeleted": False,
                    "OwnerId": self.user.id,
                    "CreatedDate": stamp,
                    "CreatedById": session.user_id,
                }
            )
        record["Name"] = " ".join(
            part for part in (record.get("FirstName"), record.get("LastName")) if part
        )
        record.update(
            {
                "LastModifiedDate": stamp,
                "LastModifiedById": session.user_id,
                "SystemModstamp": stamp,
            }
        )
        changed = sorted(
            k for k, v in saved.items() if (before or {}).get(k, None) != v or creating
        )
        txn.put(record_id, record, before)
        txn.log.append(
            {
                "operation": "create" if creating else "update",
                "sobject": "Contact",
                "id": record_id,
                "external_id": record.get("Ambassador_Id__c"),
                "fields": {k: to_json_value(v) for k, v in saved.items()},
                "changed": changed,
            }
        )
        return record_id, creating

    def begin(self, api: str) -> ContactTxn:
        """A staging area for a batch of Contact writes (call under ``lock``)."""
        unique_fields = [fd.name for fd in self._objects["Contact"].fields.values() if fd.unique]
        return ContactTxn(self, api, unique_fields)

    def _commit(self, txn: ContactTxn) -> None:
        for record_id, (record, before) in txn.staged.items():
            for name in txn.unique_fields:
                index = self._unique.setdefault(name, {})
                old = (before or {}).get(name)
                if old is not None and index.get(str(old).lower()) == record_id:
                    del index[str(old).lower()]
                new = record.get(name)
                if new is not None:
                    index[str(new).lower()] = record_id
            self._contacts[record_id] = record
        stamp = self.now()
        for entry in txn.log:
            if entry["id"] in txn.staged:
                self._write_log.append(
                    {"seq": len(self._write_log) + 1, "at": stamp, "api": txn.api, **entry}
                )

    def _index_holder(self, name: str, value: str) -> str | None:
        return self._unique.get(name, {}).get(value.lower())

    # single-record REST

    def create_record(self, session: Session, name: str, body: Any) -> tuple[int, dict[str, Any]]:
        """``POST sobjects/{name}`` (Contact or PermissionSetAssignment): 201 SaveResult."""
        if not isinstance(body, dict):
            raise _malformed_json()
        with self._lock:
            obj = self.object_def(name)
            if obj.name == "PermissionSetAssignment":
                return 201, self._assign_from_api(session, body)
            if obj.name != "Contact":
                raise ApiError(
                    400,
                    "INSUFFICIENT_ACCESS_OR_READONLY",
                    "insufficient access rights on object id",
                )
            values = self._deserialize(session, obj, body)
            txn = self.begin("rest.sobject.create")
            try:
                record_id, _ = self.save_contact(txn, session, values, None)
            except RecordError as error:
                raise ApiError(400, error.status_code, error.message, error.fields) from None
            txn.commit()
            return 201, {"id": record_id, "success": True, "errors": []}

    def update_record(self, session: Session, name: str, record_id: str, body: Any) -> None:
        """``PATCH sobjects/{name}/{id}``: 204 on success."""
        if not isinstance(body, dict):
            raise _malformed_json()
        with self._lock:
            obj = self.object_def(name)
            if obj.name != "Contact":
                raise ApiError(
                    400,
                    "INSUFFICIENT_ACCESS_OR_READONLY",
                    "insufficient access rights on object id",
                )
            if not is_valid_id(record_id, PREFIX["Contact"]):
                raise ApiError(
                    400,
                    "MALFORMED_ID",
                    f"Contact ID: id value of incorrect type: {record_id}",
                    ["Id"],
                )
            full = to18(record_id)
            if full not in self._contacts:
                raise not_found()
            values = self._deserialize(session, obj, body, skip=("Id",))
            txn = self.begin("rest.sobject.update")
            try:
                self.save_contact(txn, session, values, full)
            except RecordError as error:
                raise ApiError(400, error.status_code, error.message, error.fields) from None
            txn.commit()

    def upsert_record(
        self, session: Session, name: str, field_name: str, value: str, body: Any
    ) -> tuple[int, dict[str, Any]]:
        """``PATCH sobjects/{name}/{externalIdField}/{value}``: 201 created / 200 updated."""
        if not isinstance(body, dict):
            raise _malformed_json()
        with self._lock:
            obj = self.object_def(name)
            ext = self._external_id_field(session, obj, field_name)
            values = self._deserialize(session, obj, body, skip=(ext.name,))
            values[ext.name] = value
            txn = self.begin("rest.sobject.upsert")
            existing = txn.unique_holder(ext.name, value)
            try:
                record_id, created = self.save_contact(txn, session, values, existing)
            except RecordError as error:
                raise ApiError(400, error.status_code, error.message, error.fields) from None
            txn.commit()
            return (201 if created else 200), {
                "id": record_id,
                "success": True,
                "errors": [],
                "created": created,
            }

    def delete_record(self, session: Session, name: str, record_id: str) -> None:
        """``DELETE sobjects/{name}/{id}`` (Contact, PermissionSetAssignment): 204."""
        with self._lock:
            obj = self.object_def(name)
            if not is_valid_id(record_id):
                raise ApiError(
                    400,
                    "MALFORMED_ID",
                    f"{obj.label} ID: id value of incorrect type: {record_id}",
                    ["Id"],
                )
            full = to18(record_id)
            if obj.name == "PermissionSetAssignment" and full in self._assignments:
                del self._assignments[full]
                return
            if obj.name == "Contact" and full in self._contacts:
                record = self._contacts.pop(full)
                for name_, index in self._unique.items():
                    value = record.get(name_)
                    if value is not None and index.get(str(value).lower()) == full:
                        del index[str(value).lower()]
                self._write_log.append(
                    {
                        "seq": len(self._write_log) + 1,
                        "at": self.now(),
                        "api": "rest.sobject.delete",
                        "operation": "delete",
                        "sobject": "Contact",
                        "id": full,
                        "external_id": record.get("Ambassador_Id__c"),
                        "fields": {},
                        "changed": [],
                    }
                )
                return
            raise not_found("entity is deleted")

    def _external_id_field(self, session: Session, obj: ObjectDef, field_name: str) -> FieldDef:
        fd = obj.field(field_name)
        if (
            obj.name != "Contact"
            or fd is None
            or not (fd.external_id or fd.type == "id")
            or not self.field_access(session.user_id, obj, fd)[0]
        ):
            raise not_found(
                f"Provided external ID field does not exist or is not accessible: {field_name}"
            )
        return fd

    # sObject Collections

    def collection_upsert(
        self, session: Session, name: str, field_name: str, body: Any
    ) -> list[dict[str, Any]]:
        """``PATCH composite/sobjects/{name}/{externalIdField}``: one UpsertResult per record,
        in order. Request-level errors (400) for more than 200 records, a record without
        ``attributes.type`` or of another type, a field the user cannot see, a JSON value of
        the wrong kind."""
        records, all_or_none = _collection_body(body)
        with self._lock:
            obj = self.object_def(name)
            ext = self._external_id_field(session, obj, field_name)
            prepared = self._prepare_collection(session, obj, records)
            txn = self.begin("rest.collections.upsert")
            seen: dict[str, int] = {}
            for values in prepared:
                key = values.get(ext.name)
                if key is not None:
                    seen[str(key).lower()] = seen.get(str(key).lower(), 0) + 1
            results: list[dict[str, Any]] = []
            for values in prepared:
                key = values.get(ext.name)
                try:
                    if key is None:
                        raise RecordError("MISSING_ARGUMENT", f"{ext.name} not specified")
                    if seen[str(key).lower()] > 1:
                        # Salesforce fails every record of the call that repeats an external id
                        # (Bulk results read "DUPLICATE_VALUE:Duplicate external id specified").
                        raise RecordError(
                            "DUPLICATE_VALUE",
                            f"Duplicate external id specified: {key}",
                            [ext.name],
                        )
                    existing = txn.unique_holder(ext.name, str(key))
                    record_id, created = self.save_contact(txn, session, values, existing)
                    results.append(
                        {"id": record_id, "success": True, "errors": [], "created": created}
                    )
                except RecordError as error:
                    results.append({"success": False, "errors": [error.as_json()]})
            return self._finish_collection(txn, results, all_or_none)

    def collection_update(self, session: Session, body: Any) -> list[dict[str, Any]]:
        """``PATCH composite/sobjects``: update Contacts by ``id`` (SaveResults, in order)."""
        records, all_or_none = _collection_body(body)
        with self._lock:
            obj = self._objects["Contact"]
            ids = [r.get("id", r.get("Id")) for r in records]
            prepared = self._prepare_collection(session, obj, records, skip=("id",))
            txn = self.begin("rest.collections.update")
            results: list[dict[str, Any]] = []
            for record_id, values in zip(ids, prepared, strict=True):
                try:
                    if not record_id:
                        raise RecordError("MISSING_ARGUMENT", "Id not specified in an update call")
                    if not is_valid_id(str(record_id), PREFIX["Contact"]):
                        raise RecordError(
                            "MALFORMED_ID",
                            f"Contact ID: id value of incorrect type: {record_id}",
                            ["Id"],
                        )
                    full = to18(str(record_id))
                    if txn.get(full) is None:
                        raise RecordError("ENTITY_IS_DELETED", "entity is deleted", [])
                    self.save_contact(txn, session, values, full)
                    results.append({"id": full, "success": True, "errors": []})
                except RecordError as error:
                    results.append({"success": False, "errors": [error.as_json()]})
            return self._finish_collection(txn, results, all_or_none)

    def collection_create(self, session: Session, body: Any) -> list[dict[str, Any]]:
        """``POST composite/sobjects``: create Contacts (SaveResults, in order)."""
        records, all_or_none = _collection_body(body)
        with self._lock:
            obj = self._objects["Contact"]
            prepared = self._prepare_collection(session, obj, records)
            txn = self.begin("rest.collections.create")
            results: list[dict[str, Any]] = []
            for values in prepared:
                try:
                    record_id, _ = self.save_contact(txn, session, values, None)
                    results.append({"id": record_id, "success": True, "errors": []})
                except RecordError as error:
                    results.append({"success": False, "errors": [error.as_json()]})
            return self._finish_collection(txn, results, all_or_none)

    def _prepare_collection(
        self,
        session: Session,
        obj: ObjectDef,
        records: list[dict[str, Any]],
        skip: Iterable[str] = (),
    ) -> list[dict[str, Any]]:
        prepared = []
        for record in records:
            attributes = record.get("attributes")
            kind = attributes.get("type") if isinstance(attributes, dict) else None
            if not kind:
                raise ApiError(
                    400,
                    "INVALID_FIELD",
                    "No type available in attributes dictionary for the sObject",
                )
            if str(kind).lower() != obj.name.lower():
                raise ApiError(
                    400,
                    "INVALID_TYPE",
                    f"This operation can only be performed on sObjects of type {obj.name}",
                )
            prepared.append(self._deserialize(session, obj, record, skip=skip))
        return prepared

    def _finish_collection(
        self, txn: ContactTxn, results: list[dict[str, Any]], all_or_none: bool
    ) -> list[dict[str, Any]]:
        if all_or_none and any(not r["success"] for r in results):
            rolled_back = {
                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "message": ROLLED_BACK,
                "fields": [],
            }
            return [
                r if not r["success"] else {"success": False, "errors": [dict(rolled_back)]}
                for r in results
            ]
        txn.commit()
        return results

    # permission sets

    def _assign_from_api(self, session: Session, body: Mapping[str, Any]) -> dict[str, Any]:
        assignee = str(body.get("AssigneeId") or "")
        ps_id = str(body.get("PermissionSetId") or "")
        unknown = [k for k in body if k not in ("attributes", "AssigneeId", "PermissionSetId")]
        if unknown:
            raise ApiError(
                400,
                "INVALID_FIELD",
                f"No such column '{unknown[0]}' on sobject of type PermissionSetAssignment",
            )
        missing = [k for k, v in (("AssigneeId", assignee), ("PermissionSetId", ps_id)) if not v]
        if missing:
            raise ApiError(
                400,
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                missing,
            )
        if not is_valid_id(assignee, PREFIX["User"]) or to18(assignee) != self.user.id:
            raise ApiError(
                400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["AssigneeId"]
            )
        if not is_valid_id(ps_id, PREFIX["PermissionSet"]) or to18(ps_id) not in (
            self._permission_sets
        ):
            raise ApiError(
                400,
                "INVALID_CROSS_REFERENCE_KEY",
                "invalid cross reference id",
                ["PermissionSetId"],
            )
        pair = (to18(assignee), to18(ps_id))
        if pair in self._assignments.values():
            raise ApiError(
                400,
                "DUPLICATE_VALUE",
                "duplicate value found: <unknown> duplicates value on record with id: <unknown>",
                [],
            )
        psa_id = self.new_id("PermissionSetAssignment")
        self._assignments[psa_id] = pair
        return {"id": psa_id, "success": True, "errors": []}

    # --- control: seeding and inspection ----------------------------------------------------

    def add_contact(self, **values: Any) -> dict[str, Any]:
        """Seed a Contact as if a CRM user had created it (not an API call, not in the write
        log). Values are JSON-style (``Email``, ``FirstName``, ``LastName`` and any field that
        exists, visible or not); several Contacts may share an email, as in real orgs. Returns
        the stored record."""
        with self._lock:
            obj = self._objects["Contact"]
            record: dict[str, Any] = {}
            for key, raw in values.items():
                fd = obj.field(key)
                if fd is None:
                    raise KeyError(f"Contact has no field {key!r}")
                record[fd.name] = validate(fd, from_json(fd, raw))
            record.setdefault("LastName", "Unknown")
            admin = Session(self.user.id, self.latest_api_version, "")
            txn = self.begin("control")
            record_id, _ = self.save_contact(txn, admin, record, None, as_admin=True)
            txn.log.clear()
            txn.commit()
            return dict(self._contacts[record_id])

    def contacts(self) -> list[dict[str, Any]]:
        """Every Contact (stored values), in creation order."""
        with self._lock:
            return [dict(r) for r in self._contacts.values()]

    def contact(self, record_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._contacts.get(to18(record_id))
            return dict(found) if found else None

    def contacts_by_email(self, email: str) -> list[dict[str, Any]]:
        with self._lock:
            return [
                dict(r)
                for r in self._contacts.values()
                if str(r.get("Email") or "").lower() == email.lower()
            ]

    def contact_by_external_id(self, value: str) -> dict[str, Any] | None:
        with self._lock:
            record_id = self._index_holder("Ambassador_Id__c", value)
            return dict(self._contacts[record_id]) if record_id else None

    def write_log(self) -> list[dict[str, Any]]:
        """Every committed write through the API, in order: ``{seq, at, api, operation
        (create|update|delete), sobject, id, external_id, fields (as sent), changed (names
        whose value changed)}``. ``api`` is one of ``rest.sobject.create|update|upsert|delete``,
        ``rest.collections.create|update|upsert``, ``bulk2.ingest``."""
        with self._lock:
            return [dict(e) for e in self._write_log]

    def api_calls(self) -> list[dict[str, Any]]:
        """Every REST request under ``/services/data`` (and the OAuth endpoints, with
        ``counted`` false): ``{seq, method, path, status, counted, at}``."""
        with self._lock:
            return [dict(e) for e in self._api_calls]

    def api_call_count(self) -> int:
        """Calls charged to the daily pool since the last :meth:`reset_audit`."""
        with self._lock:
            return sum(1 for c in self._api_calls if c["counted"])

    def token_requests(self) -> list[dict[str, Any]]:
        """Every token-endpoint request: ``{grant_type, status, error}``."""
        with self._lock:
            return [dict(e) for e in self._token_requests]

    def reset_audit(self) -> None:
        """Forget the write log, the call log and token requests (not the API usage)."""
        with self._lock:
            self._write_log.clear()
            self._api_calls.clear()
            self._token_requests.clear()

    # --- control: metadata and permissions ------------------------------------------------

    def add_field(self, fd: FieldDef, sobject: str = "Contact") -> None:
        """Create or change a field (as a deploy does); a unique field is indexed at once."""
        with self._lock:
            self._objects[sobject].fields[fd.name] = fd
            self._unique.pop(fd.name, None)
            if fd.unique and sobject == "Contact":
                self._unique[fd.name] = {
                    str(r[fd.name]).lower(): record_id
                    for record_id, r in self._contacts.items()
                    if r.get(fd.name) is not None
                }

    def remove_field(self, name: str, sobject: str = "Contact") -> None:
        """Delete a field (as an admin deleting it in Setup): describe no longer lists it,
        queries and writes naming it get INVALID_FIELD, its values are gone."""
        with self._lock:
            obj = self._objects[sobject]
            fd = obj.field(name)
            if fd is None:
                raise KeyError(name)
            del obj.fields[fd.name]
            self._unique.pop(fd.name, None)
            for record in self._contacts.values():
                record.pop(fd.name, None)

    def upsert_permission_set(
        self,
        name: str,
        field_permissions: Mapping[str, tuple[bool, bool]],
        label: str | None = None,
    ) -> PermissionSet:
        """Create or replace a permission set's field permissions (``"Contact.X__c" →
        (readable, editable)``)."""
        with self._lock:
            for ps in self._permission_sets.values():
                if ps.name == name:
                    ps.field_permissions.update(field_permissions)
                    if label:
                        ps.label = label
                    return ps
            ps = PermissionSet(
                self.new_id("PermissionSet"), name, label or name, dict(field_permissions)
            )
            self._permission_sets[ps.id] = ps
            return ps

    def permission_set(self, name: str) -> PermissionSet | None:
        with self._lock:
            for ps in self._permission_sets.values():
                if ps.name == name:
                    return ps
            return None

    def permission_set_names(self) -> list[str]:
        with self._lock:
            return [ps.name for ps in self._permission_sets.values()]

    def is_assigned(self, name: str = DEFAULT_PERMISSION_SET) -> bool:
        """Whether the integration user holds the permission set ``name``."""
        with self._lock:
            ps = self.permission_set(name)
            return ps is not None and (self.user.id, ps.id) in self._assignments.values()

    def assign_permission_set(self, name: str = DEFAULT_PERMISSION_SET) -> str:
        """Assign a permission set to the integration user (idempotent); returns the
        assignment id."""
        with self._lock:
            ps = self.permission_set(name)
            if ps is None:
                raise KeyError(name)
            for psa_id, pair in self._assignments.items():
                if pair == (self.user.id, ps.id):
                    return psa_id
            psa_id = self.new_id("PermissionSetAssignment")
            self._assignments[psa_id] = (self.user.id, ps.id)
            return psa_id

    def unassign_permission_set(self, name: str = DEFAULT_PERMISSION_SET) -> None:
        """Take a permission set away from the integration user: the fields it granted vanish
        from describe and queries (INVALID_FIELD) unless another assignment grants them."""
        with self._lock:
            ps = self.permission_set(name)
            if ps is None:
                raise KeyError(name)
            for psa_id, pair in list(self._assignments.items()):
                if pair == (self.user.id, ps.id):
                    del self._assignments[psa_id]

    def set_field_permission(
        self,
        field_name: str,
        *,
        readable: bool,
        editable: bool,
        permission_set: str = DEFAULT_PERMISSION_SET,
    ) -> None:
        """Change one field's permission in a permission set (e.g. read-only: writes then fail
        with INVALID_FIELD_FOR_INSERT_UPDATE and describe says not updateable)."""
        with self._lock:
            ps = self.permission_set(permission_set)
            if ps is None:
                raise KeyError(permission_set)
            key = field_name if "." in field_name else f"Contact.{field_name}"
            ps.field_permissions[key] = (readable, editable)

    def provision_ambassador_fields(
        self, permission_set: str = DEFAULT_PERMISSION_SET, *, assign: bool = True
    ) -> None:
        """The state after the app's metadata is deployed: the CONTRACT.md fields on Contact,
        a permission set granting read/edit on them, assigned to the integration user
        (``assign=False`` to leave the assignment to the app)."""
        with self._lock:
            for fd in AMBASSADOR_FIELDS:
                self.add_field(fd)
            self.upsert_permission_set(
                permission_set,
                {f"Contact.{fd.name}": (True, True) for fd in AMBASSADOR_FIELDS},
                label="Ambassador Connector",
            )
            if assign:
                self.assign_permission_set(permission_set)

    def field_names(self, sobject: str = "Contact") -> list[str]:
        with self._lock:
            return list(self._objects[sobject].fields)

    # --- control: faults ---------------------------------------------------------------------

    def expire_sessions(self) -> None:
        """Every access token stops working (next API call: 401 INVALID_SESSION_ID); refresh
        tokens still work."""
        with self._lock:
            for access in self.oauth.access_tokens.values():
                access.active = False

    def revoke_refresh_token(self, token: str | None = None) -> None:
        """Revoke one refresh token (None: all), with the access tokens it issued; a refresh
        with it then gets ``invalid_grant`` ("expired access/refresh token")."""
        with self._lock:
            for refresh in self.oauth.refresh_tokens.values():
                if token is None or refresh.token == token:
                    self._end_refresh_token(refresh, "revoked")

    def add_validation_rule(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        message: str,
        *,
        field: str | None = None,
        name: str | None = None,
    ) -> ValidationRule:
        """A validation rule on Contact: a write whose resulting record (stored values: text,
        Decimal numbers, ISO dates) satisfies ``predicate`` fails with
        FIELD_CUSTOM_VALIDATION_EXCEPTION ``message`` (``fields`` = [field] if given); other
        records of the same batch succeed (unless allOrNone)."""
        with self._lock:
            rule = ValidationRule(
                name or f"Rule{len(self._validation_rules) + 1}", predicate, message, field
            )
            self._validation_rules.append(rule)
            return rule

    def clear_validation_rules(self) -> None:
        with self._lock:
            self._validation_rules.clear()

    def fail_next_records_with_lock(self, count: int) -> None:
        """The next ``count`` record saves (any API) fail with UNABLE_TO_LOCK_ROW: a per-record
        error in collections and Bulk results, a 400 for single-record calls."""
        with self._lock:
            self._record_lock_failures = count

    def fail_next_calls(
        self,
        count: int = 1,
        *,
        status: int = 500,
        error_code: str = "UNKNOWN_EXCEPTION",
        message: str = "An unexpected error occurred. Please include this ErrorId if you "
        "contact support: 1234567890-12345 (-1234567890)",
        fields: list[str] | None = None,
    ) -> None:
        """The next ``count`` authenticated API calls (charged to the pool) fail with this
        request-level error instead of running."""
        with self._lock:
            self._call_faults.append(CallFault(count, status, error_code, message, fields))

    def fail_next_calls_with_lock(self, count: int = 1) -> None:
        """The next ``count`` API calls fail as a whole with 400 UNABLE_TO_LOCK_ROW."""
        self.fail_next_calls(
            count,
            status=400,
            error_code="UNABLE_TO_LOCK_ROW",
            message="unable to obtain exclusive access to this record",
            fields=[],
        )

    def lose_next_write_answers(self, count: int = 1, *, how: str = "reset") -> None:
        """The next ``count`` successful record writes (REST ``sobjects`` and ``composite``
        calls that change data) are carried out and committed, then their answer is lost:
        ``reset`` drops the connection, ``5xx`` answers 500 UNKNOWN_EXCEPTION. The case that
        turns a client's blind retry of a create into a second record."""
        if how not in LOST_ANSWER_KINDS:
            raise ValueError(f"how must be one of {LOST_ANSWER_KINDS}, not {how!r}")
        with self._lock:
            self._lost_answers.extend([how] * count)

    def take_lost_answer(self) -> str | None:
        """How to lose the answer of the record write just carried out, if at all (consumes
        one)."""
        with self._lock:
            return self._lost_answers.pop(0) if self._lost_answers else None

    @property
    def lost_answers_armed(self) -> int:
        with self._lock:
            return len(self._lost_answers)

    def clear_faults(self) -> None:
        """Remove call faults, lock failures, validation rules, lost answers, latency and
        "down"."""
        with self._lock:
            self._lost_answers.clear()
            self._call_faults.clear()
            self._record_lock_failures = 0
            self._validation_rules.clear()
            self.latency = 0.0
            self._down = None

    def set_api_usage(self, used: int, limit: int | None = None) -> None:
        """Set the daily pool's usage (and size); calls charged so far are forgotten."""
        with self._lock:
            self._charges.clear()
            self._usage_base = used
            if limit is not None:
                self.daily_api_limit = limit

    def exhaust_api_pool(self) -> None:
        """Spend the daily pool: every API call gets 403 REQUEST_LIMIT_EXCEEDED
        ("TotalRequests Limit exceeded.") until :meth:`set_api_usage` lowers the usage."""
        with self._lock:
            self.set_api_usage(self.daily_api_limit)

    def set_down(self, down: bool = True, *, status: int = 503) -> None:
        """Salesforce unavailable: every request (OAuth and API) gets ``status`` until
        ``set_down(False)``; nothing is charged."""
        with self._lock:
            self._down = (status, "SERVER_UNAVAILABLE") if down else None

    def set_latency(self, seconds: float) -> None:
        """Delay every request by ``seconds`` (before it runs)."""
        with self._lock:
            self.latency = seconds

    def seed_duplicate_contacts(
        self, email: str, count: int = 2, **values: Any
    ) -> list[dict[str, Any]]:
        """``count`` Contacts sharing ``email`` (the top complaint about CRM connectors)."""
        return [
            self.add_contact(
                Email=email,
                LastName=values.get("LastName", f"Duplicate{i + 1}"),
                **{k: v for k, v in values.items() if k != "LastName"},
            )
            for i in range(count)
        ]


class ContactTxn:
    """Staged Contact writes of one request: reads see staged records first; ``commit``
    applies them (and logs them) at once, so allOrNone can drop the lot."""

    def __init__(self, emu: SalesforceEmulator, api: str, unique_fields: list[str]) -> None:
        self.emu = emu
        self.api = api
        self.unique_fields = unique_fields
        self.staged: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {}
        self._staged_unique: dict[str, dict[str, str | None]] = {}
        self.log: list[dict[str, Any]] = []

    def get(self, record_id: str | None) -> dict[str, Any] | None:
        if record_id is None:
            return None
        if record_id in self.staged:
            return self.staged[record_id][0]
        return self.emu._contacts.get(record_id)

    def unique_holder(self, name: str, value: str) -> str | None:
        staged = self._staged_unique.get(name, {})
        key = value.lower()
        if key in staged:
            return staged[key]
        return self.emu._index_holder(name, value)

    def put(self, record_id: str, record: dict[str, Any], before: dict[str, Any] | None) -> None:
        original = self.staged[record_id][1] if record_id in self.staged else before
        for name in self.unique_fields:
            index = self._staged_unique.setdefault(name, {})
            old = (self.get(record_id) or {}).get(name)
            if old is not None and self.unique_holder(name, str(old)) == record_id:
                index[str(old).lower()] = None
            new = record.get(name)
            if new is not None:
                index[str(new).lower()] = record_id
        self.staged[record_id] = (record, original)

    def commit(self) -> None:
        self.emu._commit(self)


def _collection_body(body: Any) -> tuple[list[dict[str, Any]], bool]:
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise _malformed_json()
    records = body["records"]
    if len(records) > COLLECTION_LIMIT:
        raise ApiError(
            400,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        )
    if not all(isinstance(r, dict) for r in records):
        raise _malformed_json()
    return records, bool(body.get("allOrNone", False))


def _malformed_json() -> ApiError:
    return ApiError(400, "JSON_PARSER_ERROR", "The request body is not a JSON object as expected")
