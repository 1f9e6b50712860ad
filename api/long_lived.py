"""The server's long-lived objects out of the cyclic garbage collector's reach.

CPython's full (generation 2) collection walks every tracked container that has survived
earlier ones, and on the server's event loop it stops every request in flight while it does.
What the server keeps for its whole life is hundreds of thousands of such objects: the app and
its imports at startup, the diagnosis model with its KG views once loaded, the report extractor
(spaCy pipelines, the matcher's patterns, the linker's vocabulary: ~270,000) once made. With the extractor made
and not frozen, the load bench's phase 5 (reports stored beside the diagnoses) measured a full
collection every ~2.6 s of 55-75 ms, each on the loop (``gc.callbacks``), and the reads' p99
past its 50 ms target. :func:`freeze_long_lived` moves them to the permanent generation
(:func:`gc.freeze`), which collections skip.
"""

from __future__ import annotations

import gc
import threading

_lock = threading.Lock()


def freeze_long_lived(*, reclaim: bool = False) -> None:
    """Collect the young generations, then freeze every object tracked now (call it once
    something long-lived was made). The collection frees the recent garbage cycles of the making
    (a frozen cycle is never freed, even once unreachable): it walks the objects made since the
    last collections, not the old ones. Measured just after a report extractor was made: 0.4 ms,
    674 objects freed, and 206 more left to a full collection (169 ms), which would free them
    but costs what freezing saves. The objects of requests in flight that moment are
    frozen too (a few KB).

    Args:
        reclaim: unfreeze and collect everything first, so the cycles of what the new objects
            replace (a model reloaded) are freed; it walks everything once (~0.1-1 s, with the
            GIL held).
    """
    with _lock:
        if reclaim:
            gc.unfreeze()
            gc.collect()
        else:
            gc.collect(1)
        gc.freeze()


__all__ = ["freeze_long_lived"]
