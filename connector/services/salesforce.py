"""Salesforce: connecting an org, checking its Contact fields, and keeping every ambassador's
fields on their Contact up to date within the org's API budget.

Guarantees:
- Connect is the OAuth web server flow with PKCE: the verifier stays server-side, keyed by a
  single-use CSPRNG ``state`` that expires (the callback arrives with no session). Tokens cross
  this layer in plaintext; the repository encrypts them at rest.
- Refreshes are serialised per org with a row lock (a rotated refresh token is single-use): a
  caller that waited finds the new token and does not refresh again. ``invalid_grant`` marks
  the connection ``needs_reconnect``; the admin says so.
- Only ambassadors whose synced values changed are written (a digest of the values last written
  is kept per ambassador), so a sync with nothing to do makes no API call. The digest stored is
  that of the values *sent*: an ambassador changed while its write was in flight differs at the
  next run and is written again.
- Before an ambassador's first write, existing Contacts are matched by email (never a
  duplicate; several matches: :func:`connector.domain.salesforce.choose_contact`); afterwards
  every write is an upsert by ``Ambassador_Id__c``, which is idempotent.
- Per-record failures are classified: transient ones back off and retry, refused data is parked
  with Salesforce's message for the merchant (and tried again when the values change or the
  merchant presses retry).
- The org's daily pool: usage is read from every response; at ``budget_share`` of the pool the
  org's sync pauses (it never retries a spent pool in a loop) and resumes once usage is back
  below the share.
- One sync per org at a time (a lease on the connection row).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from connector.domain.salesforce import (
    BULK_THRESHOLD,
    COLLECTION_SIZE,
    EXTERNAL_ID,
    MAX_ATTEMPTS,
    PAUSE_RECHECK,
    AmbassadorSnapshot,
    ApiUsage,
    ConnectionStatus,
    ContactLink,
    ContactMatch,
    FieldReport,
    LinkState,
    Outcome,
    SalesforceConnection,
    check_fields,
    choose_contact,
    chunks,
    classify,
    contact_values,
    email_query_batches,
    may_resume,
    org_and_user,
    over_budget,
    retry_delay,
    values_hash,
)
from connector.domain.shops import Shop
from connector.ports import (
    Clock,
    CrmError,
    CrmGateway,
    CrmLimitExceeded,
    CrmReauthRequired,
    CrmSession,
    CrmSessionExpired,
    CrmSetupError,
    CrmUnavailable,
    CrmWriteResult,
    IdGenerator,
    Job,
    JobQueue,
    OAuthState,
    StoredScore,
    UnitOfWorkFactory,
)
from connector.services.installation import NotInstalled

log = logging.getLogger(__name__)

CONNECT_PURPOSE = "salesforce_connect"
STATE_TTL = timedelta(minutes=10)
#: How long a sync may hold the org (its job times out before this).
LEASE = timedelta(minutes=30)
PERMISSION_SET = "Ambassador_Connector"
DEFAULT_BUDGET_SHARE = 0.8
#: A connection whose fields were not usable is described again at most this often.
FIELD_RECHECK = timedelta(minutes=15)

T = TypeVar("T")


class SalesforceError(Exception):
    """A merchant-facing failure of a Salesforce action (``code``, ``message``, HTTP status)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class _Paused(Exception):
    """The org reached its budget share (or spent its pool) during a sync."""

    def __init__(self, reason: str, usage: ApiUsage | None) -> None:
        super().__init__(reason)
        self.reason, self.usage = reason, usage


# --- connecting ---------------------------------------------------------------------------


def begin_connect(
    uow_factory: UnitOfWorkFactory,
    gateway: CrmGateway,
    ids: IdGenerator,
    clock: Clock,
    shop: Shop,
    redirect_uri: str,
) -> str:
    """The authorize URL for the merchant to open. The PKCE verifier is kept (encrypted) under a
    256-bit CSPRNG ``state``, single-use, for :data:`STATE_TTL`."""
    state = ids.token(32)
    verifier = ids.token(48)  # 64 URL-safe characters: within PKCE's 43..128
    with uow_factory() as uow:
        uow.oauth_states.add(
            OAuthState(
                state=state,
                shop_domain=shop.domain,
                purpose=CONNECT_PURPOSE,
                expires_at=clock.now() + STATE_TTL,
                secret=verifier,
            )
        )
        uow.commit()
    return gateway.authorize_url(state, verifier, redirect_uri)


