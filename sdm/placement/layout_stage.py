"""The page-layout stage of the planner (sdm.placement.types.PageLayout): which SCM row order each
table gets. The layout algorithm is sdm.placement.page_layout (numba, imported only when used)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sdm.core.errors import InvalidInputError


@dataclass(frozen=True)
class LayoutChoice:
    """One table's SCM layout as the plan records it."""

    method: str                      # "co-access", "first-touch" or "id-order"
    row_order: np.ndarray | None     # row_order[slot] = row id; None: id order
    read_amplification: float        # on the training trace
    id_order_read_amplification: float
    pages_per_read: float            # pages per SCM read relative to id order (the latency model's factor)


class IdOrderLayout:
    """Rows stay in id order: no trace needed, nothing recorded."""

    name = "id-order"

    def layout(self, tables, trace, hardware) -> dict[str, LayoutChoice]:
        return {}


@dataclass
class CoAccessLayout:
    """`co_access_layout` per table from the trace; a page is the SCM device's read unit, >= 4 KiB."""

    window: int = 32
    progress: bool = False
    name: str = "co-access"

    def layout(self, tables, trace, hardware) -> dict[str, LayoutChoice]:
        if trace is None:
            raise InvalidInputError("page layout co-access needs a trace (co-access is read from the samples)")
        from sdm.placement.hotness import match_tables
        from sdm.placement.page_layout import _order_to_slots, co_access_layout, pages_per_read

        idx = match_tables(tables, list(trace.table_names), "trace")
        scm = getattr(hardware, "scm", None)
        page_bytes = max(4096, int(scm.access_bytes)) if scm is not None else 4096
        it = list(zip(tables, idx))
        if self.progress:
            import sys

            from tqdm import tqdm
            it = tqdm(it, desc="page layout", unit="table", file=sys.stderr)
        out = {}
        for t, i in it:
            ids, offs = np.asarray(trace.indices[i]), np.asarray(trace.offsets[i])
            res = co_access_layout(ids, offs, t.num_rows, t.row_bytes, page_bytes, self.window, table=t.name)
            ppr_id = pages_per_read(ids, offs, None, res.rows_per_page)
            ppr = pages_per_read(ids, offs, _order_to_slots(res.row_order), res.rows_per_page)
            out[t.name] = LayoutChoice(res.method, res.row_order if res.method != "id-order" else None,
                                       res.read_amplification, res.id_order_read_amplification,
                                       ppr / ppr_id if ppr_id else 1.0)
        return out


PAGE_LAYOUTS = {"id-order": IdOrderLayout, "co-access": CoAccessLayout}


def page_layout(name: str, **kwargs):
    """The page-layout stage registered as `name` (`--page-layout`)."""
    if name not in PAGE_LAYOUTS:
        raise InvalidInputError(f"unknown page layout {name!r}; choose from {sorted(PAGE_LAYOUTS)}")
    return PAGE_LAYOUTS[name](**kwargs) if name != "id-order" else IdOrderLayout()
