"""Many tables behind one module in the shape of TorchRec's EmbeddingBagCollection.

`StoreEmbeddingBagCollection(store, features)` takes a KeyedJaggedTensor (a real
`torchrec.KeyedJaggedTensor`, or any object with `keys()`, `values()`, `lengths()` or `offsets()`,
and `weights_or_none()`), looks every feature up in one batched store call
(`sdm.runtime.batched`), and returns a KeyedTensor: a real `torchrec.KeyedTensor` when torchrec is
installed, else `KeyedPooled` with the same methods (`keys`, `values`, `length_per_key`,
`offset_per_key`, `to_dict`, `[key]`). Features map to tables (several features may share one
table, as in TorchRec); the output keeps the module's feature order whatever the input's order.

Its tables sit in `embedding_bags` (a ModuleDict of StoreEmbeddingBag, named as TorchRec names
them), so its state_dict has the keys an EmbeddingBagCollection's has. `swap_collections` puts one
in place of each torchrec EmbeddingBagCollection of a model (`sdm.wrap`), float or quantized (a
quantized one's tables hold its codes as they are: sdm.runtime.torchrec_quant).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

from sdm.core.errors import InvalidInputError
from sdm.runtime.store_modules import StoreEmbeddingBag
from sdm.runtime.torchrec_quant import quant_collections, quant_features

__all__ = ["KeyedJagged", "KeyedPooled", "StoreEmbeddingBagCollection", "torchrec_collections", "swap_collections"]


class KeyedJagged:
    """A minimal KeyedJaggedTensor (for callers without torchrec): keys, values, lengths or offsets."""

    def __init__(self, keys: Sequence[str], values: torch.Tensor, lengths: torch.Tensor | None = None,
                 offsets: torch.Tensor | None = None, weights: torch.Tensor | None = None):
        self._keys, self._values, self._lengths, self._offsets, self._weights = list(keys), values, lengths, offsets, weights

    def keys(self) -> list[str]:
        return self._keys

    def values(self) -> torch.Tensor:
        return self._values

    def lengths_or_none(self):
        return self._lengths

    def offsets_or_none(self):
        return self._offsets

    def weights_or_none(self):
        return self._weights


class KeyedPooled:
    """Pooled results of several keys side by side ([B, sum(dims)]), as torchrec.KeyedTensor."""

    def __init__(self, keys: list[str], values: torch.Tensor, length_per_key: list[int]):
        self._keys, self._values, self._lengths = keys, values, length_per_key

    def keys(self) -> list[str]:
        return self._keys

    def values(self) -> torch.Tensor:
        return self._values

    def length_per_key(self) -> list[int]:
        return self._lengths

    def offset_per_key(self) -> list[int]:
        out = [0]
        for d in self._lengths:
            out.append(out[-1] + d)
        return out

    def to_dict(self) -> dict[str, torch.Tensor]:
        return dict(zip(self._keys, torch.split(self._values, self._lengths, dim=1)))

    def __getitem__(self, key: str) -> torch.Tensor:
        try:
            k = self._keys.index(key)
        except ValueError:
            raise KeyError(key) from None
        off = self.offset_per_key()
        return self._values[:, off[k]: off[k + 1]]


def _torchrec_keyed_tensor():
    try:
        from torchrec.sparse.jagged_tensor import KeyedTensor
    except ImportError:
        return None
    return KeyedTensor


def _jagged_parts(features):
    """(keys, values, lengths or None, offsets or None, weights or None) of a KJT-like object."""
    if isinstance(features, Mapping):
        raise InvalidInputError("StoreEmbeddingBagCollection takes a KeyedJaggedTensor, not a dict")
    try:
        keys = list(features.keys())
        values = features.values()
    except AttributeError:
        raise InvalidInputError(f"StoreEmbeddingBagCollection takes a KeyedJaggedTensor, got {type(features).__name__}") from None
    lengths = features.lengths_or_none() if hasattr(features, "lengths_or_none") else None
    offsets = features.offsets_or_none() if hasattr(features, "offsets_or_none") else None
    if lengths is not None:
        offsets = None
    weights = features.weights_or_none() if hasattr(features, "weights_or_none") else None
    return keys, values, lengths, offsets, weights


class StoreEmbeddingBagCollection(nn.Module):
    """Tables of an EmbeddingStore behind EmbeddingBagCollection's call (see module doc).

    `features`: {feature name: table name} in output order (default: one feature per table of
    `tables`, named as the table). `bag_names`: the `embedding_bags` key of each table (default:
    the table name), so state_dict keys match the module this one replaces."""

    def __init__(self, store, features: Mapping[str, str] | None = None, *, tables: Sequence[str] | None = None,
                 bag_names: Mapping[str, str] | None = None, is_weighted: bool = False):
        super().__init__()
        tables = list(tables if tables is not None else (dict.fromkeys(features.values()) if features else store.tables))
        features = dict(features) if features is not None else {t: t for t in tables}
        for f, t in features.items():
            if t not in tables:
                raise InvalidInputError(f"feature {f!r} maps to table {t!r}, which is not one of {tables}")
        bag_names = dict(bag_names or {t: t for t in tables})
        self.store = store
        self.features = features
        self.is_weighted = bool(is_weighted)
        self.embedding_bags = nn.ModuleDict({bag_names[t]: StoreEmbeddingBag(store, t) for t in tables})
        self._dims = [store.spec(t).dim for t in features.values()]

    def forward(self, features):
        keys, values, lengths, offsets, weights = _jagged_parts(features)
        missing = [f for f in self.features if f not in keys]
        if missing:
            raise InvalidInputError(f"features {missing[:10]} missing from the input (keys: {keys[:10]})")
        unknown = [k for k in keys if k not in self.features]
        if unknown:
            raise InvalidInputError(f"input features {unknown[:10]} are not features of this collection")
        pooled = self.store.lookup_many([self.features[k] for k in keys], values, lengths=lengths, offsets=offsets,
                                        per_sample_weights=weights if self.is_weighted else None, segments=keys)
        by_key = dict(zip(keys, pooled))
        out = torch.cat([by_key[f] for f in self.features], dim=1)
        kt = _torchrec_keyed_tensor()
        if kt is not None:
            return kt(keys=list(self.features), values=out, length_per_key=list(self._dims))
        return KeyedPooled(list(self.features), out, list(self._dims))


def torchrec_collections(model: nn.Module) -> dict[str, nn.Module]:
    """The torchrec EmbeddingBagCollection modules of `model`, float and quantized, by module path
    (none without torchrec)."""
    try:
        from torchrec.modules.embedding_modules import EmbeddingBagCollection
    except ImportError:
        return {}
    found = {n: m for n, m in model.named_modules() if isinstance(m, EmbeddingBagCollection)}
    return {**found, **quant_collections(model)}


def swap_collections(model: nn.Module, store, collections: Mapping[str, nn.Module]) -> None:
    """Put a StoreEmbeddingBagCollection in place of each torchrec EmbeddingBagCollection at the
    given paths; its tables are the store tables named by their bags' module paths."""
    quantized = quant_collections(model)
    for path, ebc in collections.items():
        if not path:
            raise InvalidInputError("wrap: the model itself is an EmbeddingBagCollection; wrap a module that holds it")
        prefix = f"{path}.embedding_bags."
        if path in quantized:  # output keys in the quantized module's order (grouped by pooling mode)
            features, tables, bag_names = quant_features(path, ebc)
        else:
            bag_keys = list(ebc.embedding_bags.keys())
            features, bag_names, tables = {}, {}, [prefix + k for k in bag_keys]
            for key, names in zip(bag_keys, ebc._feature_names):
                bag_names[prefix + key] = key
                for f in names:
                    features[f] = prefix + key
        new = StoreEmbeddingBagCollection(store, features, tables=tables, bag_names=bag_names,
                                          is_weighted=ebc.is_weighted())
        parent_name, _, child = path.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, new)