def complete_connect(
    uow_factory: UnitOfWorkFactory,
    gateway: CrmGateway,
    jobs: JobQueue,
    clock: Clock,
    state: str,
    code: str,
    redirect_uri: str,
) -> str:
    """The OAuth callback: consume the state, exchange the code with its verifier, store the
    tokens, check the Contact fields, and start the backfill. Returns the shop's domain.

    Raises :class:`SalesforceError` for an unknown, expired or reused state (nothing stored)
    and when Salesforce refuses the code.
    """
    with uow_factory() as uow:
        saved = uow.oauth_states.consume(state, clock.now())
        uow.commit()  # consumed even if what follows fails: a state is good for one try
    if saved is None or saved.purpose != CONNECT_PURPOSE or not saved.secret:
        raise SalesforceError("invalid_state", "unknown, expired or already used state")
    with uow_factory() as uow:
        shop = uow.shops.get(saved.shop_domain)
    if shop is None or shop.id is None or not shop.installed:
        raise SalesforceError("not_installed", "the app is not installed on this shop", 403)
    try:
        token = gateway.exchange_code(code, saved.secret, redirect_uri)
    except CrmReauthRequired:
        raise SalesforceError("invalid_code", "Salesforce refused the authorization code") from None
    except CrmError as exc:
        raise SalesforceError("salesforce_error", str(exc), 502) from None
    org_id, user_id = org_and_user(token.identity_url)
    now = clock.now()
    with uow_factory() as uow:
        previous = uow.salesforce.connection(shop.id, for_update=True)
        if previous is not None and previous.org_id and previous.org_id != org_id:
            # Another org: the Contact ids we remember mean nothing there.
            uow.salesforce.forget_all(shop.id)
        uow.salesforce.save_connection(
            SalesforceConnection(
                shop_id=shop.id,
                status=ConnectionStatus.CONNECTED,
                instance_url=token.instance_url,
                access_token=token.access_token,
                refresh_token=token.refresh_token,
                org_id=org_id,
                user_id=user_id,
                scope=token.scope,
                connected_at=now,
                last_sync_at=previous.last_sync_at if previous else None,
                last_sync=previous.last_sync if previous else None,
            )
        )
        uow.commit()
    log.info("salesforce.connected", extra={"shop": shop.domain, "org": org_id})
    try:
        verify_fields(uow_factory, gateway, clock, shop.domain)
    except CrmError:
        log.warning("salesforce.field_check_failed", extra={"shop": shop.domain})
    queue_sync(jobs, shop.domain)  # the backfill of existing ambassadors starts by itself
    return shop.domain


def disconnect(
    uow_factory: UnitOfWorkFactory, gateway: CrmGateway, clock: Clock, shop: Shop
) -> bool:
    """Drop the tokens, then revoke the refresh token at Salesforce (best effort). The Contact
    links stay: reconnecting the same org carries on where the sync stopped."""
    assert shop.id is not None
    with uow_factory() as uow:
        conn = uow.salesforce.connection(shop.id, for_update=True)
        if conn is None or conn.status is ConnectionStatus.DISCONNECTED:
            return False
        uow.salesforce.save_connection(
            replace(
                conn,
                status=ConnectionStatus.DISCONNECTED,
                access_token=None,
                refresh_token=None,
                paused_until=None,
                pause_reason=None,
            )
        )
        uow.commit()
    token = conn.refresh_token or conn.access_token
    if token:
        gateway.revoke(token)
    log.info("salesforce.disconnected", extra={"shop": shop.domain})
    return True


# --- one org's API calls, with refresh on INVALID_SESSION_ID -------------------------------


