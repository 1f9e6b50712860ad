"""Logging and progress: a Rich progress bar on a terminal, log lines otherwise."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
logger = logging.getLogger("kgdx")


def setup_logging(level: str = "INFO") -> None:
    """Configure the ``kgdx`` logger once (Rich handler on a terminal, plain otherwise)."""
    if logger.handlers:
        logger.setLevel(level)
        return
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.logging import RichHandler

        # stderr: Rich's default console is stdout, which `--json` output must have to itself
        handler: logging.Handler = RichHandler(console=Console(stderr=True), show_path=False)
    else:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a Rich progress bar on a terminal; log every 10% (or 100k items) otherwise."""
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import track as rich_track

        yield from rich_track(
            items,
            description=description,
            total=total,
            transient=True,
            console=Console(stderr=True),
        )
        return
    step = max(1, total // 10) if total else 100_000
    count = 0
    for count, item in enumerate(items, 1):
        if count % step == 0:
            logger.info("%s: %d%s", description, count, f"/{total}" if total else "")
        yield item
    logger.debug("%s: done (%d)", description, count)
