"""The in-memory trace type: per table, lookups grouped into samples (bags), samples into batches.

On disk a trace is either one `.npz` file (small traces; read fully into memory) or a directory
holding `meta.json` and one `.npy` per array (large traces; opened memory-mapped, so a trace larger
than DRAM can still be profiled and replayed batch by batch).
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from sdm.core.atomic_file import check_header, read_json, require_file, write_atomically
from sdm.core.checks import bag_offsets, ids_in_range, integer_array, whole_number
from sdm.core.errors import InvalidInputError, StoreFormatError

TRACE_FORMAT = "sdm-trace"
TRACE_VERSION = 1

Bag = tuple[np.ndarray, np.ndarray]  # (indices, offsets from 0) of one table in one batch


@dataclass(eq=False)
class Trace:
    """Lookups of `len(table_names)` tables over the same samples.

    `indices[t]` holds table t's row ids with samples in time order; `offsets[t]` has
    `num_samples + 1` entries and bag s of table t is `indices[t][offsets[t][s]:offsets[t][s+1]]`.
    Consecutive runs of `batch_size` samples form a batch (the last one may be short).
    Construction validates everything and raises `InvalidInputError` naming table and position.
    """

    table_names: list[str]
    num_rows: list[int]
    indices: list[np.ndarray]
    offsets: list[np.ndarray]
    batch_size: int
    _table_base: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.table_names = [str(n) for n in self.table_names]
        self.num_rows = [whole_number(n, f"num_rows[{t}] of trace", minimum=1) for t, n in enumerate(self.num_rows)]
        self.indices = [integer_array(a, f"indices of table {n!r}") for a, n in zip(self.indices, self.table_names)]
        self.offsets = [integer_array(a, f"offsets of table {n!r}") for a, n in zip(self.offsets, self.table_names)]
        self.batch_size = whole_number(self.batch_size, "batch_size", minimum=1)
        self.validate()
        self._table_base = np.concatenate([[0], np.cumsum(self.num_rows[:-1], dtype=np.int64)]).astype(np.int64)

    # ----------------------------------------------------------------------------------- checks
    def validate(self) -> None:
        """Check shapes, offsets and id ranges; every error names the table and the position."""
        T = len(self.table_names)
        if T == 0:
            raise InvalidInputError("a trace needs at least one table")
        if len(set(self.table_names)) != T:
            raise InvalidInputError(f"duplicate table names in trace: {self.table_names}")
        for what, seq in (("num_rows", self.num_rows), ("indices", self.indices), ("offsets", self.offsets)):
            if len(seq) != T:
                raise InvalidInputError(f"trace has {T} table names but {len(seq)} entries in {what}")
        if self.batch_size <= 0:
            raise InvalidInputError(f"batch_size must be > 0, got {self.batch_size}")
        num_samples = None
        for t, name in enumerate(self.table_names):
            off = self.offsets[t]
            if off.ndim == 1 and off.size:
                if num_samples is None:
                    num_samples = off.size - 1
                elif off.size - 1 != num_samples:
                    raise InvalidInputError(
                        f"table {name!r} has {off.size - 1} samples but table {self.table_names[0]!r} has {num_samples}"
                    )
            check_bags(name, self.indices[t], off, self.num_rows[t])

    # ------------------------------------------------------------------------------- properties
    @property
    def num_tables(self) -> int:
        return len(self.table_names)

    @property
    def num_samples(self) -> int:
        return int(self.offsets[0].size - 1)

    @property
    def num_batches(self) -> int:
        return -(-self.num_samples // self.batch_size)

    @property
    def num_lookups(self) -> int:
        return int(sum(int(i.size) for i in self.indices))

    @property
    def table_base(self) -> np.ndarray:
        """Start of each table in the global id space (length num_tables, exclusive cumsum of num_rows)."""
        return self._table_base

    @property
    def total_rows(self) -> int:
        return int(sum(self.num_rows))

    def table_index(self, table: int | str) -> int:
        if isinstance(table, str):
            try:
                return self.table_names.index(table)
            except ValueError:
                raise InvalidInputError(f"unknown table {table!r}; trace has {self.table_names}") from None
        t = int(table)
        if not 0 <= t < self.num_tables:
            raise InvalidInputError(f"table index {t} out of range [0, {self.num_tables})")
        return t

    def pooling_factors(self) -> np.ndarray:
        """Mean lookups per sample of each table."""
        return np.array([i.size / max(1, self.num_samples) for i in self.indices])

    # ------------------------------------------------------------------------------------ access
    def _sample_range(self, b: int) -> tuple[int, int]:
        if not 0 <= b < self.num_batches:
            raise InvalidInputError(f"batch {b} out of range [0, {self.num_batches})")
        s0 = b * self.batch_size
        return s0, min(s0 + self.batch_size, self.num_samples)

    def batch(self, b: int) -> list[Bag]:
        """Per table (indices, offsets) of batch b, offsets rebased to start at 0 (len = samples + 1)."""
        s0, s1 = self._sample_range(int(b))
        out = []
        for idx, off in zip(self.indices, self.offsets):
            o = np.asarray(off[s0 : s1 + 1])
            out.append((np.asarray(idx[o[0] : o[-1]]), o - o[0]))
        return out

    def iter_batches(self) -> Iterator[list[Bag]]:
        for b in range(self.num_batches):
            yield self.batch(b)

    def table_stream(self, t: int | str) -> np.ndarray:
        """Table t's row ids in time order (a view; memory-mapped for directory traces)."""
        return self.indices[self.table_index(t)]

    def global_stream(self, start_batch: int = 0, stop_batch: int | None = None) -> np.ndarray:
        """All lookups as global ids `table_base[t] + row`, ordered by batch, then table, then sample.

        This is the order in which a batched inference server touches rows, so caches replay it.
        Built with one gather (no per-batch Python), for batches [start_batch, stop_batch).
        """
        stop_batch = self.num_batches if stop_batch is None else int(stop_batch)
        if not 0 <= start_batch <= stop_batch <= self.num_batches:
            raise InvalidInputError(
                f"batch range [{start_batch}, {stop_batch}) not within [0, {self.num_batches}]"
            )
        nb, T = stop_batch - start_batch, self.num_tables
        if nb == 0:
            return np.empty(0, dtype=np.int64)
        sample_cut = np.minimum(np.arange(start_batch, stop_batch + 1) * self.batch_size, self.num_samples)
        # pos[t, k]: position in table t's indices where batch start_batch + k begins
        pos = np.stack([np.asarray(off)[sample_cut] for off in self.offsets])  # [T, nb + 1]
        seg_len = (pos[:, 1:] - pos[:, :-1]).T.reshape(-1)  # (batch, table) order
        seg_src = pos[:, :-1].T.reshape(-1)
        table_of_seg = np.tile(np.arange(T), nb)
        # Gather from one concatenation of the touched parts of every table's indices.
        lo, hi = pos[:, 0], pos[:, -1]
        cat_start = np.concatenate([[0], np.cumsum(hi - lo)[:-1]])
        cat = np.concatenate(
            [np.asarray(self.indices[t][lo[t] : hi[t]]) + self._table_base[t] for t in range(T)]
        )
        src = cat_start[table_of_seg] + (seg_src - lo[table_of_seg])
        out_start = np.concatenate([[0], np.cumsum(seg_len)[:-1]])
        total = int(seg_len.sum())
        gather = np.repeat(src - out_start, seg_len) + np.arange(total, dtype=np.int64)
        return cat[gather]

    def batch_of_lookup(self) -> np.ndarray:
        """Batch number of each entry of `global_stream()` (for per-batch statistics)."""
        sample_cut = np.minimum(np.arange(self.num_batches + 1) * self.batch_size, self.num_samples)
        per_batch = sum(np.diff(np.asarray(off)[sample_cut]) for off in self.offsets)
        return np.repeat(np.arange(self.num_batches, dtype=np.int64), per_batch)

    def subset(self, tables: Sequence[int | str] | None = None, num_batches: int | None = None) -> "Trace":
        """A trace of some tables and/or the first `num_batches` batches (views where possible)."""
        ts = list(range(self.num_tables)) if tables is None else [self.table_index(t) for t in tables]
        nb = self.num_batches if num_batches is None else min(whole_number(num_batches, "num_batches"), self.num_batches)
        s1 = min(nb * self.batch_size, self.num_samples)
        idx, off = [], []
        for t in ts:
            o = np.asarray(self.offsets[t][: s1 + 1])
            idx.append(self.indices[t][: o[-1]])
            off.append(o)
        return Trace([self.table_names[t] for t in ts], [self.num_rows[t] for t in ts], idx, off, self.batch_size)

    # -------------------------------------------------------------------------------------- I/O
    def _meta(self) -> dict:
        return {
            "format": TRACE_FORMAT,
            "version": TRACE_VERSION,
            "table_names": self.table_names,
            "num_rows": self.num_rows,
            "batch_size": self.batch_size,
            "num_samples": self.num_samples,
            "num_lookups": self.num_lookups,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write to `path`: a `.npz` file if it ends in .npz, else a directory of .npy + meta.json.

        Built at a temporary name and renamed (sdm.core.atomic_file), so a crash never leaves a
        half-written trace.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)

        def write_npz(tmp: Path) -> None:
            arrays = {f"indices_{t}": np.asarray(a) for t, a in enumerate(self.indices)}
            arrays |= {f"offsets_{t}": np.asarray(a) for t, a in enumerate(self.offsets)}
            arrays["meta_json"] = np.frombuffer(json.dumps(self._meta()).encode(), dtype=np.uint8)
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)

        def write_dir(tmp: Path) -> None:
            tmp.mkdir()
            for t in range(self.num_tables):
                np.save(tmp / f"indices_{t}.npy", np.asarray(self.indices[t]))
                np.save(tmp / f"offsets_{t}.npy", np.asarray(self.offsets[t]))
            (tmp / "meta.json").write_text(json.dumps(self._meta(), indent=1))

        return write_atomically(path, write_npz if path.suffix == ".npz" else write_dir)

    @classmethod
    def load(cls, path: str | os.PathLike, *, mmap: bool = True) -> "Trace":
        """Read a trace written by `save` (directory form is memory-mapped unless mmap=False).

        A missing path is a MissingFileError (also a FileNotFoundError); a file that is not an sdm
        trace, or of another format version, a StoreFormatError naming it."""
        path = require_file(path, "trace")
        try:
            if path.is_dir():
                meta_file = path / "meta.json"
                if not meta_file.exists():
                    raise StoreFormatError(f"{str(path)!r} is a directory but has no meta.json: not an sdm trace")
                meta = read_json(meta_file, kind="trace", file_format=TRACE_FORMAT, version=TRACE_VERSION)
                mode = "r" if mmap else None
                T = len(meta["table_names"])
                idx = [np.load(path / f"indices_{t}.npy", mmap_mode=mode) for t in range(T)]
                off = [np.load(path / f"offsets_{t}.npy", mmap_mode=mode) for t in range(T)]
            else:
                with open(path, "rb") as f:
                    if f.read(4) != b"PK\x03\x04":
                        raise StoreFormatError(f"{str(path)!r} is not an .npz file (not a zip archive)")
                with np.load(path, allow_pickle=False) as z:
                    if "meta_json" not in z.files:
                        raise StoreFormatError(f"{str(path)!r} is an .npz without meta_json: not an sdm trace")
                    meta = check_header(json.loads(bytes(z["meta_json"]).decode()), path, kind="trace",
                                        file_format=TRACE_FORMAT, version=TRACE_VERSION)
                    T = len(meta["table_names"])
                    idx = [z[f"indices_{t}"] for t in range(T)]
                    off = [z[f"offsets_{t}"] for t in range(T)]
        except (zipfile.BadZipFile, OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
            if isinstance(exc, InvalidInputError):
                raise
            raise StoreFormatError(f"cannot read trace {str(path)!r}: {exc}") from exc
        try:
            return cls(meta["table_names"], meta["num_rows"], idx, off, meta["batch_size"])
        except InvalidInputError as exc:
            raise InvalidInputError(f"trace {str(path)!r}: {exc}") from exc

    def __repr__(self) -> str:
        return (
            f"Trace(tables={self.num_tables}, samples={self.num_samples}, batch_size={self.batch_size}, "
            f"batches={self.num_batches}, lookups={self.num_lookups})"
        )


def check_bags(table: str, indices, offsets, num_rows: int, *, check_ids: bool = True
               ) -> tuple[np.ndarray, np.ndarray]:
    """`(indices, offsets)` of one table's bags as int64, or InvalidInputError naming the table and
    the position: indices 1-D integers in [0, num_rows) (skipped with check_ids=False, for callers
    that check ranges chunk by chunk), offsets 1-D, from 0 to len(indices), never decreasing.
    The bag check of traces, profiles and page layout; the rules are sdm.core.checks'."""
    what = f"table {table!r}"
    idx = integer_array(indices, f"indices of {what}")
    off = integer_array(offsets, f"offsets of {what}")
    if idx.ndim != 1:
        raise InvalidInputError(f"{what}: indices must be 1-D, got shape {tuple(idx.shape)}")
    if off.ndim == 1 and off.size == 0:
        raise InvalidInputError(f"{what}: offsets must have num_samples + 1 >= 1 entries")
    bag_offsets(off, idx.size, what, exact_end=True)
    if check_ids:
        ids_in_range(idx, num_rows, what)
    return idx, off


def from_bags(
    table_names: Sequence[str],
    num_rows: Sequence[int],
    bags: Sequence[Sequence[Sequence[int]]],
    batch_size: int,
) -> Trace:
    """Build a small trace from Python lists: bags[t][s] is the list of ids of table t, sample s."""
    idx, off = [], []
    for t_bags in bags:
        lens = np.array([len(b) for b in t_bags], dtype=np.int64)
        off.append(np.concatenate([[0], np.cumsum(lens)]).astype(np.int64))
        idx.append(np.array([i for b in t_bags for i in b], dtype=np.int64))
    return Trace(list(table_names), list(num_rows), idx, off, batch_size)