class OrgClient:
    """Calls for one connected org. On ``INVALID_SESSION_ID`` it refreshes the token (one
    refresher per org: row lock) and repeats the call once with a new session."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        gateway: CrmGateway,
        shop_id: int,
        connection: SalesforceConnection,
    ) -> None:
        self._uow = uow_factory
        self._gateway = gateway
        self.shop_id = shop_id
        self.connection = connection
        self._session = gateway.session(connection.instance_url, connection.access_token or "")
        self._spent = 0  # calls of sessions replaced after a refresh
        self.usage: ApiUsage | None = None

    @property
    def calls(self) -> int:
        return self._spent + self._session.calls

    def call(self, fn: Callable[[CrmSession], T]) -> T:
        try:
            return fn(self._session)
        except CrmSessionExpired:
            self._refresh()
            return fn(self._session)  # a second 401 propagates
        finally:
            if self._session.usage is not None:
                self.usage = self._session.usage

    def _refresh(self) -> None:
        failed_token = self.connection.access_token
        with self._uow() as uow:
            conn = uow.salesforce.connection(self.shop_id, for_update=True)
            if conn is None or conn.status is not ConnectionStatus.CONNECTED:
                raise CrmReauthRequired("the org is no longer connected")
            if conn.access_token and conn.access_token != failed_token:
                fresh = conn  # another worker refreshed while we waited for the lock
            else:
                if not conn.refresh_token:
                    raise CrmReauthRequired("no refresh token")
                try:
                    token = self._gateway.refresh(conn.refresh_token)
                except CrmReauthRequired as exc:
                    uow.salesforce.save_connection(
                        replace(
                            conn,
                            status=ConnectionStatus.NEEDS_RECONNECT,
                            access_token=None,
                            last_error=f"Salesforce refused the refresh token ({exc}): "
                            "connect again",
                        )
                    )
                    uow.commit()
                    log.warning("salesforce.refresh_refused", extra={"shop_id": self.shop_id})
                    raise
                fresh = replace(
                    conn,
                    access_token=token.access_token,
                    # Without rotation Salesforce returns no refresh token: keep ours.
                    refresh_token=token.refresh_token or conn.refresh_token,
                    instance_url=token.instance_url or conn.instance_url,
                )
                uow.salesforce.save_connection(fresh)
                uow.commit()
                log.info("salesforce.token_refreshed", extra={"shop_id": self.shop_id})
        self.connection = fresh
        self._spent += self._session.calls
        self._session = self._gateway.session(fresh.instance_url, fresh.access_token or "")


# --- fields -------------------------------------------------------------------------------


def verify_fields(
    uow_factory: UnitOfWorkFactory, gateway: CrmGateway, clock: Clock, shop_domain: str
) -> FieldReport:
    """Describe Contact and record exactly which owned fields are missing or not writable.
    When fields exist but are not writable, assign the permission set to the connected user
    (PermissionSetAssignment) and look again."""
    shop_id, conn = _connection(uow_factory, shop_domain)
    return _verify(uow_factory, OrgClient(uow_factory, gateway, shop_id, conn), clock)


def _verify(uow_factory: UnitOfWorkFactory, org: OrgClient, clock: Clock) -> FieldReport:
    shop_id, conn = org.shop_id, org.connection
    report = check_fields(org.call(lambda s: s.describe_contact()), clock.now())
    # Fields the user may not read are absent from describe, exactly like fields never
    # deployed: the permission set is worth assigning in both cases (when the org has it).
    if (report.not_writable or report.missing) and conn.user_id:
        user_id = conn.user_id
        try:
            assigned = org.call(lambda s: s.assign_permission_set(PERMISSION_SET, user_id))
        except CrmError as exc:
            assigned = False
            note: str | None = f"could not assign the {PERMISSION_SET} permission set: {exc}"
        else:
            note = (
                None
                if assigned
                else (
                    f"the {PERMISSION_SET} permission set is not in the org: deploy the fields "
                    "first"
                )
            )
        if assigned:
            report = check_fields(org.call(lambda s: s.describe_contact()), clock.now())
        report = replace(report, permission_set_assigned=assigned, note=note)
    with uow_factory() as uow:
        current = uow.salesforce.connection(shop_id, for_update=True)
        if current is not None:
            uow.salesforce.save_connection(
                replace(
                    current,
                    fields=report,
                    api_used=_used(org, current),
                    api_limit=_limit(org, current),
                )
            )
            uow.commit()
    return report


def _used(org: OrgClient, conn: SalesforceConnection) -> int | None:
    return org.usage.used if org.usage else conn.api_used


def _limit(org: OrgClient, conn: SalesforceConnection) -> int | None:
    return org.usage.limit if org.usage else conn.api_limit


def _connection(
    uow_factory: UnitOfWorkFactory, shop_domain: str
) -> tuple[int, SalesforceConnection]:
    with uow_factory() as uow:
        shop = uow.shops.get(shop_domain)
        if shop is None or shop.id is None or not shop.installed:
            raise NotInstalled(shop_domain)
        conn = uow.salesforce.connection(shop.id)
    if conn is None or not conn.usable:
        raise SalesforceError("not_connected", "Salesforce is not connected", 409)
    return shop.id, conn


def provision_fields(
    uow_factory: UnitOfWorkFactory,
    gateway: CrmGateway,
    shop_domain: str,
    package_zip: bytes,
) -> str:
    """Deploy the fields and the permission set through the Metadata API; returns the deploy id
    (follow it with :func:`provision_status`). Deploying the same package again is harmless."""
    shop_id, conn = _connection(uow_factory, shop_domain)
    org = OrgClient(uow_factory, gateway, shop_id, conn)
    return org.call(lambda s: s.deploy(package_zip))


def provision_status(
    uow_factory: UnitOfWorkFactory,
    gateway: CrmGateway,
    clock: Clock,
    shop_domain: str,
    deploy_id: str,
) -> dict[str, Any]:
    """A deploy's state; once it succeeded, the fields are checked again (and the permission
    set assigned)."""
    shop_id, conn = _connection(uow_factory, shop_domain)
    org = OrgClient(uow_factory, gateway, shop_id, conn)
    done, success, message = org.call(lambda s: s.deploy_status(deploy_id))
    out: dict[str, Any] = {"id": deploy_id, "done": done, "success": success, "error": message}
    if done and success:
        report = verify_fields(uow_factory, gateway, clock, shop_domain)
        out["fields"] = field_report_json(report)
    return out


def field_report_json(report: FieldReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "missing": list(report.missing),
        "not_writable": list(report.not_writable),
        "checked_at": report.checked_at.isoformat() if report.checked_at else None,
        "permission_set_assigned": report.permission_set_assigned,
        "message": report.message() + (f" ({report.note})" if report.note else ""),
    }


# --- the sync -----------------------------------------------------------------------------


@dataclass
class SyncReport:
    """One sync run. ``status``: ``done``, ``nothing_to_do``, ``partial`` (some records wait
    for a retry or were parked), ``paused`` (budget), ``needs_reconnect``, ``setup_needed``,
    ``unavailable`` (Salesforce down: the schedule tries again), ``running`` (another sync of
    the org holds it), ``not_connected``."""

    shop_domain: str
    status: str = "done"
    due: int = 0
    written: int = 0
    created: int = 0
    matched: int = 0  # first writes onto an existing Contact found by email
    duplicates: int = 0  # of those, emails with several Contacts (the rule chose one)
    erased: int = 0
    parked: int = 0
    retrying: int = 0
    calls: int = 0
    bulk_jobs: int = 0
    error: str | None = None
    usage: ApiUsage | None = None
    notes: list[str] = field(default_factory=list)

    def log_extra(self) -> dict[str, Any]:
        """The figures under names that cannot clash with a log record's own attributes."""
        return {f"sync_{key}": value for key, value in self.figures().items()}

    def figures(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "due": self.due,
            "written": self.written,
            "created": self.created,
            "matched": self.matched,
            "duplicates": self.duplicates,
            "erased": self.erased,
            "parked": self.parked,
            "retrying": self.retrying,
            "calls": self.calls,
            "bulk_jobs": self.bulk_jobs,
            "error": self.error,
        }


