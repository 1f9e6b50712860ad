"""Staging folders of embedded KG builds (and compactions), and the removal of those whose
builder is gone.

A build writes its fresh database into ``.<db>.build-XXXX/`` beside the target and swaps it in
at the end (:func:`swap_in`); a compaction (:mod:`kg_loaders.compact`) stages the same way. A build that is killed (SIGKILL, out of memory, power) cannot remove its folder, and
such folders hold up to tens of MB each. So each build holds an ``flock`` on a marker
``.<db>.build-XXXX.lock`` (with its pid and start time in it) for as long as it runs; the kernel
drops that lock when the builder dies however it dies, and the next build of the same target
removes every staging folder whose marker it can lock. The marker is created and locked before
its folder exists and removed after it, so a live build's folder always has a locked marker.
Folders without a marker (left by a kgdx before this one) have no live builder either.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from graph.log import logger

LOCK_SUFFIX = ".lock"


def staging_prefix(target: Path) -> str:
    """The name every staging folder of ``target`` starts with."""
    return f".{target.name}.build-"


def _lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _new_marker(target: Path) -> tuple[int, Path]:
    """A locked marker file that is still linked (a cleaner may unlink one it locked first)."""
    while True:
        fd, name = tempfile.mkstemp(
            prefix=staging_prefix(target), suffix=LOCK_SUFFIX, dir=target.parent
        )
        fcntl.flock(fd, fcntl.LOCK_EX)  # waits out a cleaner that locked it between the two calls
        marker = Path(name)
        folder = marker.with_name(marker.name.removesuffix(LOCK_SUFFIX))
        linked = os.fstat(fd).st_nlink > 0
        if linked and not folder.exists():
            return fd, marker
        if linked:  # a folder of that name already exists (a kgdx without markers left it)
            marker.unlink(missing_ok=True)
        os.close(fd)


@contextmanager
def staging_folder(target: Path) -> Iterator[Path]:
    """A fresh staging folder beside ``target``, marked as live until the block ends.

    The folder and its marker are removed when the block ends, whatever happens in it.
    """
    fd, marker = _new_marker(target)
    folder = marker.with_name(marker.name.removesuffix(LOCK_SUFFIX))
    try:
        os.write(fd, f"builder pid {os.getpid()}, started {time.ctime()}".encode())
        folder.mkdir()
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    finally:
        marker.unlink(missing_ok=True)
        os.close(fd)


def _size_mb(folder: Path) -> float:
    total = 0
    for path in folder.rglob("*"):
        try:
            total += path.stat().st_size if path.is_file() else 0
        except OSError:
            continue
    return total / 1e6


def remove_stale_staging(target: Path) -> list[Path]:
    """Remove the staging folders (and markers) of ``target`` whose builder is no longer running.

    A folder whose marker is locked belongs to a build still running (in any process, this one
    included) and is kept.

    Returns:
        The folders removed (each is logged with its size and the builder it came from).
    """
    if not target.parent.is_dir():
        return []
    prefix = staging_prefix(target)
    removed = []
    for entry in sorted(target.parent.glob(f"{prefix}*")):
        if entry.name.endswith(LOCK_SUFFIX):
            folder, marker = entry.with_name(entry.name.removesuffix(LOCK_SUFFIX)), entry
            if folder.exists():
                continue  # handled with its folder
        elif entry.is_dir():
            folder, marker = entry, entry.with_name(entry.name + LOCK_SUFFIX)
        else:
            continue
        try:
            fd = os.open(marker, os.O_RDWR)
        except FileNotFoundError:
            fd = None  # a folder from a kgdx without markers, or a marker already removed
        except OSError as exc:
            logger.warning("cannot check staging marker %s: %s", marker, exc)
            continue
        try:
            if fd is not None and not _lock(fd):
                continue  # its builder is alive
            builder = b"" if fd is None else os.pread(fd, 200, 0)
            if folder.is_dir():
                size = _size_mb(folder)
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
                logger.warning(
                    "removed the staging folder of an interrupted KG build: %s (%.1f MB, %s)",
                    folder,
                    size,
                    builder.decode(errors="replace") or "no marker",
                )
            marker.unlink(missing_ok=True)
        finally:
            if fd is not None:
                os.close(fd)
    return removed


# LadybugDB's own files beside a database X.lbug (seen with strace): X.lbug.wal and the rest.
# Only these are removed or moved with it: a user's X.lbug.bak beside it stays.
# ".wal.checkpoint" is the log a checkpoint renames before it applies it (replayed on open).
SIDE_SUFFIXES = (
    ".wal",
    ".wal.checkpoint",
    ".shadow",
    ".checkpoint.intent.lock",
    ".checkpoint.apply.lock",
)


def side_names(database: Path) -> list[Path]:
    """Where LadybugDB keeps its side files of ``database`` (whether they exist or not)."""
    return [database.with_name(database.name + suffix) for suffix in SIDE_SUFFIXES]


def side_files(database: Path) -> list[Path]:
    """LadybugDB's side files of ``database`` that exist."""
    return [path for path in side_names(database) if path.exists()]


def swap_in(staging: Path, target: Path, given: Path | None = None) -> None:
    """Replace ``target`` (a database file or folder, with side files) by the database of the same
    name in ``staging`` (a KG build's or a compaction's); call it holding
    :func:`graph.stores.lock.exclusive_database` on ``target``. ``given``: the symlink that
    names ``target``, if it was opened by one (LadybugDB keeps its log beside that name: the
    old database's is removed too). A file keeps the permissions and, where this process may
    set it, the owner of the one it replaces."""
    built = staging / target.name
    old_side = side_files(target) + (side_files(given) if given not in (None, target) else [])
    if target.is_dir():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        shutil.rmtree(old, ignore_errors=True)
    elif target.exists():
        _keep_access(target, built)
    for path in old_side:  # a WAL of the old database must not be replayed on the new one
        path.unlink(missing_ok=True)
    os.replace(built, target)
    for path in side_files(built):
        os.replace(path, target.parent / path.name)


def _keep_access(old: Path, new: Path) -> None:
    """Give ``new`` the mode bits (a patient store may be 0600) and owner of ``old``."""
    status = old.stat()
    os.chmod(new, status.st_mode & 0o7777)
    try:
        os.chown(new, status.st_uid, status.st_gid)
    except PermissionError:  # only root may give a file away: keep at least its group
        try:
            os.chown(new, -1, status.st_gid)
        except PermissionError:
            pass
        if new.stat().st_uid != status.st_uid:
            logger.warning(
                "%s now belongs to this user (uid %d), not to uid %d as before: only root can "
                "keep its owner; give it back with chown if a service user runs kgdx",
                old, os.getuid(), status.st_uid,
            )  # fmt: skip
