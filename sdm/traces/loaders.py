"""Readers for public trace formats; every one returns a `Trace`.

- Meta's embedding-lookup dataset (facebookresearch/dlrm_datasets): a gzip'd `torch.save` of
  `(indices, offsets, lengths)`; offsets hold T*B+1 entries, table-major (REFERENCE.md "Data").
- The DLRM reference trace format (facebookresearch/dlrm `dlrm_data_pytorch.py`,
  `read_trace_from_file`): one line of ids separated by ", " (text), or raw uint64 (binary).
- CSV with a header naming columns `sample`, `table` and `row` (aliases `index`, `id`).
Bad files raise `InvalidInputError` / `StoreFormatError` naming the file and what is wrong.
"""
from __future__ import annotations

import gzip
import io
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from sdm.core.errors import InvalidInputError, StoreFormatError
from sdm.traces.sampling import offsets_of
from sdm.traces.trace import Trace

_GZIP_MAGIC = b"\x1f\x8b"


def _num_rows(given, observed_max: np.ndarray, names: list[str], path: Path) -> list[int]:
    """Row counts: as given (checked against the ids seen) or max id + 1 per table."""
    if given is None:
        return [int(m) + 1 for m in observed_max]
    rows = [int(given)] * len(names) if np.ndim(given) == 0 else [int(x) for x in given]
    if len(rows) != len(names):
        raise InvalidInputError(f"{str(path)!r}: num_rows has {len(rows)} entries for {len(names)} tables")
    return rows


def load_meta_dataset(
    path: str | os.PathLike,
    *,
    num_rows: int | Sequence[int] | None = None,
    batch_size: int | None = None,
    table_names: Sequence[str] | None = None,
) -> Trace:
    """Load `indices, offsets, lengths = torch.load(gzip.open(path))` (plain `.pt` also accepted).

    `lengths` is [T, B]; table t, sample s is `indices[offsets[t*B+s]:offsets[t*B+s+1]]`. The file
    does not store table sizes, so `num_rows` defaults to max id + 1 per table. `batch_size` defaults
    to B (each file is one batch).
    """
    import torch  # imported here: loading text or npz traces should not pay for torch

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"trace {str(path)!r} does not exist")
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise StoreFormatError(f"{str(path)!r}: broken gzip stream: {exc}") from exc
    try:
        obj = torch.load(io.BytesIO(raw), weights_only=True, map_location="cpu")
    except Exception as exc:  # torch raises many types for a bad pickle
        raise StoreFormatError(
            f"{str(path)!r} is not a torch.save file of (indices, offsets, lengths) "
            f"(torch.load failed with {type(exc).__name__})"
        ) from exc
    if not (isinstance(obj, (tuple, list)) and len(obj) == 3):
        raise StoreFormatError(
            f"{str(path)!r}: expected a tuple (indices, offsets, lengths), got {type(obj).__name__}"
            + (f" of length {len(obj)}" if isinstance(obj, (tuple, list)) else "")
        )
    indices, offsets, lengths = (np.asarray(x.cpu().numpy() if hasattr(x, "cpu") else x) for x in obj)
    if lengths.ndim != 2:
        raise StoreFormatError(f"{str(path)!r}: lengths must be [tables, batch], got shape {lengths.shape}")
    T, B = lengths.shape
    if offsets.ndim != 1 or offsets.size != T * B + 1:
        raise StoreFormatError(
            f"{str(path)!r}: offsets must have T*B+1 = {T * B + 1} entries (table-major), got {offsets.size}"
        )
    offsets = offsets.astype(np.int64)
    if offsets[0] != 0 or offsets[-1] != indices.size or (np.diff(offsets) < 0).any():
        raise StoreFormatError(f"{str(path)!r}: offsets are not non-decreasing from 0 to {indices.size}")
    if not np.array_equal(np.diff(offsets), lengths.reshape(-1)):
        pos = int(np.flatnonzero(np.diff(offsets) != lengths.reshape(-1))[0])
        raise StoreFormatError(
            f"{str(path)!r}: lengths disagree with offsets at table {pos // B}, sample {pos % B}"
        )
    indices = indices.astype(np.int64)
    if indices.size and indices.min() < 0:
        pos = int(np.flatnonzero(indices < 0)[0])
        table = int(np.searchsorted(offsets, pos, side="right") - 1) // B
        raise InvalidInputError(f"{str(path)!r}: negative id {int(indices[pos])} at position {pos} (table {table})")
    names = [f"t{t}" for t in range(T)] if table_names is None else [str(n) for n in table_names]
    if len(names) != T:
        raise InvalidInputError(f"{str(path)!r}: {len(names)} table names for {T} tables")
    bounds = offsets[:: B]  # start of each table's block
    idx = [indices[bounds[t] : bounds[t + 1]] for t in range(T)]
    off = [offsets[t * B : (t + 1) * B + 1] - offsets[t * B] for t in range(T)]
    observed = np.array([i.max() if i.size else 0 for i in idx])
    rows = _num_rows(num_rows, observed, names, path)
    try:
        return Trace(names, rows, idx, off, int(batch_size or B))
    except InvalidInputError as exc:
        raise InvalidInputError(f"{str(path)!r}: {exc}") from exc


