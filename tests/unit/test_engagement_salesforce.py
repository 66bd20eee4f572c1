"""Engagement on the Contact: the stored score and band fill the sync's snapshot, and a new band
is a change for the change-only sync."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from connector.domain.salesforce import AmbassadorSnapshot, ContactLink, LinkState, values_hash
from connector.ports import StoredScore
from connector.services.salesforce import due_items, with_engagement

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
SHOP = "test-shop.myshopify.com"


def _snapshot() -> AmbassadorSnapshot:
    return AmbassadorSnapshot(
        ambassador_id=7, email="a@example.com", first_name="A", last_name="B", status="active",
        tier=None, code="AB10", since=NOW, orders=1, revenue=Decimal("10"),
        rewards_earned=Decimal(1), rewards_paid=Decimal(0), last_referral_at=NOW,
    )


def _score(score: str, band: str) -> dict[int, StoredScore]:
    return {7: StoredScore(7, Decimal(score), band, (), NOW)}


def test_the_snapshot_carries_the_stored_score_and_band():
    [(snapshot, _)] = with_engagement([(_snapshot(), None)], _score("61.5", "engaged"))
    assert snapshot.engagement_score == Decimal("61.5")
    assert snapshot.engagement_band == "engaged"
    [(unscored, _)] = with_engagement([(_snapshot(), None)], {})
    assert unscored.engagement_band is None and unscored.engagement_score is None


def test_a_band_change_is_a_change_to_sync_and_an_unchanged_one_is_not():
    from connector.domain.salesforce import contact_values

    [(marginal, _)] = with_engagement([(_snapshot(), None)], _score("40.0", "marginal"))
    values = contact_values(marginal, SHOP)
    assert values["Ambassador_Engagement__c"] == "marginal"
    assert values["Ambassador_Engagement_Score__c"] == 40.0
    link = ContactLink(7, contact_id="003000000000001", synced_hash=values_hash(values),
                       state=LinkState.SYNCED, synced_at=NOW)
    due, _, _ = due_items(with_engagement([(_snapshot(), link)], _score("40.0", "marginal")),
                          SHOP, NOW)
    assert due == []
    due, _, _ = due_items(with_engagement([(_snapshot(), link)], _score("60.0", "engaged")),
                          SHOP, NOW)
    assert len(due) == 1
