"""Accelerator-resident rows: the hottest rows of a table held in card memory.

The rows live in a torch tensor on the card: on CUDA when a GPU is present (and asked for),
otherwise on the CPU, charged with the card's memory model (LPDDR / SRAM `DeviceSpec`). Placement
is static (decided by the plan or the default placement); the tier never evicts.

Locating rows: a dense int32 map row -> slot when it costs no more than the rows themselves
(or <= 4 MiB), else a binary search over the sorted resident ids. Either way no per-row Python.
"""
from __future__ import annotations

import numpy as np
import torch

from sdm.hardware.platform import CARD_QUEUE_DEPTH, HOST_QUEUE_DEPTH
from sdm.core.errors import InfeasibleError, InvalidInputError
from sdm.core.checks import integer_array, whole_number

_DENSE_MAP_FREE_BYTES = 4 << 20


def default_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


class DeviceMemoryTier:
    """Static set of one table's rows in accelerator memory (stored format)."""

    def __init__(
        self,
        table: str,
        num_rows: int,
        row_ids: np.ndarray,
        rows: np.ndarray | torch.Tensor,
        *,
        device: str | torch.device | None = None,
        capacity_bytes: int | None = None,
        memory=None,
        queue_depth: int | None = None,
    ):
        ids = integer_array(row_ids, f"table {table!r}: accel row ids")
        if ids.ndim != 1 or len(ids) != len(rows):
            raise InvalidInputError(f"table {table!r}: accel row ids ({ids.shape}) and rows ({len(rows)}) disagree")
        order = np.argsort(ids, kind="stable")
        ids = ids[order]
        if len(ids) and (ids[0] < 0 or ids[-1] >= num_rows or (np.diff(ids) == 0).any()):
            raise InvalidInputError(f"table {table!r}: accel row ids must be distinct and in [0, {num_rows})")
        data = torch.as_tensor(np.ascontiguousarray(np.asarray(rows)[order]))
        self.table = table
        self.num_rows = int(num_rows)
        self.ids = ids
        self.memory = memory  # DeviceSpec of the card memory, or None
        # Rows are gathered with many reads in flight, as the planner and the six-card timeline price
        # them (sdm.hardware.platform): a card's cores keep CARD_QUEUE_DEPTH, a host core its line-fill
        # buffers. QD 1 would charge every row a full memory latency, ~10-60x what both models say.
        if queue_depth is None:
            host = memory is not None and memory.medium == "ddr4"
            queue_depth = HOST_QUEUE_DEPTH if host else CARD_QUEUE_DEPTH
        self.queue_depth = whole_number(queue_depth, f"table {table!r}: queue_depth", minimum=1)
        self.nbytes = int(data.numel() * data.element_size())
        self.row_bytes = int(data[0].numel() * data.element_size()) if len(ids) else 0
        if capacity_bytes is not None and self.nbytes > capacity_bytes:
            raise InfeasibleError(
                f"table {table!r}: {len(ids)} accel rows need {self.nbytes} bytes, card memory holds {capacity_bytes}"
            )
        self.device = torch.device(device) if device is not None else default_device()
        self.data = data.to(self.device)
        self._map = None
        if 4 * self.num_rows <= max(self.nbytes, _DENSE_MAP_FREE_BYTES):
            self._map = np.full(self.num_rows, -1, dtype=np.int32)
            self._map[ids] = np.arange(len(ids), dtype=np.int32)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def index_bytes(self) -> int:
        return self.ids.nbytes + (self._map.nbytes if self._map is not None else 0)

    def locate(self, ids: np.ndarray) -> np.ndarray:
        """Slot of each id in `data`, -1 where the row is not accelerator-resident."""
        if not len(self.ids):
            return np.full(len(ids), -1, dtype=np.int64)
        if self._map is not None:
            return self._map[ids].astype(np.int64)
        pos = np.searchsorted(self.ids, ids)
        pos[pos == len(self.ids)] = 0
        return np.where(self.ids[pos] == ids, pos, -1)

    def gather(self, slots: np.ndarray) -> torch.Tensor:
        """Stored rows at `slots`, on the CPU (where pooling runs)."""
        t = torch.from_numpy(np.ascontiguousarray(slots, dtype=np.int64))
        if self.device.type != "cpu":
            return self.data.index_select(0, t.to(self.device)).cpu()
        return self.data.index_select(0, t)

    def modelled_read_s(self, n_rows: int) -> float:
        """Card-memory time to read n rows, from the card's memory model (0 without one)."""
        if self.memory is None or not n_rows:
            return 0.0
        return float(self.memory.read_time_s(int(n_rows), self.row_bytes, self.queue_depth))
