"""Both storage adapters keep the same contract: the local disk, and an S3-compatible bucket
(moto's S3 server on a loopback port, reached over HTTP through boto3 like AWS or MinIO)."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator

import pytest

from adapters.storage import InvalidKey, LocalFileStorage, S3FileStorage

BUCKET = "ambassador-test"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def s3(endpoint: str, prefix: str = "uploads") -> S3FileStorage:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    try:
        client.create_bucket(Bucket=BUCKET)
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    return S3FileStorage(BUCKET, prefix=prefix, endpoint_url=endpoint, region="us-east-1",
                         access_key_id="test", secret_access_key="test")


@pytest.fixture(params=["disk", "s3"])
def storage(request, tmp_path):
    if request.param == "disk":
        return LocalFileStorage(tmp_path / "uploads")
    return s3(request.getfixturevalue("s3_endpoint"))


def test_put_get_delete(storage):
    assert storage.get("1/abc/flyer.pdf") is None
    storage.put("1/abc/flyer.pdf", b"%PDF-1", "application/pdf")
    assert storage.get("1/abc/flyer.pdf") == b"%PDF-1"
    storage.put("1/abc/flyer.pdf", b"%PDF-2", "application/pdf")  # replaced whole
    assert storage.get("1/abc/flyer.pdf") == b"%PDF-2"
    storage.delete("1/abc/flyer.pdf")
    assert storage.get("1/abc/flyer.pdf") is None
    storage.delete("1/abc/flyer.pdf")  # deleting twice is fine


@pytest.mark.parametrize("key", ["../etc/passwd", "1/../../x", "/abs", "1/a b", "", "1//x"])
def test_keys_cannot_leave_the_store(storage, key):
    with pytest.raises(InvalidKey):
        storage.put(key, b"x", "text/plain")
    with pytest.raises(InvalidKey):
        storage.get(key)


def test_the_s3_adapter_writes_under_its_prefix(s3_endpoint):
    store = s3(s3_endpoint, prefix="shop-files")
    store.put("2/k/a.png", b"\x89PNG", "image/png")
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    head = client.head_object(Bucket=BUCKET, Key="shop-files/2/k/a.png")
    assert head["ContentType"] == "image/png"


def test_uploads_through_the_app_land_in_the_bucket(s3_endpoint, settings):
    from adapters.bootstrap import bootstrap
    from adapters.queue.inprocess import InProcessJobQueue
    from entrypoints import jobs
    from entrypoints.wsgi import create_app
    from tests.conftest import SHOP, install_shop
    from tests.fakes import FakeCommercePlatform
    from tests.tokens import session_token

    store = s3(s3_endpoint, prefix="app")
    c = bootstrap(settings, shopify=FakeCommercePlatform(),
                  jobs=InProcessJobQueue(threaded=False), storage=store)
    try:
        install_shop(c, SHOP)
        client = create_app(container=c).test_client()
        headers = {"Authorization": f"Bearer {session_token(SHOP)}"}
        png = b"\x89PNG\r\n\x1a\n" + b"\x01" * 32
        created = client.post("/api/v1/resources", headers=headers,
                              content_type="multipart/form-data",
                              data={"file": (io.BytesIO(png), "g.png", "image/png"),
                                    "title": "Graphic", "kind": "graphic"})
        assert created.status_code == 201, created.get_json()
        served = client.get(created.get_json()["download_url"], headers=headers)
        assert served.status_code == 200 and served.data == png
        local = settings.storage_dir
        assert local is not None
        assert not local.exists() or not any(p.is_file() for p in local.rglob("*"))
    finally:
        jobs.configure(None)
        c.close()


def test_settings_choose_the_bucket(tmp_path):
    from adapters.bootstrap import make_storage
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, "sqlite://", STORAGE_S3_BUCKET="b",
                             STORAGE_S3_ENDPOINT_URL="http://127.0.0.1:9",
                             STORAGE_S3_REGION="us-east-1")
    assert isinstance(make_storage(settings), S3FileStorage)
    assert isinstance(make_storage(make_settings(tmp_path, "sqlite://")), LocalFileStorage)