@dataclass
class _Item:
    snapshot: AmbassadorSnapshot
    link: ContactLink | None
    values: dict[str, Any]
    digest: str
    contact_id: str | None = None
    note: str | None = None
    matched: bool = False


def with_engagement(
    pairs: Sequence[tuple[AmbassadorSnapshot, ContactLink | None]],
    scores: Mapping[int, StoredScore],
) -> list[tuple[AmbassadorSnapshot, ContactLink | None]]:
    """The snapshots with each ambassador's stored engagement score and band (unscored: left
    empty). They are part of the values hashed, so a new band or score is a change to sync."""
    out = []
    for snapshot, link in pairs:
        stored = scores.get(snapshot.ambassador_id)
        if stored is not None:
            snapshot = replace(
                snapshot, engagement_score=stored.score, engagement_band=stored.band
            )
        out.append((snapshot, link))
    return out


def due_items(
    pairs: Sequence[tuple[AmbassadorSnapshot, ContactLink | None]],
    shop_domain: str,
    now: datetime,
    *,
    full: bool = False,
) -> tuple[list[_Item], list[ContactLink], list[int]]:
    """Split the shop's ambassadors into (to write, links to record without a call, links to
    forget). Nothing else makes a call: unchanged values, parked values that did not change,
    and records still backing off are left alone (``full``: everyone is written again)."""
    due: list[_Item] = []
    settle: list[ContactLink] = []
    forget: list[int] = []
    for snapshot, link in pairs:
        values = contact_values(snapshot, shop_domain)
        digest = values_hash(values)
        if link is not None and link.erase:
            if link.contact_id:
                due.append(_Item(snapshot, link, values, digest, link.contact_id))
            else:
                forget.append(snapshot.ambassador_id)  # never written: nothing to clear
            continue
        if link is None or (not link.contact_id and link.synced_hash is None):
            if snapshot.status == "removed":
                # Never on a Contact and no longer an ambassador: nothing to show or clear.
                settle.append(
                    ContactLink(snapshot.ambassador_id, synced_hash=digest, synced_at=now)
                )
                continue
        if link is not None and not full:
            if link.state is LinkState.SYNCED and link.synced_hash == digest:
                continue
            if link.state is LinkState.PARKED and link.failed_hash == digest:
                continue
            if link.state is LinkState.RETRY and link.retry_at is not None and link.retry_at > now:
                continue
        due.append(_Item(snapshot, link, values, digest, link.contact_id if link else None))
    return due, settle, forget


