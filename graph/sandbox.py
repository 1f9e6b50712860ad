"""Confine a query worker process: read the database file only, no writes, no network.

Applied by :mod:`graph.query_worker` after its imports and before it opens the database, so
every thread LadybugDB starts afterwards inherits it (Landlock, ``no_new_privs`` and network
namespaces belong to a thread and its later children; a sandbox applied after the engine started
its thread pool would leave the threads that run the query unconfined).

What is used, in order, each where the kernel allows it:

1. ``setrlimit``: ``RLIMIT_AS`` (the memory cap, plus the address space LadybugDB reserves to
   map the database file), ``RLIMIT_FSIZE`` 0 (no file can grow; ``SIGXFSZ`` is ignored so a
   write fails with ``EFBIG`` instead of killing the worker), ``RLIMIT_CORE`` 0, a small
   ``RLIMIT_NOFILE``. Always applied.
2. ``prctl(PR_SET_NO_NEW_PRIVS)``: no privilege gain through ``execve`` (Landlock needs it).
3. ``unshare(CLONE_NEWNET)``: a fresh network namespace with no interface up, so no socket can
   reach the host's network or its loopback. Needs ``CAP_SYS_ADMIN`` (root, or a container that
   grants it); refused otherwise.
4. Landlock (Linux 5.13+), through its three system calls by ``ctypes``: every filesystem right
   the kernel's ABI knows is handled, and the only rule grants ``READ_FILE`` on the database
   file and its ``.wal``: no other file can be opened, nothing created, written, truncated,
   removed or executed. ABI 4+ also denies TCP bind/connect, ABI 6+ scopes abstract UNIX sockets
   and signals to the worker.

When Landlock is missing (old kernel, disabled, seccomp-filtered) or ``unshare`` is refused, one
warning is logged and the worker continues with what did apply (rlimits at least).
:class:`SandboxReport` says what was applied; the worker sends it back to the parent.

Why ``ctypes`` rather than the ``landlock`` package on PyPI: the whole interface is three system
calls and two structs, the package would add a dependency for 60 lines, and here the ABI level
and the fallback must be reported exactly.
"""

from __future__ import annotations

import ctypes
import logging
import os
import resource
import signal
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

# x86_64 / aarch64 (the generic syscall table): the same numbers on both.
_SYS_LANDLOCK_CREATE_RULESET = 444
_SYS_LANDLOCK_ADD_RULE = 445
_SYS_LANDLOCK_RESTRICT_SELF = 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38
_CLONE_NEWNET = 0x40000000

_FS_READ_FILE = 1 << 2
# Filesystem rights per ABI: 13 in ABI 1 (EXECUTE .. MAKE_SYM), then REFER, TRUNCATE, IOCTL_DEV.
_FS_RIGHTS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1  # the kernel's struct is __attribute__((packed))
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


@dataclass
class SandboxReport:
    """What :func:`apply_sandbox` could apply (``landlock_abi`` 0: Landlock not applied)."""

    landlock_abi: int = 0
    network_namespace: bool = False
    no_new_privs: bool = False
    rlimits: bool = False
    warnings: list[str] = field(default_factory=list)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when Landlock is unavailable."""
    abi = _libc().syscall(
        _SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), _LANDLOCK_CREATE_RULESET_VERSION
    )
    return max(abi, 0)


def _fs_rights(abi: int) -> int:
    return _FS_RIGHTS_BY_ABI[max(level for level in _FS_RIGHTS_BY_ABI if level <= abi)]


def _landlock(read_files: list[Path], abi: int) -> None:
    libc = _libc()
    attr = _RulesetAttr(handled_access_fs=_fs_rights(abi))
    size = 8
    if abi >= 4:
        attr.handled_access_net = _NET_BIND_TCP | _NET_CONNECT_TCP
        size = 16
    if abi >= 6:
        attr.scoped = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL
        size = 24
    ruleset = libc.syscall(
        _SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0
    )
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        for path in read_files:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                rule = _PathBeneathAttr(allowed_access=_FS_READ_FILE, parent_fd=fd)
                if (
                    libc.syscall(
                        _SYS_LANDLOCK_ADD_RULE,
                        ruleset,
                        _LANDLOCK_RULE_PATH_BENEATH,
                        ctypes.byref(rule),
                        0,
                    )
                    < 0
                ):
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule({path}) failed")
            finally:
                os.close(fd)
        if libc.syscall(_SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0) < 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)


def _limit(which: int, value: int) -> None:
    _soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))


def apply_sandbox(
    read_files: list[Path], *, address_space_bytes: int, max_open_files: int = 64
) -> SandboxReport:
    """Confine the calling process (see the module docstring); irreversible.

    Args:
        read_files: existing files the process may still open, read-only.
        address_space_bytes: ``RLIMIT_AS``.
        max_open_files: ``RLIMIT_NOFILE``.

    Returns:
        What was applied; each part that could not be is named in ``warnings`` (and logged).
    """
    report = SandboxReport()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    _limit(resource.RLIMIT_AS, address_space_bytes)
    _limit(resource.RLIMIT_FSIZE, 0)
    _limit(resource.RLIMIT_CORE, 0)
    _limit(resource.RLIMIT_NOFILE, max_open_files)
    report.rlimits = True
    libc = _libc()
    if len(os.listdir("/proc/self/task")) != 1:
        report.warnings.append("the process already runs threads: they stay unconfined")
    report.no_new_privs = libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
    if libc.unshare(_CLONE_NEWNET) == 0:
        report.network_namespace = True
    else:
        report.warnings.append(
            f"unshare(CLONE_NEWNET) refused ({os.strerror(ctypes.get_errno())}): "
            "the network is not cut off by a namespace"
        )
    abi = landlock_abi()
    if abi < 1:
        report.warnings.append("Landlock is unavailable: files outside the database stay readable")
    elif not report.no_new_privs:
        report.warnings.append("PR_SET_NO_NEW_PRIVS refused: Landlock not applied")
    else:
        try:
            _landlock(read_files, abi)
            report.landlock_abi = abi
        except OSError as exc:
            report.warnings.append(f"Landlock not applied: {exc}")
    if abi < 4 and not report.network_namespace:
        report.warnings.append("neither Landlock ABI 4 nor a network namespace: network is open")
    for warning in report.warnings:
        logger.warning("query sandbox: %s", warning)
    return report
