"""Input files on local disk or in object storage, through fsspec: listing, opening, fingerprints.

A source's ``storage`` names where its store is and how to sign (endpoint, anonymous, profile);
credentials never go in the config: s3fs takes them from the environment (``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, an instance role), as every AWS client does.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping
from importlib.util import find_spec

import fsspec

from curation.errors import UserError

GLOB_CHARS = "*?["
PACKAGE_OF_PROTOCOL = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs"}


class MissingPackage(UserError, ImportError):
    pass


def is_url(path: str) -> bool:
    return "://" in path


def protocol_of(path: str) -> str:
    return path.split("://", 1)[0] if is_url(path) else "file"


def require_package(path: str, hint: str = "") -> None:
    """fsspec's message for a missing filesystem package is vague: name the package."""
    package = PACKAGE_OF_PROTOCOL.get(protocol_of(path))
    if package and find_spec(package) is None:
        raise MissingPackage(f"reading {path} needs the {package} package (pip install {package}){hint}")


def fsspec_options(storage: Mapping | None) -> dict:
    """A source's storage settings as fsspec keyword arguments (s3fs's names)."""
    storage = storage or {}
    options = {}
    if storage.get("endpoint_url"):
        options["endpoint_url"] = storage["endpoint_url"]
    if storage.get("anonymous"):
        options["anon"] = True
    if storage.get("profile"):
        options["profile"] = storage["profile"]
    return options


def filesystem(path: str, storage: Mapping | None = None):
    """``(fs, path inside fs)`` for a local path or URL."""
    require_package(path)
    options = fsspec_options(storage) if is_url(path) and not path.startswith(("http://", "https://")) else {}
    return fsspec.core.url_to_fs(path, **options)


def open_binary(path: str, storage: Mapping | None = None):
    """A binary file object for a local path or an object-storage URL."""
    fs, inner = filesystem(path, storage)
    return fs.open(inner, "rb")


def expand(pattern: str, storage: Mapping | None = None, folders: bool = False) -> list[str]:
    """What a glob pattern matches, sorted: local paths, or full URLs for a store. Files only,
    unless ``folders`` (a dataset saved to a folder is one input)."""
    if not is_url(pattern):
        return sorted(path for path in glob.glob(pattern, recursive=True) if folders or os.path.isfile(path))
    fs, inner = filesystem(pattern, storage)
    wanted = (lambda path: fs.exists(path)) if folders else fs.isfile
    if not any(char in inner for char in GLOB_CHARS):
        return [pattern] if wanted(inner) else []
    return sorted(fs.unstrip_protocol(path) for path in fs.glob(inner) if wanted(path))


def files_under(path: str, storage: Mapping | None = None) -> list[str]:
    """Every file in a folder and its subfolders (a file stands for itself), sorted."""
    if not is_url(path):
        if os.path.isfile(path):
            return [path]
        return sorted(os.path.join(folder, name) for folder, _, names in os.walk(path) for name in names)
    fs, inner = filesystem(path, storage)
    return [path] if fs.isfile(inner) else sorted(fs.unstrip_protocol(found) for found in fs.find(inner))


def remote_fingerprint(url: str, storage: Mapping | None = None) -> dict:
    """Size, modification time and the store's content tag (ETag) of an object, without reading it."""
    fs, inner = filesystem(url, storage)
    info = fs.info(inner)
    modified = info.get("LastModified") or info.get("mtime") or info.get("last_modified") or ""
    found = {"bytes": int(info.get("size") or 0), "mtime": str(modified)}
    tag = info.get("ETag") or info.get("etag") or info.get("md5Hash")
    if tag:
        found["etag"] = str(tag).strip('"')
    return found
