"""A clock for ``save_predictions`` (``graph.stores.ladybug_patients.datetime``): its stamps,
kept to the second, are whatever a test sets."""

from __future__ import annotations


class SaveClock:
    stamp = "2026-12-07T00:00:00+00:00"

    @classmethod
    def now(cls, tz=None):
        return cls

    @classmethod
    def isoformat(cls, timespec=None):
        return cls.stamp


def frozen_saves(monkeypatch, stamp: str) -> type[SaveClock]:
    """Saves stamped ``stamp`` until the test sets ``.stamp`` again; the clock."""
    import graph.stores.ladybug_patients as patients

    clock = type("Clock", (SaveClock,), {"stamp": stamp})
    monkeypatch.setattr(patients, "datetime", clock)
    return clock