def sync(
    uow_factory: UnitOfWorkFactory,
    gateway: CrmGateway,
    clock: Clock,
    shop_domain: str,
    *,
    budget_share: float = DEFAULT_BUDGET_SHARE,
    bulk_threshold: int = BULK_THRESHOLD,
    progress: Callable[[int, int], None] | None = None,
    full: bool = False,
) -> SyncReport:
    """Write every changed ambassador of the shop to its Contact (``full``: every ambassador,
    changed or not: a backfill). ``progress(done, total)`` is
    called as records are written (the CLI's bar). Never raises for Salesforce's failures: they
    end in the report's ``status`` and on the connection (the admin shows them)."""
    report = SyncReport(shop_domain)
    now = clock.now()
    with uow_factory() as uow:
        shop = uow.shops.get(shop_domain)
        if shop is None or shop.id is None or not shop.installed:
            raise NotInstalled(shop_domain)
        shop_id = shop.id
        conn = uow.salesforce.connection(shop_id)
        if conn is None or conn.status is ConnectionStatus.DISCONNECTED:
            report.status = "not_connected"
            return report
        if conn.status is ConnectionStatus.NEEDS_RECONNECT or not conn.usable:
            report.status = "needs_reconnect"
            return report
        if conn.paused_until is not None and conn.paused_until > now:
            report.status = "paused"
            return report
        if not uow.salesforce.begin_sync(shop_id, now + LEASE):
            report.status = "running"
            return report
        uow.commit()
    org = OrgClient(uow_factory, gateway, shop_id, conn)
    try:
        _run(
            uow_factory,
            org,
            clock,
            shop_domain,
            shop_id,
            conn,
            report,
            budget_share,
            bulk_threshold,
            progress,
            full,
        )
    except _Paused as exc:
        report.status, report.error = "paused", exc.reason
        report.usage = exc.usage or org.usage
    except CrmLimitExceeded as exc:
        report.status, report.error = "paused", f"the org's daily API pool is spent ({exc})"
    except CrmReauthRequired as exc:
        report.status, report.error = "needs_reconnect", str(exc)
    except CrmSetupError as exc:
        report.status, report.error = "setup_needed", str(exc)
    except CrmUnavailable as exc:
        report.status, report.error = "unavailable", str(exc)
    except CrmError as exc:
        report.status, report.error = "failed", str(exc)
    finally:
        report.calls = org.calls
        report.usage = report.usage or org.usage
        _finish(uow_factory, clock, shop_id, org, report, budget_share)
    log.log(
        logging.WARNING if report.status not in {"done", "nothing_to_do"} else logging.INFO,
        "salesforce.sync.finished",
        extra={"shop": shop_domain, **report.log_extra()},
    )
    return report


