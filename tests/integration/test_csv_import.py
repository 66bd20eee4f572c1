"""CSV import: good rows in, bad rows reported with the reason, nothing half-applied."""

from __future__ import annotations

CSV = """Email,First_Name,Last_Name,Tier,Code
zoe@example.com,Zoe,Haddad,,ZOE-2026
not-an-email,Bad,Row,,
omar@example.com,Omar,Larsen,Gold,
ines@example.com,Ines,Moreau,,has space
zoe@example.com,Zoe,Again,,
yuki@example.com,Yuki,Ito,,
"""


def post_csv(live, text):
    return live.api("POST", "/ambassadors/import", content=text.encode())


def test_good_rows_in_bad_rows_reported(live):
    live.install()
    response = post_csv(live, CSV)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["counts"] == {"enrolled": 2, "existing": 1, "rejected": 3}
    reasons = {r["line"]: r["code"] for r in report["rejected"]}
    assert reasons == {3: "invalid_email", 4: "invalid_tier", 5: "invalid_code"}
    assert report["enrolled"][0]["code"] == "ZOE-2026"
    emails = {a["email"] for a in live.api("GET", "/ambassadors").json()["items"]}
    assert emails == {"zoe@example.com", "yuki@example.com"}  # rejected rows left nothing


def test_a_file_that_is_not_our_csv_is_refused_whole(live):
    live.install()
    for text, code in (("name,phone\nx,1\n", "invalid_csv"),
                       ("email,password\na@b.co,x\n", "invalid_csv")):
        response = post_csv(live, text)
        assert response.status_code == 422 and response.json()["error"]["code"] == code
    bad_bytes = live.api("POST", "/ambassadors/import", content=b"\xff\xfeemail\n")
    assert bad_bytes.status_code == 422
    assert live.api("GET", "/ambassadors").json()["items"] == []
