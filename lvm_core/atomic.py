"""Write-then-rename helpers: a crash mid-write never leaves a half-written file in place.

Temporary files are named `.<name>.<pid>.<random>.tmp` beside their target and created with
mode 0666 minus the umask (like any file `open` makes; mkstemp's 0600 would hide run files
from colleagues on a shared server). Each file is fsync-ed before its rename and its folder
after, so a power cut leaves the old file or the new one, never an empty one.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .faults import write_point

TEMP_SUFFIX = ".tmp"


def temp_name(path: Path) -> Path:
    """A fresh temporary name beside `path` (hidden, ends in .tmp: swept by `remove_temporaries`)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


def current_umask() -> int:
    """The process umask (read from /proc where it can be, without changing it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def fsync_file(path: str | os.PathLike[str]) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """fsync a folder so a rename in it is on disk (some file systems cannot: ignored there)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    for p in sorted(path.rglob("*")):
        if p.is_file() and not p.is_symlink():
            fsync_file(p)
        elif p.is_dir():
            fsync_dir(p)
    fsync_dir(path)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        write_point(path)
        os.chmod(tmp, 0o666 & ~current_umask())  # a writer that made its own file (safetensors: 0600)
        fsync_file(tmp)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")


@contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary directory; on success it replaces `path` (an old one is removed last)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    os.mkdir(tmp, 0o777)  # the umask applies, as for any folder
    try:
        yield tmp
        write_point(path)
        fsync_tree(tmp)
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
        os.replace(tmp, path)
        fsync_dir(path.parent)
        if old is not None:
            shutil.rmtree(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def remove_temporaries(folder: str | os.PathLike[str], *, recursive: bool = False) -> list[str]:
    """Delete `.*.tmp` files and folders a killed writer left in `folder` (and, `recursive`, in
    every folder below it). Call it only while holding the folder's lock, so no live writer's
    temporary is taken. Returns their paths relative to `folder`."""
    folder = Path(folder)
    gone: list[str] = []
    if not folder.is_dir():
        return gone
    for root, dirs, files in os.walk(folder):
        for name in sorted(dirs + files):
            if name.startswith(".") and name.endswith(TEMP_SUFFIX):
                p = Path(root) / name
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
                gone.append(str(p.relative_to(folder)))
        dirs[:] = sorted(d for d in dirs if (Path(root) / d).exists()) if recursive else []
    return gone