def _run(
    uow_factory: UnitOfWorkFactory,
    org: OrgClient,
    clock: Clock,
    shop_domain: str,
    shop_id: int,
    conn: SalesforceConnection,
    report: SyncReport,
    budget_share: float,
    bulk_threshold: int,
    progress: Callable[[int, int], None] | None,
    full: bool = False,
) -> None:
    now = clock.now()
    if conn.paused_until is not None:
        # The pause has run its time: one cheap look at the pool before writing again.
        usage = org.call(lambda s: s.limits())
        if not may_resume(usage, budget_share):
            raise _Paused("the org's API usage is still above the budget share", usage)
    fields = conn.fields
    if not fields.ok and (fields.checked_at is None or now - fields.checked_at >= FIELD_RECHECK):
        fields = _verify(uow_factory, org, clock)  # the merchant may have fixed the org
    if not fields.ok:
        report.status = "setup_needed"
        report.error = fields.message()
        return
    with uow_factory() as uow:
        pairs = with_engagement(uow.salesforce.snapshots(shop_id), uow.engagement.scores(shop_id))
    due, settle, forget = due_items(pairs, shop_domain, now, full=full)
    if settle or forget:
        with uow_factory() as uow:
            uow.salesforce.save_links(shop_id, settle)
            uow.salesforce.forget(shop_id, forget)
            uow.commit()
    report.due = len(due)
    if not due:
        report.status = "nothing_to_do"
        return

    def guard() -> None:
        if over_budget(org.usage, budget_share):
            raise _Paused(
                f"the org has used {org.usage.used if org.usage else '?'} of its "
                f"{org.usage.limit if org.usage else '?'} daily API calls (pause at "
                f"{int(budget_share * 100)} %)",
                org.usage,
            )

    guard()
    erase = [i for i in due if i.link is not None and i.link.erase]
    known = [i for i in due if i not in erase and i.contact_id]
    fresh = [i for i in due if i not in erase and not i.contact_id]
    _match(org, fresh, report, guard)
    parked_now = [i for i in fresh if i.note and i.contact_id is None and i.matched]
    matched = [i for i in fresh if i.contact_id]
    create = [i for i in fresh if not i.contact_id and i not in parked_now]
    if parked_now:
        _save(
            uow_factory,
            shop_id,
            [
                _failed(
                    i,
                    CrmWriteResult(False, error_code="CONTACT_CONFLICT", message=i.note),
                    Outcome.PARK,
                    now,
                    report,
                )
                for i in parked_now
            ],
        )
    total = len(erase) + len(known) + len(matched) + len(create)
    done = 0

    def batches(items: list[_Item], kind: str) -> None:
        nonlocal done
        if not items:
            return
        records = [_record(i, kind) for i in items]
        bulk = len(items) > bulk_threshold
        size = len(items) if bulk else COLLECTION_SIZE
        for part_items, part_records in zip(
            chunks(items, size), chunks(records, size), strict=True
        ):
            guard()
            results = org.call(_writer(kind, bulk, part_records))
            report.bulk_jobs += int(bulk)
            links, forget_ids = _apply(part_items, results, kind, clock.now(), report)
            _save(uow_factory, shop_id, links, forget_ids)
            done += len(part_items)
            if progress is not None:
                progress(done, total)

    batches(erase, "erase")
    batches(matched, "matched")
    batches(known + create, "upsert")
    report.status = "partial" if report.parked or report.retrying else "done"


def _writer(
    kind: str, bulk: bool, records: Sequence[dict[str, Any]]
) -> Callable[[CrmSession], list[CrmWriteResult]]:
    """One write call: upserts by ``Ambassador_Id__c``; erasures and first writes onto a matched
    Contact are updates by ``Id`` (the Contact has no external id yet)."""
    op = "upsert" if kind == "upsert" else "update"

    def write(session: CrmSession) -> list[CrmWriteResult]:
        if bulk:
            return session.bulk(op, records)
        return session.upsert(records) if op == "upsert" else session.update(records)

    return write


