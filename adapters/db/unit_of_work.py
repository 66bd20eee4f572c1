"""The SQLAlchemy unit of work: one connection, one transaction, rollback unless committed."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Self

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from adapters.crypto import TokenCipher
from adapters.db.application_repository import (
    SqlAlchemyApplicationRepository,
    SqlAlchemyNotificationOutbox,
)
from adapters.db.engagement_repositories import (
    SqlAlchemyChallengeRepository,
    SqlAlchemyContentRepository,
    SqlAlchemyEngagementRepository,
)
from adapters.db.engine import DatabaseUnavailable
from adapters.db.ledger_repositories import SqlAlchemyLedgerRepository, SqlAlchemyOrderRepository
from adapters.db.payout_repository import SqlAlchemyPayoutRepository
from adapters.db.program_repositories import (
    SqlAlchemyAmbassadorRepository,
    SqlAlchemyProgramRepository,
    SqlAlchemyTaskRunRepository,
)
from adapters.db.reconciliation_repository import SqlAlchemyReconciliationRepository
from adapters.db.repositories import (
    SqlAlchemyInboxRepository,
    SqlAlchemyOAuthStateRepository,
    SqlAlchemyPrivacyRequestRepository,
    SqlAlchemyShopRepository,
)
from adapters.db.salesforce_repository import SqlAlchemySalesforceRepository
from connector.ports import Clock

log = logging.getLogger(__name__)


class SqlAlchemyUnitOfWork:
    """Implements :class:`connector.ports.UnitOfWork`. Reusable: each ``with`` is a new
    transaction. ``after_commit`` callbacks run once the commit succeeded, never on rollback."""

    def __init__(self, engine: sa.Engine, cipher: TokenCipher, clock: Clock) -> None:
        self._engine = engine
        self._cipher = cipher
        self._clock = clock
        self._conn: sa.Connection | None = None
        self._callbacks: list[Callable[[], None]] = []

    def __enter__(self) -> Self:
        try:
            self._conn = self._engine.connect()
            self._conn.begin()
        except DBAPIError as exc:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if exc.connection_invalidated or isinstance(exc, sa.exc.OperationalError):
                raise DatabaseUnavailable(str(exc.orig)) from exc
            raise
        now = self._clock.now()
        self.shops = SqlAlchemyShopRepository(self._conn, self._cipher, now)
        self.inbox = SqlAlchemyInboxRepository(self._conn)
        self.oauth_states = SqlAlchemyOAuthStateRepository(self._conn, self._cipher, now)
        self.privacy_requests = SqlAlchemyPrivacyRequestRepository(self._conn)
        self.ambassadors = SqlAlchemyAmbassadorRepository(self._conn, now)
        self.program = SqlAlchemyProgramRepository(self._conn, now)
        self.task_runs = SqlAlchemyTaskRunRepository(self._conn, now)
        self.applications = SqlAlchemyApplicationRepository(self._conn, now)
        self.notifications = SqlAlchemyNotificationOutbox(self._conn, now)
        self.orders = SqlAlchemyOrderRepository(self._conn, now)
        self.ledger = SqlAlchemyLedgerRepository(self._conn, now)
        self.reconciliation = SqlAlchemyReconciliationRepository(self._conn, now)
        self.salesforce = SqlAlchemySalesforceRepository(self._conn, self._cipher, now)
        self.payouts = SqlAlchemyPayoutRepository(self._conn, now)
        self.engagement = SqlAlchemyEngagementRepository(self._conn, now)
        self.challenges = SqlAlchemyChallengeRepository(self._conn, now)
        self.content = SqlAlchemyContentRepository(self._conn, now)
        self._callbacks = []
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if conn.in_transaction():
                conn.rollback()
        except DBAPIError:
            log.warning("db.rollback_failed", exc_info=True)
        finally:
            conn.close()
        if isinstance(exc, sa.exc.OperationalError):
            # Lost connection, server restarting, lock timeout: the caller answers "try later".
            raise DatabaseUnavailable(str(exc.orig)) from exc

    @property
    def connection(self) -> sa.Connection:
        """For adapters' own queries (health, benchmarks); the core never uses it."""
        if self._conn is None:
            raise RuntimeError("unit of work is not open")
        return self._conn

    def commit(self) -> None:
        self.ledger.flush()  # deferred statistics, computed once per ambassador per commit
        try:
            self.connection.commit()
        except sa.exc.OperationalError as exc:
            raise DatabaseUnavailable(str(exc.orig)) from exc
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()
        # No explicit BEGIN here: the connection autobegins if the block goes on (on SQLite a
        # BEGIN takes the write lock, which must not be held while callbacks run).

    def rollback(self) -> None:
        self._callbacks = []
        self.connection.rollback()

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        with self.connection.begin_nested():
            yield

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)
