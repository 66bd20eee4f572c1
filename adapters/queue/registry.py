"""Where each core :class:`~connector.ports.Job` runs: function path, queue, timeout, retries.

Function paths are stable import paths (jobs already in Redis keep working across deploys).
"""

from __future__ import annotations

from dataclasses import dataclass

from connector.ports import Job


@dataclass(frozen=True)
class JobSpec:
    func: str
    queue: str
    timeout: int
    retries: tuple[int, ...] = ()  # seconds between retries (RQ ``Retry(interval=...)``)


QUEUES = ("webhooks", "default", "scheduled")

JOBS: dict[Job, JobSpec] = {
    Job.PROCESS_INBOX: JobSpec("entrypoints.jobs.process_inbox", "webhooks", timeout=600),
    Job.SWEEP_INBOX: JobSpec("entrypoints.jobs.sweep_inbox", "scheduled", timeout=60),
    Job.REGISTER_WEBHOOKS: JobSpec(
        "entrypoints.jobs.register_webhooks", "default", timeout=120, retries=(10, 60, 300, 900)
    ),
    Job.REFRESH_TOKENS: JobSpec("entrypoints.jobs.refresh_tokens", "scheduled", timeout=300),
    Job.SYNC_CODES: JobSpec(
        "entrypoints.jobs.sync_codes", "default", timeout=3600, retries=(30, 120, 600)
    ),
    Job.CHECK_CODE_DRIFT: JobSpec("entrypoints.jobs.check_code_drift", "scheduled", timeout=3600),
    Job.SYNC_CUSTOMER_TAGS: JobSpec(
        "entrypoints.jobs.sync_customer_tags", "default", timeout=600, retries=(30, 300)
    ),
    Job.ENROL_CUSTOMERS: JobSpec("entrypoints.jobs.enrol_customers", "default", timeout=3600),
    # A bulk export may take a while in Shopify: the job gives up on it after 3 hours.
    Job.SCAN_CANDIDATES: JobSpec("entrypoints.jobs.scan_candidates", "default", timeout=11400),
    Job.SEND_NOTIFICATIONS: JobSpec(
        "entrypoints.jobs.send_notifications", "default", timeout=600, retries=(30, 120, 600)
    ),
    Job.APPROVE_REWARDS: JobSpec("entrypoints.jobs.approve_rewards", "scheduled", timeout=600),
    Job.EVALUATE_TIERS: JobSpec("entrypoints.jobs.evaluate_tiers", "scheduled", timeout=1800),
    # Called with no argument by the schedule (queues one run per shop), with a shop by that.
    Job.RECONCILE_ORDERS: JobSpec("entrypoints.jobs.reconcile_orders", "scheduled", timeout=3600),
    # Without a shop (the schedule): one coalesced job per connected org; with a shop: its sync.
    Job.SYNC_SALESFORCE: JobSpec("entrypoints.jobs.sync_salesforce", "default", timeout=1500),
    Job.RUN_PAYOUTS: JobSpec("entrypoints.jobs.run_payouts", "scheduled", timeout=1800),
    # Throttling and 5xx are retried by the payout's own backoff (kept in the database, so it
    # survives a Redis wipe); RQ's retries cover a job that crashed (database down, bug).
    Job.FULFIL_PAYOUT: JobSpec(
        "entrypoints.jobs.fulfil_payout", "default", timeout=300, retries=(30, 120, 600)
    ),
    Job.FULFIL_DUE_PAYOUTS: JobSpec(
        "entrypoints.jobs.fulfil_due_payouts", "scheduled", timeout=120
    ),
    Job.SCORE_ENGAGEMENT: JobSpec("entrypoints.jobs.score_engagement", "scheduled", timeout=1800),
    Job.CLOSE_CHALLENGES: JobSpec("entrypoints.jobs.close_challenges", "scheduled", timeout=600),
}

#: Periodic jobs, every N seconds (run by the RQ cron scheduler inside ``ambassador worker``).
SCHEDULE: dict[Job, int] = {
    Job.SWEEP_INBOX: 30,
    Job.REFRESH_TOKENS: 300,
    Job.CHECK_CODE_DRIFT: 3600,
    Job.SEND_NOTIFICATIONS: 60,  # catches anything a lost trigger left in the outbox
    Job.APPROVE_REWARDS: 3600,
    Job.EVALUATE_TIERS: 900,
    Job.RECONCILE_ORDERS: 900,  # orders and refunds whose webhooks were missed
    # Ledger changes reach Contacts within a minute; an org with nothing changed costs no call.
    Job.SYNC_SALESFORCE: 60,
    Job.RUN_PAYOUTS: 3600,  # each shop's run once per period of its schedule
    Job.FULFIL_DUE_PAYOUTS: 60,  # retries after backoff, and payouts whose worker died
    # Scores move with orders, content and visits; hourly keeps bands fresh at little cost.
    Job.SCORE_ENGAGEMENT: 3600,
    Job.CLOSE_CHALLENGES: 300,  # prizes within minutes of a challenge's end
}
