"""The tables of a TorchRec quantized EmbeddingBagCollection (torchrec.quant.embedding_modules),
taken in with their codes as they are: no dequantize and re-quantize, so a store lookup pools the
very codes, scales and biases the TorchRec module pools.

Where the bytes are (fbgemm_gpu's IntNBitTableBatchedEmbeddingBagsCodegen, the TBE module a
quantized EBC keeps per pooling mode, read in fbgemm_gpu/split_table_batched_embeddings_ops_inference.py):
each table row takes `rounded_row_size_in_bytes` bytes, padded at the end to `row_alignment`
(16 by default), and holds
- INT8: fp16 scale, fp16 bias, then `dim` uint8 codes;
- INT4: fp16 scale, fp16 bias, then dim / 2 bytes, value 2j in the low nibble of byte j;
- FP16 / FP32: `dim` values;
(`reverse_qparam=True` puts scale and bias after the codes). Value = code * scale + bias.
`split_embedding_weights_with_scale_bias(split_scale_bias_mode=2)` gives each table's codes,
scale and bias with the padding cut off, whichever side the scale and bias sit on.

What is converted to sdm's stored layouts (sdm.runtime.row_formats), losslessly:
- INT8 -> "int8" [codes, fp32 scale, fp32 bias]: the codes are copied; scale and bias widen from
  fp16 to fp32, which is exact (every fp16 is a float32), and move behind the codes.
- INT4 -> "int4" [packed codes, fp16 scale, fp16 bias]: the packed bytes are copied (same nibble
  order) and scale and bias move behind them, bits unchanged.
- FP16 -> "fp16", FP32 -> "fp32": the values, bits unchanged (padding dropped).
INT2, FP8 and BF16 tables, pruned tables (index remapping) and the feature-processed / managed-
collision subclasses have no sdm counterpart and are refused by name.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from sdm.core.errors import InvalidInputError
from sdm.core.spec import TableSpec
from sdm.runtime.store_config import BagOptions
from sdm.runtime.store_weights import StoredRows

__all__ = ["QuantizedTable", "quant_collections", "quant_tables", "quant_features", "stored_from_tbe"]

_FORMATS = {"int8": "int8", "int4": "int4", "fp16": "fp16", "fp32": "fp32"}  # fbgemm SparseType value -> sdm
_MODES = {0: "sum", 1: "mean"}  # fbgemm PoolingMode value -> nn.EmbeddingBag mode


@dataclass(frozen=True)
class QuantizedTable:
    """One table of a quantized EBC, ready for EmbeddingStore.create: its spec, stored rows, options."""

    spec: TableSpec
    rows: StoredRows
    options: BagOptions


def _quant_class():
    try:
        from torchrec.quant.embedding_modules import EmbeddingBagCollection
    except ImportError:
        return None
    return EmbeddingBagCollection


def quant_collections(model: nn.Module) -> dict[str, nn.Module]:
    """The TorchRec quantized EmbeddingBagCollections of `model` by module path (none without
    torchrec); InvalidInputError for a subclass sdm cannot serve the same way."""
    cls = _quant_class()
    if cls is None:
        return {}
    found = {n: m for n, m in model.named_modules() if isinstance(m, cls)}
    for path, m in found.items():
        if type(m) is not cls:
            raise InvalidInputError(f"{path or 'the model'}: {type(m).__name__} (a quantized EmbeddingBagCollection "
                                    "that transforms ids or weights before the lookup) is not supported")
    return found


def stored_from_tbe(codes: torch.Tensor, scale: torch.Tensor | None, bias: torch.Tensor | None,
                    row_format: str, dim: int, table: str = "?") -> np.ndarray:
    """One table's rows in sdm's stored layout from a TBE table's codes [rows, bytes] (uint8) and
    fp16 scale and bias [rows, 1] (None for fp16 / fp32), as the module doc says."""
    c = codes.detach().cpu().contiguous().numpy()
    n = c.shape[0]
    if row_format in ("fp16", "fp32"):
        dt = np.float16 if row_format == "fp16" else np.float32
        if c.dtype != np.uint8 or c.shape[1] != dim * np.dtype(dt).itemsize:
            raise InvalidInputError(f"table {table!r}: {row_format} rows are {c.dtype} {c.shape}, expected "
                                    f"uint8 [{n}, {dim * np.dtype(dt).itemsize}]")
        return c.view(dt).reshape(n, dim)
    width = dim if row_format == "int8" else dim // 2
    if c.dtype != np.uint8 or c.shape[1] != width or scale is None or bias is None:
        raise InvalidInputError(f"table {table!r}: {row_format} codes are {c.dtype} {c.shape}, expected uint8 "
                                f"[{n}, {width}] with an fp16 scale and bias")
    s = scale.detach().cpu().contiguous().numpy().reshape(n)
    b = bias.detach().cpu().contiguous().numpy().reshape(n)
    if s.dtype != np.float16 or b.dtype != np.float16:
        raise InvalidInputError(f"table {table!r}: scale and bias are {s.dtype} / {b.dtype}, expected float16")
    if row_format == "int8":  # fp16 -> fp32 widening is exact
        tail = np.stack([s.astype(np.float32), b.astype(np.float32)], axis=1).view(np.uint8)  # [n, 8]
    else:
        tail = np.stack([s, b], axis=1).view(np.uint8)  # [n, 4], the bits as they are
    return np.concatenate([c, tail], axis=1)


def _groups(path: str, qebc: nn.Module):
    """(TBE module, [table configs]) per pooling group, in the module's order."""
    groups = list(zip(qebc._emb_modules, qebc._key_to_tables.values()))
    for tbe, _ in groups:
        if (getattr(tbe, "index_remappings_array", torch.empty(0)).numel()
                or getattr(tbe, "index_remapping_hash_table", torch.empty(0)).numel()
                or getattr(tbe, "index_remapping_hash_table_cpu", None) is not None):
            raise InvalidInputError(f"{path}: pruned tables (index remapping) are not supported")
    return groups


