"""sdm as the compute kernel of one TorchRec sharding: the features TorchRec's input all-to-all
delivered to this rank (a KeyedJaggedTensor) in, pooled rows out, read from this rank's own
EmbeddingStore.

`pooled_lookup` is the one place sharded code reads a store: one table-batched
`EmbeddingStore.lookup_many` call for all the features of the rank (one validation pass).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from sdm.core.errors import InvalidInputError
from sdm.placement.hosts import shard_name

__all__ = ["pooled_lookup", "StoreShardLookup", "A2ACounter", "store_names_of"]


def pooled_lookup(store, names: Sequence[str], kjt) -> torch.Tensor:
    """[stride, sum of the tables' dims]: key i of `kjt` pooled by store table `names[i]`, in key order.

    One `EmbeddingStore.lookup_many` call; a store table may serve several features."""
    stride = kjt.stride()
    if len(names) != len(kjt.keys()):
        raise InvalidInputError(f"{len(kjt.keys())} features arrived for {len(names)} store tables {list(names)[:5]}")
    if not names:
        return torch.empty(stride, 0)
    if kjt.variable_stride_per_key():
        raise InvalidInputError("variable batch size per feature is not supported by the sdm kernel")
    pooled = store.lookup_many(list(names), kjt.values(), lengths=kjt.lengths(),
                               per_sample_weights=kjt.weights_or_none(), segments=list(kjt.keys()))
    return torch.cat(pooled, 1)


def store_names_of(sharding) -> tuple[list[str], list[str]]:
    """(feature names, store table names) this rank's lookup of one TorchRec sharding receives, in
    the order TorchRec's input dist lays the features out (group by group, table by table)."""
    features, names = [], []
    for group in sharding._grouped_embedding_configs:   # TorchRec keeps the rank's groups here
        for t in group.embedding_tables:
            dim = int(t.embedding_dim)
            c0 = int(t.local_metadata.shard_offsets[1]) if t.local_metadata is not None else 0
            name = shard_name(t.name, c0, c0 + int(t.local_cols), dim)
            for f in t.feature_names:
                features.append(f)
                names.append(name)
    return features, names


@dataclass
class A2ACounter:
    """Bytes this rank's lookups took from and gave to the other ranks through TorchRec's
    all-to-alls, counted from the tensors themselves: features received from other ranks (ids,
    lengths, weights) and pooled rows returned to them. Summed over ranks this is every byte that
    crossed between processes (the split sizes TorchRec exchanges first are not counted)."""

    rank: int
    world_size: int
    input_bytes: int = 0
    output_bytes: int = 0
    calls: int = 0

    def count(self, kjt, out: torch.Tensor) -> None:
        stride = kjt.stride()
        if stride == 0 or stride % self.world_size:
            raise InvalidInputError(f"rank {self.rank}: {stride} samples arrived for {self.world_size} ranks; "
                                    f"every rank must send the same batch size")
        per_rank = stride // self.world_size       # samples from rank r are rows [r*per_rank, (r+1)*per_rank)
        own = slice(self.rank * per_rank, (self.rank + 1) * per_rank)
        n_keys = len(kjt.keys())
        self.calls += 1
        if n_keys:
            lengths = kjt.lengths().view(n_keys, stride)
            own_values = int(lengths[:, own].sum())
            remote_values = kjt.values().numel() - own_values
            remote_bags = n_keys * (stride - per_rank)
            weights = kjt.weights_or_none()
            self.input_bytes += (remote_values * kjt.values().element_size() + remote_bags * lengths.element_size()
                                 + (remote_values * weights.element_size() if weights is not None else 0))
        self.output_bytes += (stride - per_rank) * out.shape[1] * out.element_size()

    def as_dict(self) -> dict:
        return {"input_bytes": self.input_bytes, "output_bytes": self.output_bytes, "calls": self.calls}


class StoreShardLookup(nn.Module):
    """Stands where TorchRec puts its GroupedPooledEmbeddingsLookup for one sharding type."""

    def __init__(self, sharding, store, counter: A2ACounter | None = None):
        super().__init__()
        self.features, self.names = store_names_of(sharding)
        self.store = store
        self.counter = counter
        missing = [n for n in dict.fromkeys(self.names) if n not in store.tables]
        if missing:
            raise InvalidInputError(f"the store at {store.path} lacks shards {missing[:5]} the sharding plan puts on "
                                    f"this rank; open the store built from this rank's section of the host plan")

    def named_parameters_by_table(self):
        return iter(())        # rows live in the store, not in parameters TorchRec could register

    def forward(self, kjt) -> torch.Tensor:
        if list(kjt.keys()) != self.features:
            raise InvalidInputError(f"features {list(kjt.keys())[:5]} arrived; this lookup serves {self.features[:5]}")
        with torch.no_grad():
            out = pooled_lookup(self.store, self.names, kjt)
        if self.counter is not None:
            self.counter.count(kjt, out)
        return out
