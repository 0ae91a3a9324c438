"""Checksums on the page store's LMDB records: every value is sealed with the xxh3_64 of its key and
payload, and unsealed (checked) on read.

A sealed value is `RECORD_MAGIC` (8 bytes) + xxh3_64(key + payload) (8 bytes, little-endian) +
payload. The key is inside the checksum so a value moved under another key (a page-table segment of
another table, say) is caught too. Values written by format 1 (the landed version) carry no seal;
they are recognised because none can start with the magic: JSON starts with a printable character,
a page-table segment with the little-endian offset of its first page, whose high byte is 0 below
2**56 bytes, and a slot segment with a row slot, likewise below 2**56. Whether an unsealed value is
accepted is the caller's decision (`legacy_ok`): only stores that hold format-1 records do.
"""
from __future__ import annotations

import numpy as np

from sdm.tiers.page_format import checksum

RECORD_MAGIC = b"\xffsdmrec\x01"   # high byte 0x01 and low byte 0xff: no format-1 value starts with this
SEAL_BYTES = len(RECORD_MAGIC) + 8


class SealError(ValueError):
    """A record's seal is wrong; the message says how (callers turn it into CorruptMetadataError)."""


def seal(key: bytes, payload: bytes) -> bytes:
    """`payload` with the checksum header that `unseal` checks."""
    digest = checksum(key + payload).to_bytes(8, "little")
    return RECORD_MAGIC + digest + payload


def is_sealed(raw: bytes) -> bool:
    return raw[: len(RECORD_MAGIC)] == RECORD_MAGIC


def unseal(key: bytes, raw: bytes, *, legacy_ok: bool) -> tuple[bytes, bool]:
    """(payload, was_sealed). An unsealed value is returned as is when `legacy_ok` (a format-1 record,
    whose fields the caller must bound-check), else SealError; a sealed one must match its checksum."""
    raw = bytes(raw)
    if not is_sealed(raw):
        if not legacy_ok:
            raise SealError("has no checksum header (this store writes every record with one)")
        return raw, False
    if len(raw) < SEAL_BYTES:
        raise SealError(f"is {len(raw)} bytes, shorter than its checksum header")
    payload = raw[SEAL_BYTES:]
    want = int.from_bytes(raw[len(RECORD_MAGIC) : SEAL_BYTES], "little")
    if checksum(key + payload) != want:
        raise SealError("failed its xxh3_64 checksum")
    return payload, True


def seal_array(key: bytes, arr: np.ndarray) -> bytes:
    return seal(key, np.ascontiguousarray(arr).tobytes())