def _prefix(path: str) -> str:
    return f"{path}.embedding_bags." if path else "embedding_bags."


def quant_tables(path: str, qebc: nn.Module) -> dict[str, QuantizedTable]:
    """The tables of the quantized EBC at module path `path`, named `{path}.embedding_bags.{table}`
    (as sdm.wrap names a float EBC's tables)."""
    out: dict[str, QuantizedTable] = {}
    for tbe, configs in _groups(path, qebc):
        mode = _MODES.get(int(tbe.pooling_mode))
        if mode is None:
            raise InvalidInputError(f"{path}: pooling mode {tbe.pooling_mode} has no nn.EmbeddingBag counterpart")
        splits = tbe.split_embedding_weights_with_scale_bias(split_scale_bias_mode=2)
        for cfg, (tname, rows, dim, sparse_type, _), (codes, scale, bias) in zip(configs, tbe.embedding_specs, splits):
            name = _prefix(path) + tname
            fmt = _FORMATS.get(sparse_type.value)
            if fmt is None:
                raise InvalidInputError(f"table {name!r}: fbgemm {sparse_type.value} rows have no sdm row format "
                                        f"(sdm stores {sorted(set(_FORMATS.values()))})")
            if codes.device.type == "meta":
                raise InvalidInputError(f"table {name!r}: its weights are on the meta device (not loaded)")
            spec = TableSpec(name, rows, dim, row_format=fmt)
            out[name] = QuantizedTable(spec, StoredRows(stored_from_tbe(codes, scale, bias, fmt, dim, name)),
                                       BagOptions(mode=mode))
    return out


def quant_features(path: str, qebc: nn.Module) -> tuple[dict[str, str], list[str], dict[str, str]]:
    """(features {feature: store table} in the module's output order, store tables, bag names) of
    the quantized EBC at `path`, for a StoreEmbeddingBagCollection in its place."""
    features, tables, bag_names = {}, [], {}
    for _, configs in _groups(path, qebc):
        for cfg in configs:
            name = _prefix(path) + cfg.name
            tables.append(name)
            bag_names[name] = cfg.name
            for f in cfg.feature_names:
                if f in features:
                    raise InvalidInputError(f"{path}: feature {f!r} feeds two tables")
                features[f] = name
    if list(features) != list(qebc._embedding_names):
        raise InvalidInputError(f"{path}: output keys {qebc._embedding_names[:10]} are not its features "
                                f"{list(features)[:10]}; not supported")
    return features, tables, bag_names
