"""sdm: software-defined memory for recommendation-model inference.

The public API is small; names are imported lazily so that `import sdm` stays cheap.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "TableSpec": "sdm.spec",
    "hardware": "sdm.tiers.hardware",
    "HardwareSpec": "sdm.tiers.hardware",
    "EmbeddingStore": "sdm.embedding_store",
    "wrap": "sdm.embedding_store",
    "Plan": "sdm.placement.plan",
    "DLRM": "sdm.dlrm",
    "SdmError": "sdm.errors",
    "InvalidInputError": "sdm.errors",
    "CorruptionError": "sdm.errors",
    "StoreFormatError": "sdm.errors",
    "InfeasibleError": "sdm.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sdm' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
