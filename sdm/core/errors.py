"""Exceptions raised by sdm (the checks that raise them for bad input are in sdm.core.checks).

Every message names what is wrong (table, index, position, file).
"""
from __future__ import annotations


class SdmError(Exception):
    """Base class of every error sdm raises on purpose."""


class InvalidInputError(SdmError, ValueError):
    """Bad arguments: out-of-range or negative ids, wrong dtype or shape, unknown table, bad file.

    Raised before anything is changed, so the store, cache and statistics are as they were.
    """


class StoreFormatError(SdmError):
    """A path that is not an sdm store, or a store written in an unknown format version."""


class CorruptionError(SdmError):
    """Stored data failed its checksum. The message names the table and page."""


class InfeasibleError(SdmError):
    """A capacity or latency budget cannot be met; the message says which constraint and by how much."""
