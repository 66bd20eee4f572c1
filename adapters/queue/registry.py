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
}

#: Periodic jobs, every N seconds (run by the RQ cron scheduler inside ``ambassador worker``).
SCHEDULE: dict[Job, int] = {
    Job.SWEEP_INBOX: 30,
    Job.REFRESH_TOKENS: 300,
}