def load_dlrm_text(
    path: str | os.PathLike,
    *,
    num_rows: int | None = None,
    batch_size: int = 1024,
    pooling: int = 1,
    binary: bool | None = None,
    table_name: str = "t0",
) -> Trace:
    """Load a DLRM reference trace: a single table's stream of ids, cut into bags of `pooling`.

    Text form is one line `1, 5, 2, ...` (as `write_trace_to_file` writes it); binary form (files
    ending in .bin, or binary=True) is raw little-endian uint64. A final partial bag is dropped.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"trace {str(path)!r} does not exist")
    if int(pooling) <= 0:
        raise InvalidInputError(f"pooling must be > 0, got {pooling}")
    binary = path.suffix == ".bin" if binary is None else binary
    if binary:
        data = path.read_bytes()
        if len(data) % 8:
            raise StoreFormatError(f"{str(path)!r}: binary DLRM trace must be a whole number of uint64, got {len(data)} bytes")
        ids = np.frombuffer(data, dtype="<u8")
        if ids.size and ids.max() >= 2**63:
            raise InvalidInputError(f"{str(path)!r}: id at position {int(np.argmax(ids))} does not fit int64")
        ids = ids.astype(np.int64)
    else:
        text = path.read_text().strip().replace(",", " ")
        try:
            ids = np.array(text.split(), dtype=np.int64) if text else np.empty(0, np.int64)
        except ValueError:
            bad = next((i, tok) for i, tok in enumerate(text.split()) if not tok.lstrip("-").isdigit())
            raise InvalidInputError(f"{str(path)!r}: token {bad[1]!r} at position {bad[0]} is not an integer id") from None
        if ids.size and ids.min() < 0:
            pos = int(np.flatnonzero(ids < 0)[0])
            raise InvalidInputError(f"{str(path)!r}: negative id {int(ids[pos])} at position {pos}")
    p = int(pooling)
    S = ids.size // p
    if S == 0:
        raise InvalidInputError(f"{str(path)!r}: no complete sample ({ids.size} ids, pooling {p})")
    ids = ids[: S * p]
    rows = _num_rows(num_rows, np.array([ids.max()]), [table_name], path)
    try:
        return Trace([table_name], rows, [ids], [np.arange(S + 1, dtype=np.int64) * p], batch_size)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{str(path)!r}: {exc}") from exc


_ROW_COLUMNS = ("row", "index", "id")


def load_csv(
    path: str | os.PathLike,
    *,
    num_rows: int | Sequence[int] | None = None,
    batch_size: int = 1024,
) -> Trace:
    """Load a CSV of lookups with a header: columns `sample`, `table`, `row` (in any order).

    One line per lookup. Tables are names or numbers (sorted numerically if all numeric, else in
    order of first appearance); samples are integers, numbered in order of first appearance, and
    lines of one sample must be contiguous. A sample with no lookup in some table has an empty bag.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"trace {str(path)!r} does not exist")
    with open(path, newline="") as f:
        header = [h.strip().lower() for h in f.readline().strip().split(",")]
        body = f.read()
    if "sample" not in header or "table" not in header or not any(c in header for c in _ROW_COLUMNS):
        raise StoreFormatError(
            f"{str(path)!r}: CSV header must name columns sample, table and row; got {header}"
        )
    ci = {name: header.index(name) for name in header}
    row_col = next(ci[c] for c in _ROW_COLUMNS if c in ci)
    lines = [ln for ln in body.splitlines() if ln.strip()]
    if not lines:
        raise InvalidInputError(f"{str(path)!r}: CSV has a header but no lookups")
    cells = np.array([ln.split(",") for ln in lines], dtype=object) if len({ln.count(",") for ln in lines}) == 1 else None
    if cells is None or cells.shape[1] != len(header):
        counts = [ln.count(",") + 1 for ln in lines]
        bad = next(i for i, c in enumerate(counts) if c != len(header))
        raise StoreFormatError(f"{str(path)!r}: line {bad + 2} has {counts[bad]} fields, header has {len(header)}")
    cells = np.char.strip(cells.astype(str))
    sample_raw = _int_column(cells[:, ci["sample"]], "sample", path)
    rows_col = _int_column(cells[:, row_col], header[row_col], path)
    table_raw = cells[:, ci["table"]]
    if np.char.isdigit(table_raw).all():
        uniq = np.unique(table_raw.astype(np.int64))
        names = [str(u) for u in uniq]
        table = np.searchsorted(uniq, table_raw.astype(np.int64))
    else:
        uniq, first, inv = np.unique(table_raw, return_index=True, return_inverse=True)
        order = np.argsort(first)
        remap = np.empty_like(order)
        remap[order] = np.arange(order.size)
        names = [str(uniq[o]) for o in order]
        table = remap[inv]
    if rows_col.min() < 0:
        pos = int(np.flatnonzero(rows_col < 0)[0])
        raise InvalidInputError(f"{str(path)!r}: negative row id {int(rows_col[pos])} on line {pos + 2}")
    # samples: contiguous runs, numbered by first appearance
    new = np.concatenate([[True], sample_raw[1:] != sample_raw[:-1]])
    run_sample = sample_raw[new]
    if np.unique(run_sample).size != run_sample.size:
        seen = {}
        for k, s in enumerate(run_sample.tolist()):  # error path only
            if s in seen:
                line = int(np.flatnonzero(new)[k]) + 2
                raise InvalidInputError(f"{str(path)!r}: sample {s} appears again on line {line}; its lines must be contiguous")
            seen[s] = k
    sample = np.cumsum(new) - 1
    S, T = int(sample[-1]) + 1, len(names)
    idx, off = [], []
    for t in range(T):
        m = table == t
        idx.append(rows_col[m])
        off.append(offsets_of(np.bincount(sample[m], minlength=S)))
    observed = np.array([i.max() if i.size else 0 for i in idx])
    rows = _num_rows(num_rows, observed, names, path)
    try:
        return Trace(names, rows, idx, off, batch_size)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{str(path)!r}: {exc}") from exc


