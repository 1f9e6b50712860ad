"""The project's exception hierarchy.

Every error a user can cause (a bad file, an unknown concept, malformed or writing Cypher) raises
one of these, with a message that says what to do. Library errors are wrapped, never leaked.
"""

from __future__ import annotations


class KgdxError(Exception):
    """Base class of every error kgdx raises on purpose."""


class InputError(KgdxError, ValueError):
    """Bad user input: a corrupt or unsupported file, an empty field, a wrong type."""


class UnknownConceptError(InputError, KeyError):
    """A concept id that is not in the knowledge graph."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else "unknown concept"


class SchemaError(KgdxError):
    """A label, relation type or property that the graph schema does not define."""


class StoreError(KgdxError):
    """The graph store could not complete an operation (nothing was half-written)."""


class QueryError(KgdxError):
    """A Cypher query was rejected (writes on the read-only path, syntax, timeout, row limit)."""


class ConfigError(KgdxError):
    """Settings that cannot work (unknown backend name, missing path, bad value)."""


class ModelError(KgdxError):
    """A model could not be trained, loaded or applied (missing weights, shape mismatch)."""
