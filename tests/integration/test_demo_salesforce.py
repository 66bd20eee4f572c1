"""`ambassador demo` also starts the Salesforce emulator, connects it through the real OAuth
callback, and the ambassadors it enrols land on Contacts (existing ones matched by email)."""

from __future__ import annotations

import socket

from entrypoints.demo import run_demo


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_demo_connects_salesforce_and_shows_ambassador_fields_on_contacts(tmp_path):
    urls = run_demo(
        port=free_port(),
        emulator_port=free_port(),
        customers=8,
        instance=tmp_path / "demo",
        serve_forever=False,
        keep_running=True,
    )
    try:
        org = urls["salesforce_org"]
        contacts = org.contacts()
        ambassadors = [c for c in contacts if c.get("Ambassador_Id__c")]
        assert len(ambassadors) == 6 and len(contacts) == 6  # 3 matched + 3 created, no dupes
        assert all(c["Ambassador_Status__c"] == "active" for c in ambassadors)
        assert all(
            c["Ambassador_Id__c"].startswith("demo-store.myshopify.com:") for c in ambassadors
        )
        assert any(
            r.get("grant_type") == "authorization_code" and not r.get("error")
            for r in org.token_requests()
        )
    finally:
        urls["stop"]()
