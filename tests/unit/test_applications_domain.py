"""Application rules without I/O: validation, social handles, client fingerprints, votes,
messages."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.domain.applications import (
    Application,
    ApplicationStatus,
    ApplicationVote,
    InvalidApplication,
    VoteChoice,
    approvals,
    approved_message,
    client_fingerprint,
    normalise_social,
    normalise_url,
    parse_submission,
    rejected_message,
    share_url,
)
from connector.domain.program import ApplicationQuestion

NOW = datetime(2026, 7, 1, 12, tzinfo=UTC)
QUESTIONS = (
    ApplicationQuestion("why", "Why?", required=True, kind="textarea"),
    ApplicationQuestion("link", "Best post", kind="url"),
)


def parse(**overrides):
    fields = {
        "first_name": " Ava ",
        "last_name": "Martin",
        "email": " Ava@Example.COM ",
        "answers": {"why": "  Because\r\nI do.  ", "link": ""},
        "social": {},
        "questions": QUESTIONS,
        "identity_known": False,
        **overrides,
    }
    return parse_submission(**fields)


def test_a_good_submission_is_trimmed_and_normalised():
    s = parse(social={"instagram": "@Ava.M", "website": "", "unknown": "ignored"})
    assert (s.first_name, s.last_name, s.email) == ("Ava", "Martin", "ava@example.com")
    assert [(a.id, a.label, a.answer) for a in s.answers] == [("why", "Why?", "Because\nI do.")]
    assert s.social == {"instagram": "Ava.M"}


def test_every_bad_field_is_named_at_once():
    with pytest.raises(InvalidApplication) as caught:
        parse(
            first_name="",
            email="nope",
            answers={"why": "", "link": "ftp://x"},
            social={"tiktok": "a b"},
        )
    assert set(caught.value.errors) == {
        "first_name",
        "email",
        "answers.why",
        "answers.link",
        "social.tiktok",
    }


def test_a_signed_in_customer_needs_no_name_or_email():
    s = parse(first_name="", email="", identity_known=True)
    assert (s.first_name, s.email) == ("", "")


@pytest.mark.parametrize(
    "network,value,expected",
    [
        ("instagram", "ava.m", "ava.m"),
        ("instagram", "@ava_m", "ava_m"),
        ("instagram", "https://www.instagram.com/ava.m/", "ava.m"),
        ("instagram", "instagram.com/ava.m?igsh=x", "ava.m"),
        ("tiktok", "https://www.tiktok.com/@ava.m", "ava.m"),
        ("youtube", "@AvaMakes", "AvaMakes"),
        ("youtube", "https://youtube.com/@AvaMakes/videos", "AvaMakes"),
        (
            "youtube",
            "https://www.youtube.com/channel/UC123abc",
            "https://www.youtube.com/channel/UC123abc",
        ),
        ("website", "ava.example.com/blog", "https://ava.example.com/blog"),
        ("website", "http://ava.example.com", "http://ava.example.com"),
    ],
)
def test_social_handles_and_links_are_normalised(network, value, expected):
    assert normalise_social(network, value) == expected


@pytest.mark.parametrize(
    "network,value",
    [
        ("instagram", "ava m"),
        ("instagram", "a" * 31),
        ("instagram", "https://evil.example.com/ava"),
        ("tiktok", "a"),
        ("youtube", "https://youtube.com/"),
        ("website", "javascript:alert(1)"),
        ("website", "data:text/html,<script>"),
        ("website", "https://user:pass@example.com"),
        ("website", "https://localhost"),
        ("website", "https://exa mple.com"),
        ("website", "https://example.com:99999"),
        ("website", "x" * 200 + ".com"),
        ("website", "https://example.com/\x00"),
    ],
)
def test_bad_social_values_are_refused(network, value):
    with pytest.raises(ValueError):
        normalise_social(network, value)


@given(st.text(max_size=300))
def test_a_normalised_url_is_always_http_or_https_with_a_dotted_host(value):
    try:
        url = normalise_url(value)
    except ValueError:
        return
    assert url.startswith(("http://", "https://")) and len(url) <= 500
    assert not any(ch.isspace() for ch in url)


def test_client_fingerprints_are_keyed_and_group_ipv6_by_64():
    a = client_fingerprint("key", "203.0.113.7")
    assert len(a) == 64 and "203" not in a
    assert a != client_fingerprint("other-key", "203.0.113.7")
    assert a != client_fingerprint("key", "203.0.113.8")
    assert a == client_fingerprint("key", "::ffff:203.0.113.7")  # IPv4-mapped IPv6
    assert client_fingerprint("key", "2001:db8:1:2::1") == client_fingerprint(
        "key", "2001:db8:1:2:ffff:ffff:ffff:ffff"
    )
    assert client_fingerprint("key", "2001:db8:1:2::1") != client_fingerprint(
        "key", "2001:db8:1:3::1"
    )
    assert client_fingerprint("key", None) == client_fingerprint("key", "garbage")


def test_approvals_count_each_reviewer_once():
    votes = [
        ApplicationVote("merchant:1", VoteChoice.APPROVE, NOW),
        ApplicationVote("merchant:1", VoteChoice.APPROVE, NOW),
        ApplicationVote("merchant:2", VoteChoice.REJECT, NOW),
        ApplicationVote("merchant:3", VoteChoice.APPROVE, NOW),
    ]
    assert approvals(votes) == 2


def _application(**kw):
    return Application(
        7, 1, 3, "ava@example.com", ApplicationStatus.PENDING, first_name="Ava", **kw
    )


def test_messages_carry_their_idempotency_key_code_and_link():
    welcome = approved_message(_application(), "Shop", "s.myshopify.com", "AVA-1")
    assert welcome.key == "application:7:approved" and welcome.to == "ava@example.com"
    assert "AVA-1" in welcome.body
    assert "https://s.myshopify.com/discount/AVA-1?redirect=%2F" in welcome.body
    no = rejected_message(_application(), "Shop", "Too few posts", date(2026, 9, 29))
    assert no.key == "application:7:rejected"
    assert "Reason: Too few posts" in no.body and "2026-09-29" in no.body
    assert (
        share_url("s.myshopify.com", "A/B") == "https://s.myshopify.com/discount/A%2FB?redirect=%2F"
    )
