"""The resources library: merchants upload flyers and graphics or write posts (the program's
disclosure built in); ambassadors download them from the portal, which counts toward their
engagement."""

from __future__ import annotations

import logging
from typing import Any

from connector.domain.content import (
    ContentInvalid,
    Resource,
    ResourceKind,
    check_upload,
    safe_filename,
    storable,
    with_disclosure,
)
from connector.domain.shops import Shop
from connector.ports import Clock, FileStorage, IdGenerator, UnitOfWork
from connector.services.ambassadors import NotFound, ProgramError

log = logging.getLogger(__name__)

TITLE_MAX = 200
BODY_MAX = 5000


def _title(value: Any) -> str:
    if (
        not isinstance(value, str)
        or not 1 <= len(value.strip()) <= TITLE_MAX
        or not storable(value)
    ):
        raise ProgramError("invalid_title", f"title: 1 to {TITLE_MAX} characters")
    return value.strip()


def upload(
    uow: UnitOfWork,
    storage: FileStorage,
    ids: IdGenerator,
    shop: Shop,
    *,
    title: Any,
    kind: Any,
    filename: str,
    content_type: str,
    data: bytes,
) -> Resource:
    """Store a flyer or graphic. Wrong type, a name or bytes that do not match the type, an
    empty file: 422 ``invalid_file``; over the size limit: 413 ``too_large``."""
    assert shop.id is not None
    if kind not in (ResourceKind.FLYER.value, ResourceKind.GRAPHIC.value):
        raise ProgramError("invalid_kind", "kind is flyer or graphic (a post has no file)")
    clean_title = _title(title)
    try:
        stored_type = check_upload(filename, content_type, data)
    except ContentInvalid as exc:
        if exc.field == "too_large":
            raise ProgramError("too_large", str(exc).split(": ", 1)[1], status=413) from None
        raise ProgramError("invalid_file", str(exc).split(": ", 1)[1]) from None
    name = safe_filename(filename)
    key = f"{shop.id}/{ids.token(16)}/{name}"
    # The file first, so no row ever points at a missing file; a failed insert removes the
    # file again (best effort: a crash between the two still leaves an unreferenced file).
    storage.put(key, data, stored_type)
    try:
        with uow:
            resource = uow.content.add_resource(
                Resource(
                    id=None,
                    shop_id=shop.id,
                    title=clean_title,
                    kind=ResourceKind(kind),
                    filename=name,
                    content_type=stored_type,
                    size=len(data),
                    storage_key=key,
                )
            )
            uow.commit()
    except BaseException:
        storage.delete(key)
        raise
    log.info("resources.uploaded", extra={"shop": shop.domain, "size": len(data)})
    return resource


def add_post(uow: UnitOfWork, shop: Shop, *, title: Any, body: Any) -> Resource:
    """A pre-written post; the program's disclosure is added when the text lacks one."""
    assert shop.id is not None
    clean_title = _title(title)
    if not isinstance(body, str) or not 1 <= len(body.strip()) <= BODY_MAX or not storable(body):
        raise ProgramError("invalid_body", f"body: 1 to {BODY_MAX} characters")
    with uow:
        wording = uow.program.settings(shop.id).disclosure_text
        resource = uow.content.add_resource(
            Resource(
                id=None,
                shop_id=shop.id,
                title=clean_title,
                kind=ResourceKind.POST,
                body=with_disclosure(body, wording),
            )
        )
        uow.commit()
    return resource


def download(
    uow: UnitOfWork,
    storage: FileStorage,
    clock: Clock,
    shop: Shop,
    resource_id: int,
    ambassador_id: int | None = None,
) -> tuple[Resource, bytes]:
    """The file of a resource; counted, and for an ambassador noted as engagement."""
    assert shop.id is not None
    with uow:
        resource = uow.content.get_resource(shop.id, resource_id)
        if resource is None or resource.storage_key is None:
            raise NotFound("resource")
        data = storage.get(resource.storage_key)
        if data is None:
            raise NotFound("resource")
        uow.content.count_download(shop.id, resource_id)
        if ambassador_id is not None:
            uow.engagement.record(
                shop.id, ambassador_id, "resource_download", str(resource_id), clock.now()
            )
        uow.commit()
    return resource, data


def archive(uow: UnitOfWork, storage: FileStorage, shop: Shop, resource_id: int) -> None:
    assert shop.id is not None
    with uow:
        found = uow.content.archive_resource(shop.id, resource_id)
        if found is None:
            raise NotFound("resource")
        uow.commit()
    if found.storage_key:
        storage.delete(found.storage_key)


def resource_json(r: Resource) -> dict[str, Any]:
    return {
        "id": r.id,
        "title": r.title,
        "kind": r.kind.value,
        "filename": r.filename,
        "content_type": r.content_type,
        "size": r.size,
        "body": r.body,
        "downloads": r.downloads,
        "download_url": f"/api/v1/resources/{r.id}/file" if r.storage_key else None,
        "created_at": r.created_at.isoformat() if r.created_at else None,
    }
