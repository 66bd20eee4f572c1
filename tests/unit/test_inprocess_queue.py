"""The embedded job queue: triggers coalesce, jobs run in order off the request thread."""

from __future__ import annotations

import threading

from adapters.queue import inprocess
from adapters.queue.inprocess import InProcessJobQueue
from connector.ports import Job


def test_triggers_coalesce_until_the_job_acknowledges(monkeypatch):
    ran: list[str] = []
    gate = threading.Event()
    queue = InProcessJobQueue(threaded=True)

    def fake_job() -> None:
        gate.wait(5)
        queue.acknowledge(Job.PROCESS_INBOX)
        ran.append("run")

    monkeypatch.setattr(inprocess, "resolve", lambda path: fake_job)
    for _ in range(50):
        queue.trigger(Job.PROCESS_INBOX)
    gate.set()
    queue.join()
    assert ran == ["run"]
    queue.trigger(Job.PROCESS_INBOX)  # after the acknowledgement a new trigger runs again
    queue.join()
    assert ran == ["run", "run"]


def test_a_failing_job_is_logged_and_does_not_stop_the_thread(monkeypatch, caplog):
    calls: list[int] = []

    def flaky(n: int) -> None:
        calls.append(n)
        if n == 1:
            raise RuntimeError("boom")

    monkeypatch.setattr(inprocess, "resolve", lambda path: flaky)
    queue = InProcessJobQueue(threaded=True)
    queue.enqueue(Job.REGISTER_WEBHOOKS, 1)
    queue.enqueue(Job.REGISTER_WEBHOOKS, 2)
    queue.join()
    assert calls == [1, 2]
    assert any(r.getMessage() == "queue.inprocess.job_failed" for r in caplog.records)
