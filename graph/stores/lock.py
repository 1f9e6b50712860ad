"""Hold an embedded database exclusively before deleting or replacing it.

LadybugDB locks a database it opens read-write with a POSIX write lock (``fcntl``) on the whole
``X.lbug`` file; a second read-write open fails. A read-only open takes no lock at all, so trying
to open the file, or testing for a lock, cannot see a reader. :func:`exclusive_database`
therefore does two things and keeps the first for as long as the caller deletes or replaces:

1. it takes an open-file-description write lock (``F_OFD_SETLK``) on ``X.lbug``. That conflicts
   with LadybugDB's lock in any process, this one included, so a writer (``kgdx serve``) is
   refused, and no writer can open the file until the caller is done (the check and the
   replacement do not race). OFD locks, unlike ``lockf``, are neither shared with nor dropped by
   this process's other handles on the file;
2. it looks through ``/proc/*/fd`` for any process holding ``X.lbug`` or its WAL open (readers
   included, e.g. a query worker opened read-only). Processes of other users are not visible
   there, and a reader could still open the file after this look: the lock cannot stop readers.

Where OFD locks are missing (not Linux) it falls back to ``lockf``, which does not see a holder
in this same process.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from graph.errors import StoreError

# struct flock on Linux: l_type, l_whence (short), l_start, l_len (off_t), l_pid (int), padding.
_FLOCK = "hhqqi4x"
_SETLK = getattr(fcntl, "F_OFD_SETLK", None)
_GETLK = getattr(fcntl, "F_OFD_GETLK", None)
# A handle closed while this process holds LadybugDB's own POSIX lock on the same file would drop
# that lock; such handles are kept open here instead.
_kept_open: list[int] = []


# The read-write store of this process open on each database file (by resolved path).
# LadybugDB lets one process open a file read-write twice, and the two handles do not see each
# other's writes (nor would their memories, graph.stores.prediction_memory): a second is refused.
_writers: weakref.WeakValueDictionary[str, object] = weakref.WeakValueDictionary()


def claim_writer(path: Path, store: object) -> str:
    """Make ``store`` this process's writer of the database at ``path``; the key to release it
    with (:func:`release_writer`).

    Raises:
        StoreError: another store of this process has it open for writing.
    """
    key = str(Path(path).resolve())
    if _writers.get(key) is not None:
        raise StoreError(
            f"{path} is already open for writing in this process; use that store, or close it "
            "first (two read-write handles of one process do not see each other's writes)"
        )
    _writers[key] = store
    return key


def release_writer(key: str, store: object) -> None:
    if _writers.get(key) is store:
        del _writers[key]


def _flock(kind: int) -> bytes:
    return struct.pack(_FLOCK, kind, os.SEEK_SET, 0, 0, 0)


def _lock_holder(fd: int) -> int | None:
    """The pid holding a conflicting lock on ``fd`` (-1: an OFD lock, pid unknown), or None."""
    if _GETLK is None:
        return -1
    kind, _, _, _, pid = struct.unpack(_FLOCK, fcntl.fcntl(fd, _GETLK, _flock(fcntl.F_WRLCK)))
    return None if kind == fcntl.F_UNLCK else pid


def _try_write_lock(fd: int) -> bool:
    try:
        if _SETLK is not None:
            fcntl.fcntl(fd, _SETLK, _flock(fcntl.F_WRLCK))
        else:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _describe(pid: int) -> str:
    if pid <= 0:
        return "another process"
    if pid == os.getpid():
        return "this process (another handle)"
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        command = " ".join(part.decode(errors="replace") for part in argv if part)
    except OSError:
        command = ""
    return f"process {pid}" + (f" ({command[:120]})" if command else "")


def open_by(paths: list[Path], *, ignore_fd: int | None = None) -> list[int]:
    """Pids of processes (this one included) that hold one of ``paths`` open, from ``/proc``.

    Args:
        paths: files to look for (compared after resolving symlinks).
        ignore_fd: a descriptor of this process not to count (the caller's own lock handle);
            the handles this module keeps open are never counted.
    """
    ignored = {str(fd) for fd in (*_kept_open, ignore_fd) if fd is not None}
    wanted = {str(p.resolve()) for p in paths}
    proc = Path("/proc")
    if not (proc / "self" / "fd").is_dir():
        return []
    me, holders = os.getpid(), []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:  # gone, or another user's process
            continue
        for fd in fds:
            if pid == me and fd.name in ignored:
                continue
            try:
                if os.readlink(fd) in wanted:
                    holders.append(pid)
                    break
            except OSError:
                continue
    return holders


def _refusal(path: Path, pid: int, action: str) -> StoreError:
    return StoreError(
        f"{path} is open in {_describe(pid)}; stop it (a `kgdx serve` or another kgdx command "
        f"using this database) before you {action}. Nothing was deleted or replaced."
    )


@contextmanager
def exclusive_database(path: Path, *, action: str) -> Iterator[None]:
    """Make sure no process has the database ``path`` open, and keep writers out meanwhile.

    Use it around the deletion or replacement of ``path`` and its side files; a path that does
    not exist yet is nothing to protect.

    Args:
        path: the database file (``X.lbug``) or a legacy database folder.
        action: what the caller is about to do, for the message (``"replace it"``).

    Raises:
        StoreError: another process (or another handle of this one) has the database open.
    """
    path = Path(path)
    if path.is_dir():  # a folder-layout database: look for holders of any file in it
        files = [p for p in path.rglob("*") if p.is_file()]
        holders = open_by(files)
        if holders:
            raise _refusal(path, holders[0], action)
        yield
        return
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        yield
        return
    except OSError as exc:
        raise StoreError(f"cannot lock {path} before you {action}: {exc}") from None
    keep = False
    try:
        if not _try_write_lock(fd):
            holder = _lock_holder(fd)
            keep = holder == os.getpid()
            raise _refusal(path, holder if holder is not None else -1, action)
        wal = path.with_name(path.name + ".wal")
        holders = open_by([path, wal], ignore_fd=fd)
        if holders:
            raise _refusal(path, holders[0], action)
        yield
    finally:
        if keep:
            _kept_open.append(fd)
        else:
            os.close(fd)