def _match(
    org: OrgClient, items: list[_Item], report: SyncReport, guard: Callable[[], None]
) -> None:
    """Find existing Contacts by email for ambassadors never written before."""
    by_email: dict[str, list[ContactMatch]] = {}
    emails = [i.snapshot.email for i in items if i.snapshot.email]
    for soql in email_query_batches(emails):
        guard()
        for match in org.call(_finder(soql)):
            by_email.setdefault(match.email.lower(), []).append(match)
    for item in items:
        candidates = by_email.get(item.snapshot.email.lower(), [])
        decision = choose_contact(str(item.values.get(EXTERNAL_ID) or ""), candidates)
        item.matched = bool(candidates)
        item.note = decision.note
        item.contact_id = decision.contact_id
        if decision.contact_id:
            report.matched += 1
        if len(candidates) > 1:
            report.duplicates += 1
            report.notes.append(f"{item.snapshot.ambassador_id}: {decision.note}")


def _finder(soql: str) -> Callable[[CrmSession], list[ContactMatch]]:
    return lambda session: session.find_contacts(soql)


def _record(item: _Item, kind: str) -> dict[str, Any]:
    values = dict(item.values)
    if kind in {"erase", "matched"}:
        values["Id"] = item.contact_id
        return values
    if kind == "upsert" and not item.contact_id:
        # A new Contact: the only time the connector writes anything but its own fields.
        s = item.snapshot
        values["Email"] = s.email
        values["FirstName"] = s.first_name or None
        values["LastName"] = s.last_name or s.first_name or s.email.split("@")[0]
    return values


def _apply(
    items: Sequence[_Item],
    results: Sequence[CrmWriteResult],
    kind: str,
    now: datetime,
    report: SyncReport,
) -> tuple[list[ContactLink], list[int]]:
    links: list[ContactLink] = []
    forget: list[int] = []
    for item, result in zip(items, results, strict=True):
        if result.ok:
            if kind == "erase":
                forget.append(item.snapshot.ambassador_id)
                report.erased += 1
                continue
            report.written += 1
            report.created += int(result.created)
            links.append(
                ContactLink(
                    item.snapshot.ambassador_id,
                    contact_id=result.contact_id or item.contact_id,
                    synced_hash=item.digest,
                    state=LinkState.SYNCED,
                    note=item.note or (item.link.note if item.link else None),
                    synced_at=now,
                )
            )
            continue
        outcome = classify(result.error_code or "", result.message or "")
        code = (result.error_code or "").upper()
        if code in {"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY"} or (
            code == "REQUIRED_FIELD_MISSING" and item.contact_id and kind == "upsert"
        ):
            # The remembered Contact was deleted in Salesforce: forget it, match again.
            item = replace(item, contact_id=None)
            outcome = Outcome.RETRY
        links.append(_failed(item, result, outcome, now, report))
    return links, forget


def _failed(
    item: _Item, result: CrmWriteResult, outcome: Outcome, now: datetime, report: SyncReport
) -> ContactLink:
    link = item.link or ContactLink(item.snapshot.ambassador_id)
    attempts = link.attempts + 1
    base = replace(
        link,
        # Only a Contact already written with our external id is remembered: one matched by
        # email but refused is matched again next time (an upsert would not find it).
        contact_id=link.contact_id if item.contact_id else None,
        failed_hash=item.digest,
        error_code=result.error_code,
        error_message=result.message,
        attempts=attempts,
        note=item.note or link.note,
    )
    if outcome in {Outcome.RETRY, Outcome.PAUSE, Outcome.REAUTH} and attempts < MAX_ATTEMPTS:
        report.retrying += 1
        return replace(base, state=LinkState.RETRY, retry_at=now + retry_delay(attempts))
    report.parked += 1
    return replace(base, state=LinkState.PARKED, retry_at=None)


def _save(
    uow_factory: UnitOfWorkFactory,
    shop_id: int,
    links: Sequence[ContactLink],
    forget: Sequence[int] = (),
) -> None:
    with uow_factory() as uow:
        uow.salesforce.save_links(shop_id, links)
        uow.salesforce.forget(shop_id, forget)
        uow.commit()


