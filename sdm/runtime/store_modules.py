"""A store's tables as torch modules: `StoreEmbeddingBag` (one table behind nn.EmbeddingBag's call
signature); the tables, weights and options of nn.EmbeddingBag modules (`from_embedding_bags`); and
the two halves of `sdm.wrap`: finding a model's nn.EmbeddingBag modules (and the tables of its
TorchRec quantized EmbeddingBagCollections, whose codes go in as they are:
sdm.runtime.torchrec_quant) and putting StoreEmbeddingBag modules in their place.

These need of the store only the three calls in `TableLookup`, so this module does not import the
store (sdm/runtime/embedding_store.py imports it).
"""
from __future__ import annotations

from typing import Mapping, Optional, Protocol

import torch
from torch import nn

from sdm.core.errors import InvalidInputError
from sdm.core.spec import TableSpec
from sdm.runtime.custom_op import handle_of
from sdm.runtime.store_config import BagOptions
from sdm.runtime.torchrec_quant import QuantizedTable, quant_collections, quant_tables

__all__ = ["TableLookup", "StoreEmbeddingBag", "bag_tables", "embedding_bags_in", "swap_in"]


class TableLookup(Protocol):
    """What a StoreEmbeddingBag calls: an EmbeddingStore."""

    def spec(self, name: str) -> TableSpec: ...

    def bag_options(self, name: str) -> BagOptions: ...

    def lookup(self, name: str, indices, offsets=None, per_sample_weights=None) -> torch.Tensor: ...

    def read_weight(self, name: str) -> torch.Tensor: ...

    def write_weight(self, name: str, weight) -> None: ...


class StoreEmbeddingBag(nn.Module):
    """One table of an EmbeddingStore behind nn.EmbeddingBag's call signature."""

    def __init__(self, store: TableLookup, name: str):
        super().__init__()
        spec = store.spec(name)
        self.store, self.name = store, name
        self.handle = handle_of(store)  # names the store in torch.ops.sdm.lookup (weakly: see custom_op)
        self.num_embeddings, self.embedding_dim = spec.num_rows, spec.dim
        o = store.bag_options(name)
        self.mode, self.include_last_offset, self.padding_idx = o.mode, o.include_last_offset, o.padding_idx

    def forward(self, input: torch.Tensor, offsets: Optional[torch.Tensor] = None,  # noqa: A002 (nn.EmbeddingBag's name)
                per_sample_weights: Optional[torch.Tensor] = None) -> torch.Tensor:
        if torch.jit.is_scripting():
            # torch.jit.script: only this branch is compiled (a static condition), a call of the
            # registered op with the store's handle (TorchScript cannot hold the store itself)
            return torch.ops.sdm.lookup(self.handle, self.name, self.embedding_dim, self.include_last_offset,
                                        input, offsets, per_sample_weights)
        else:
            return self._python_forward(input, offsets, per_sample_weights)

    @torch.jit.unused
    def _python_forward(self, input, offsets, per_sample_weights):  # noqa: A002
        if torch.compiler.is_compiling() or isinstance(input, torch.fx.Proxy):
            # torch.compile / torch.export / torch.fx.symbolic_trace: one registered op with a
            # known output shape (fx records it as a call_function node)
            return torch.ops.sdm.lookup(self.handle, self.name, self.embedding_dim,
                                        self.include_last_offset, input, offsets, per_sample_weights)
        return self.store.lookup(self.name, input, offsets, per_sample_weights)

    # state_dict / load_state_dict: the key nn.EmbeddingBag has ("weight"), read from / written
    # through to the store, so a wrapped model round-trips with the unwrapped model's checkpoint
    def _save_to_state_dict(self, destination, prefix, keep_vars):
        destination[prefix + "weight"] = self.store.read_weight(self.name)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        key = prefix + "weight"
        if key not in state_dict:
            if strict:
                missing_keys.append(key)
            return
        w = state_dict[key]
        if tuple(w.shape) != (self.num_embeddings, self.embedding_dim):
            error_msgs.append(f"size mismatch for {key}: copying a param with shape {tuple(w.shape)}, the table "
                              f"{self.name!r} has shape {(self.num_embeddings, self.embedding_dim)}")
            return
        self.store.write_weight(self.name, w)

    def extra_repr(self) -> str:
        return f"{self.name!r}, {self.num_embeddings}, {self.embedding_dim}, mode={self.mode!r}"


def embedding_bags_in(model: nn.Module) -> dict[str, nn.EmbeddingBag | QuantizedTable]:
    """Every nn.EmbeddingBag in `model`, by module path (e.g. "emb_l.3"), and every table of its
    TorchRec quantized EmbeddingBagCollections ("{path}.embedding_bags.{table}", as a
    QuantizedTable: codes in sdm's layout); InvalidInputError if none."""
    if not isinstance(model, nn.Module):
        raise InvalidInputError(f"wrap needs an nn.Module, got {type(model).__name__}")
    found: dict = {n: m for n, m in model.named_modules() if isinstance(m, nn.EmbeddingBag)}
    for path, qebc in quant_collections(model).items():
        found.update(quant_tables(path, qebc))
    if not found:
        raise InvalidInputError(f"{type(model).__name__} holds no nn.EmbeddingBag or TorchRec "
                                "EmbeddingBagCollection to wrap")
    return found


def swap_in(model: nn.Module, store: TableLookup, names) -> None:
    """Replace the module at each path in `names` by a StoreEmbeddingBag of the table of that name."""
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, StoreEmbeddingBag(store, name))


def bag_tables(bags, names: list[str] | None = None) -> tuple[list[TableSpec], dict, dict[str, BagOptions]]:
    """(specs, weights, options) of nn.EmbeddingBag modules given as a mapping name -> module, or
    a list / ModuleList (named `names`, default t0, t1, ...), keeping each one's mode,
    include_last_offset and padding_idx."""
    if isinstance(bags, Mapping):
        names, mods = list(bags), list(bags.values())
    else:
        mods = list(bags)
        names = names or [f"t{i}" for i in range(len(mods))]
    if len(names) != len(mods):
        raise InvalidInputError(f"{len(names)} names for {len(mods)} embedding bags")
    specs, weights, options = [], {}, {}
    for n, m in zip(names, mods):
        if isinstance(m, QuantizedTable):  # a TorchRec quantized table: its stored rows, as they are
            if m.spec.name != n:
                raise InvalidInputError(f"table {n!r}: quantized table is named {m.spec.name!r}")
            specs.append(m.spec)
            weights[n], options[n] = m.rows, m.options
            continue
        if not isinstance(m, nn.EmbeddingBag):
            raise InvalidInputError(f"table {n!r}: expected nn.EmbeddingBag, got {type(m).__name__}")
        if m.max_norm is not None:
            raise InvalidInputError(f"table {n!r}: max_norm renormalizes rows on lookup; not supported")
        specs.append(TableSpec(n, m.num_embeddings, m.embedding_dim))
        weights[n] = m.weight.detach().to("cpu", torch.float32)
        options[n] = BagOptions(m.mode, bool(m.include_last_offset), m.padding_idx)
    return specs, weights, options
