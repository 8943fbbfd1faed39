"""Stable names for input files, for the ids of the documents read from them.

A document id made from an input's absolute path changes when the corpus moves to
another folder or machine, which breaks lineage (``parent_id``) and reproducibility.
A file's stable name is its path relative to the root of its source -- the folder a
glob pattern starts from (:func:`glob_root`) -- and for a remote file the path of
its URL: it stays the same wherever the corpus lives. Names are relative paths, not
basenames, so that same-named files in different subfolders stay apart.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import PurePath
from urllib.parse import urlsplit

GLOB_MAGIC = re.compile(r"[*?[]")  # what makes a path component a pattern for glob.glob


def is_url(path: str) -> bool:
    return "://" in path


def relative_name(path: str, root: str) -> str:
    """``path`` relative to ``root`` (a folder, or a URL prefix for a URL), as a posix path."""
    if is_url(path):
        prefix = root.rstrip("/") + "/"
        name = path[len(prefix):] if path.startswith(prefix) else ""
    else:
        file, folder = PurePath(os.path.abspath(path)), PurePath(os.path.abspath(root))
        name = file.relative_to(folder).as_posix() if file.is_relative_to(folder) else ""
    if name in ("", "."):
        raise ValueError(f"{path} is not inside its source root {root}")
    return name


def require_unique(names: Mapping[str, str]) -> None:
    """Raises ValueError when two paths share a name: their documents' ids would collide."""
    paths_by_name: dict[str, str] = {}
    for path, name in names.items():
        other = paths_by_name.setdefault(name, path)
        if other != path:
            raise ValueError(f"{other} and {path} would both be named {name!r}: document ids must be unique")


def stable_names(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``{path: name}`` for ``(path, root)`` pairs, each name the path relative to its
    root (:func:`relative_name`). A path listed twice keeps its first root's name.
    Raises ValueError for a path outside its root and for two paths given one name."""
    names: dict[str, str] = {}
    for path, root in pairs:
        if path not in names:
            names[path] = relative_name(path, root)
    require_unique(names)
    return names


def glob_root(pattern: str) -> str:
    """The longest leading folder of a glob pattern without glob characters:
    ``/data/cc/**/*.warc.gz`` -> ``/data/cc``; ``/data/x.warc.gz`` -> ``/data``."""
    parts = pattern.split("/")[:-1]  # the last part names files, never the root
    leading = []
    for part in parts:
        if GLOB_MAGIC.search(part):
            break
        leading.append(part)
    return "/".join(leading) or ("/" if pattern.startswith("/") else ".")


def url_path(url: str) -> str:
    """The path of a URL without its leading slash: the same file on an https mirror and
    in an s3 bucket (whose name is the URL's host) gets one name."""
    return urlsplit(url).path.lstrip("/")


def default_names(paths: Iterable[str]) -> dict[str, str]:
    """Names for a source given none: URLs by their path, local files relative to the
    deepest folder holding them all. They survive moving that folder, but change when
    the list of files spans a wider folder: pass names for ids that must not."""
    paths = list(dict.fromkeys(paths))
    local = [os.path.dirname(os.path.abspath(path)) for path in paths if not is_url(path)]
    root = os.path.commonpath(local) if local else None
    names = {path: url_path(path) if is_url(path) else relative_name(path, root) for path in paths}
    require_unique(names)
    return names


def source_names(paths: Iterable[str], names: Mapping[str, str] | None) -> dict[str, str]:
    """Each path's name: its entry in ``names``, else the path itself; with no
    ``names`` at all, :func:`default_names`. Raises ValueError for a shared name."""
    if names is None:
        return default_names(paths)
    resolved = {path: names.get(path, path) for path in paths}
    require_unique(resolved)
    return resolved
