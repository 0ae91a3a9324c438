"""Profile -> hotness: the planner's input per model table, from a trace or a saved profile.

Tables of the trace or profile are matched to the model's by name, else by position when the
counts agree. Raw trace counts predict a replay of the same trace exactly; Good-Turing adjusted
ones (the default) predict future traffic (sdm.placement.types.TableHotness.good_turing).
"""
from __future__ import annotations

import sys
from typing import Sequence

import numpy as np

from sdm.core.errors import InvalidInputError
from sdm.core.spec import TableSpec
from sdm.placement.types import TableHotness

COUNT_MODELS = ("good-turing", "raw")


def match_tables(tables: Sequence[TableSpec], names: list[str], what: str) -> list[int]:
    """Index into `names` (a trace's or profile's tables) of each model table: by name, else by
    position when the counts agree; else InvalidInputError naming the missing tables."""
    by_name = {n: i for i, n in enumerate(names)}
    if len(names) > len(tables):
        extra = [n for n in names if n not in {t.name for t in tables}][:5] or names[len(tables):][:5]
        raise InvalidInputError(f"{what} has {len(names)} tables, the model {len(tables)}: {what} tables {extra} "
                                "are not in the model (give a model with every table of the " + what + ")")
    if all(t.name in by_name for t in tables):
        return [by_name[t.name] for t in tables]
    if len(names) == len(tables):
        return list(range(len(names)))
    missing = [t.name for t in tables if t.name not in by_name][:5]
    raise InvalidInputError(f"{what} has tables {names[:5]}{'...' if len(names) > 5 else ''}; model tables "
                            f"{missing} are not among them and the table counts differ "
                            f"({len(names)} vs {len(tables)})")


def model_trace(tables: Sequence[TableSpec], trace, batch_size: int | None = None):
    """The trace with the model's tables, names and row counts, in the model's order, re-batched to
    `batch_size` samples if given."""
    from sdm.traces.trace import Trace

    names = [t.name for t in tables]
    rows = [t.num_rows for t in tables]
    B = int(batch_size or trace.batch_size)
    if list(trace.table_names) == names and list(trace.num_rows) == rows and B == trace.batch_size:
        return trace
    idx = match_tables(tables, list(trace.table_names), "trace")
    return Trace(names, rows, [trace.indices[i] for i in idx], [trace.offsets[i] for i in idx], B)


def hotness_from_trace(tables: Sequence[TableSpec], trace, progress: bool = False) -> list[TableHotness]:
    """Exact counts per model table (ids are checked against the model's rows)."""
    idx = match_tables(tables, list(trace.table_names), "trace")
    it = list(zip(tables, idx))
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc="count trace", unit="table", file=sys.stderr)
    return [TableHotness.from_ids(t.name, t.num_rows, trace.indices[i], trace.num_samples) for t, i in it]


def hotness_from_profile(tables: Sequence[TableSpec], profile) -> list[TableHotness]:
    """Hotness per model table from a `sdm.placement.profile.Profile` (exact or sketched tables)."""
    names = list(profile.tables)
    idx = match_tables(tables, names, "profile")
    out = []
    for t, i in zip(tables, idx):
        tp = profile.tables[names[i]]
        if tp.num_rows != t.num_rows:
            raise InvalidInputError(f"table {t.name!r}: profile has {tp.num_rows} rows, model {t.num_rows}")
        if tp.exact:
            h = TableHotness.from_counts(t.name, np.asarray(tp.counts), tp.num_samples)
        else:
            # Heavy hitters (count-min upper estimates) + the rest as one uniform band over all
            # untracked rows (which of them were read is unknown, so pinning any is worth the
            # average). Rows beyond the heavy hitters were each read at least once, so the tail
            # has at least unique - k lookups; heavy-hitter counts are scaled down to leave it.
            order = np.argsort(tp.hh_rows)
            ids, counts = tp.hh_rows[order], tp.hh_counts[order].astype(np.float64)
            lookups = float(tp.num_lookups)
            tail = min(max(lookups - counts.sum(), float(tp.unique_rows - ids.size), 0.0), lookups)
            if counts.sum() > lookups - tail > 0:
                counts *= (lookups - tail) / counts.sum()
            h = TableHotness(t.name, t.num_rows, ids, counts, tail, tp.num_samples, expected=True)
        out.append(h)
    return out


def load_hotness(tables: Sequence[TableSpec], *, trace_path=None, profile_path=None, counts: str = "good-turing",
                 progress: bool = False) -> tuple[list[TableHotness], object]:
    """(hotness per model table, the trace in the model's table order or None for a profile), from
    exactly one of a trace file or a profile file; `counts` is one of COUNT_MODELS."""
    if counts not in COUNT_MODELS:
        raise InvalidInputError(f"count model {counts!r}: choose one of {COUNT_MODELS}")
    if (trace_path is None) == (profile_path is None):
        raise InvalidInputError("give exactly one of a trace or a profile")
    trace = None
    if profile_path is not None:
        from sdm.placement.profile import Profile

        hot = hotness_from_profile(tables, Profile.load(profile_path))
    else:
        from sdm.traces.loaders import load_trace

        try:
            loaded = load_trace(trace_path)
        except UnicodeDecodeError:
            raise InvalidInputError(f"trace {str(trace_path)!r} is neither a known binary trace nor text "
                                    "(formats: .npz/dir, Meta .pt.gz, DLRM text/.bin, .csv)") from None
        trace = model_trace(tables, loaded)
        hot = hotness_from_trace(tables, trace, progress=progress)
    # good_turing() leaves sketch-style profiles (heavy hitters + tail) as they are
    return ([h.good_turing() for h in hot] if counts == "good-turing" else hot), trace
