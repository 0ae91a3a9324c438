"""A compact DLRM (Naumov et al., arXiv 1906.00091), shaped like facebookresearch/dlrm's DLRM_Net.

bottom MLP over dense features -> embedding bags (`emb_l`, an nn.ModuleList of
nn.EmbeddingBag(n, m, mode="sum") as in dlrm_s_pytorch.py) -> dot interaction (pairwise dot products
of the bottom output and every pooled embedding, lower triangle without the diagonal) -> top MLP
-> sigmoid. `forward(dense_x, lS_o, lS_i)` takes the reference's arguments, so
`model.emb_l = store.as_embedding_bags()` is the same swap a user makes on the real thing.

It traces: `torch.fx.symbolic_trace` (the table count check is an fx-wrapped call, run when the
graph runs) and `torch.jit.script` (typed list arguments, the tables iterated, not indexed), whole
or with its tables in a store (StoreEmbeddingBag calls the registered op, torch.ops.sdm.lookup).
"""
from __future__ import annotations

from typing import List, Sequence

import numpy as np
import torch
from torch import nn

from sdm.core.errors import InvalidInputError
from sdm.core.checks import whole_number


def _check_table_count(num_tables: int, num_indices: int, num_offsets: int) -> None:
    if num_indices != num_tables or num_offsets != num_tables:
        raise InvalidInputError(
            f"DLRM has {num_tables} tables, got {num_indices} index and {num_offsets} offset tensors")


@torch.fx.wrap
def _table_count_check(num_tables: int, lS_o: List[torch.Tensor], lS_i: List[torch.Tensor]) -> None:
    """The count check; fx records it as one call (a traced list has no len), run with the graph."""
    _check_table_count(num_tables, len(lS_i), len(lS_o))


def _mlp(sizes: Sequence[int], sigmoid_last: bool, gen: torch.Generator) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        lin = nn.Linear(sizes[i], sizes[i + 1])
        # the reference's init: normal with std sqrt(2 / (fan_in + fan_out)), bias std sqrt(1 / fan_out)
        with torch.no_grad():
            lin.weight.normal_(0.0, float(np.sqrt(2.0 / (sizes[i] + sizes[i + 1]))), generator=gen)
            lin.bias.normal_(0.0, float(np.sqrt(1.0 / sizes[i + 1])), generator=gen)
        layers.append(lin)
        last = i == len(sizes) - 2
        layers.append(nn.Sigmoid() if (last and sigmoid_last) else nn.ReLU())
    return nn.Sequential(*layers)


class DLRM(nn.Module):
    """DLRM with `len(table_rows)` embedding tables of dimension `dim`.

    bottom_mlp: hidden sizes after the dense input (the last must be `dim`, added if missing);
    top_mlp: hidden sizes after the interaction (a final 1-unit sigmoid layer is added).
    """

    def __init__(
        self,
        table_rows: Sequence[int],
        dim: int = 16,
        num_dense: int = 13,
        bottom_mlp: Sequence[int] = (64, 32),
        top_mlp: Sequence[int] = (64, 32),
        seed: int = 0,
    ):
        super().__init__()
        if not len(table_rows):
            raise InvalidInputError("DLRM needs at least one embedding table")
        dim = whole_number(dim, "DLRM dim", minimum=1)
        gen = torch.Generator().manual_seed(seed)
        bottom = list(bottom_mlp)
        if not bottom or bottom[-1] != dim:
            bottom.append(dim)
        self.dim = dim
        self.num_dense = num_dense
        self.bot_l = _mlp([num_dense, *bottom], sigmoid_last=False, gen=gen)
        self.emb_l = nn.ModuleList()
        for k, n in enumerate(table_rows):
            n = whole_number(n, f"DLRM table {k} rows", minimum=1)
            bag = nn.EmbeddingBag(n, dim, mode="sum")
            # the reference's init: uniform(-sqrt(1/n), sqrt(1/n))
            with torch.no_grad():
                bag.weight.uniform_(-float(np.sqrt(1.0 / n)), float(np.sqrt(1.0 / n)), generator=gen)
            self.emb_l.append(bag)
        t = len(table_rows) + 1
        num_int = t * (t - 1) // 2 + dim
        self.top_l = _mlp([num_int, *top_mlp, 1], sigmoid_last=True, gen=gen)
        li, lj = torch.tril_indices(t, t, offset=-1)
        self.register_buffer("_li", li, persistent=False)
        self.register_buffer("_lj", lj, persistent=False)

    def apply_emb(self, lS_o: List[torch.Tensor], lS_i: List[torch.Tensor]) -> List[torch.Tensor]:
        _table_count_check(len(self.emb_l), lS_o, lS_i)
        ly: List[torch.Tensor] = []
        for k, bag in enumerate(self.emb_l):  # (TorchScript indexes a ModuleList by literals only)
            ly.append(bag(lS_i[k], lS_o[k], per_sample_weights=None))
        return ly

    def interact(self, x: torch.Tensor, ly: List[torch.Tensor]) -> torch.Tensor:
        batch, d = x.shape
        T = torch.cat([x] + ly, dim=1).view(batch, -1, d)
        Z = torch.bmm(T, T.transpose(1, 2))
        return torch.cat([x, Z[:, self._li, self._lj]], dim=1)

    def forward(self, dense_x: torch.Tensor, lS_o: List[torch.Tensor], lS_i: List[torch.Tensor]) -> torch.Tensor:
        x = self.bot_l(dense_x)
        ly = self.apply_emb(lS_o, lS_i)
        return self.top_l(self.interact(x, ly))


def random_inputs(model: DLRM, batch: int, pooling: int = 8, seed: int = 0):
    """Uniform random (dense_x, lS_o, lS_i) for a quick forward pass."""
    g = torch.Generator().manual_seed(seed)
    dense = torch.rand(batch, model.num_dense, generator=g)
    offs, idxs = [], []
    for bag in model.emb_l:
        n = bag.num_embeddings
        idxs.append(torch.randint(0, n, (batch * pooling,), generator=g))
        offs.append(torch.arange(0, batch * pooling, pooling))
    return dense, offs, idxs