def _finish(
    uow_factory: UnitOfWorkFactory,
    clock: Clock,
    shop_id: int,
    org: OrgClient,
    report: SyncReport,
    budget_share: float,
) -> None:
    now = clock.now()
    try:
        with uow_factory() as uow:
            conn = uow.salesforce.connection(shop_id, for_update=True)
            if conn is not None:
                usage = report.usage
                paused_until, reason = None, None
                if report.status == "paused":
                    paused_until, reason = now + PAUSE_RECHECK, report.error
                if report.status == "setup_needed" and conn.fields.ok:
                    # A write named a field the org lacks: check again before the next sync.
                    conn = replace(conn, fields=FieldReport(note=report.error))
                if report.status != "nothing_to_do" or conn.last_sync is None:
                    conn = replace(conn, last_sync=report.figures())
                uow.salesforce.save_connection(
                    replace(
                        conn,
                        api_used=usage.used if usage else conn.api_used,
                        api_limit=usage.limit if usage else conn.api_limit,
                        paused_until=paused_until,
                        pause_reason=reason,
                        last_sync_at=now,
                        last_error=report.error,
                    )
                )
            uow.salesforce.end_sync(shop_id)
            uow.commit()
    except Exception:  # the run's outcome matters more than its record: logged
        log.exception("salesforce.sync.record_failed", extra={"shop_id": shop_id})


# --- triggers -----------------------------------------------------------------------------


def queue_sync(jobs: JobQueue, shop_domain: str) -> None:
    """After an ambassador changed: one coalesced sync job per shop (a job already waiting
    under the id absorbs the change; the schedule catches anything else)."""
    try:
        jobs.enqueue(Job.SYNC_SALESFORCE, shop_domain, job_id=f"sync-salesforce:{shop_domain}")
    except Exception:  # noqa: BLE001 - the schedule queues it again within a minute
        log.warning("salesforce.enqueue_failed", extra={"shop": shop_domain})


def schedule_all(uow_factory: UnitOfWorkFactory, jobs: JobQueue) -> list[str]:
    """Queue a sync of every connected org (each finds its changes; none: no API call)."""
    with uow_factory() as uow:
        domains = uow.salesforce.connected_shops()
    for domain in domains:
        queue_sync(jobs, domain)
    return domains


def retry_parked(uow_factory: UnitOfWorkFactory, jobs: JobQueue, shop: Shop) -> int:
    """The merchant's retry: every parked or backing-off record is due again now."""
    assert shop.id is not None
    with uow_factory() as uow:
        n = uow.salesforce.retry_parked(shop.id)
        uow.commit()
    queue_sync(jobs, shop.domain)
    return n


def state(uow_factory: UnitOfWorkFactory, clock: Clock, shop: Shop) -> dict[str, Any]:
    """What the admin shows: connection, fields, budget, last sync, figures, parked records."""
    assert shop.id is not None
    with uow_factory() as uow:
        conn = uow.salesforce.connection(shop.id)
        counts = uow.salesforce.counts(shop.id)
        parked = uow.salesforce.parked(shop.id, limit=50)
        noted = uow.salesforce.noted(shop.id, limit=50)
    if conn is None:
        return {"status": "not_connected", "records": counts, "parked": [], "matches": []}
    now = clock.now()
    paused = conn.paused_until is not None and conn.paused_until > now
    message = {
        ConnectionStatus.CONNECTED: "connected",
        ConnectionStatus.NEEDS_RECONNECT: "Salesforce refused the stored credentials: "
        "connect again",
        ConnectionStatus.DISCONNECTED: "disconnected",
    }[conn.status]
    return {
        "status": conn.status.value,
        "message": message,
        "instance_url": conn.instance_url or None,
        "org_id": conn.org_id,
        "connected_at": _iso(conn.connected_at),
        "fields": field_report_json(conn.fields),
        "budget": {
            "used": conn.api_used,
            "limit": conn.api_limit,
            "paused": paused,
            "paused_until": _iso(conn.paused_until) if paused else None,
            "pause_reason": conn.pause_reason if paused else None,
        },
        "last_sync_at": _iso(conn.last_sync_at),
        "last_sync": conn.last_sync,
        "last_error": conn.last_error,
        "records": counts,
        "parked": [
            {
                "ambassador_id": link.ambassador_id,
                "email": email,
                "contact_id": link.contact_id,
                "error_code": link.error_code,
                "message": link.error_message,
                "note": link.note,
            }
            for link, email in parked
        ],
        # Ambassadors whose email several Contacts share: which one the rule chose.
        "matches": [
            {
                "ambassador_id": link.ambassador_id,
                "email": email,
                "contact_id": link.contact_id,
                "note": link.note,
            }
            for link, email in noted
        ],
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
