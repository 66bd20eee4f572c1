"""File storage for uploaded resources: the local disk (the default; fine for one web dyno with
a persistent disk, or a shared volume).

An S3-compatible adapter is not built yet: with several web machines and no shared disk,
set ``STORAGE_DIR`` to a shared mount until it is.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

_KEY = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_.-]+)*$")


class InvalidKey(ValueError):
    pass


class LocalFileStorage:
    """Implements :class:`connector.ports.FileStorage` under one folder. Keys are relative
    paths of safe characters; none can leave the folder. Writes are atomic (a temporary file
    renamed into place), so a reader never sees half a file."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def _path(self, key: str) -> Path:
        if not _KEY.fullmatch(key) or ".." in key.split("/"):
            raise InvalidKey(key)
        return self._root / key

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