def _int_column(col: np.ndarray, name: str, path: Path) -> np.ndarray:
    try:
        return col.astype(np.int64)
    except ValueError:
        bad = int(np.flatnonzero(~np.char.isdigit(np.char.lstrip(col, "-")))[0])
        raise InvalidInputError(
            f"{str(path)!r}: column {name!r} on line {bad + 2} holds {str(col[bad])!r}, not an integer"
        ) from None
    except OverflowError:  # all digits, but some too long for int64 (error path: per-cell is fine)
        bad = next(i for i, v in enumerate(col.tolist()) if not -(2**63) <= int(v) < 2**63)
        raise InvalidInputError(
            f"{str(path)!r}: column {name!r} on line {bad + 2} holds {str(col[bad])!r}, beyond 64-bit integers"
        ) from None


def load_trace(path: str | os.PathLike, **kwargs) -> Trace:
    """Load any supported trace, picked by name: directory or .npz (sdm), .pt/.gz (Meta dataset),
    .csv, .bin (DLRM binary), anything else as DLRM text."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"trace {str(path)!r} does not exist")
    name = path.name.lower()
    if path.is_dir() or name.endswith(".npz"):
        return Trace.load(path, **kwargs)
    if name.endswith((".pt", ".pt.gz", ".gz", ".pth")):
        return load_meta_dataset(path, **kwargs)
    if name.endswith(".csv"):
        return load_csv(path, **kwargs)
    return load_dlrm_text(path, **kwargs)
