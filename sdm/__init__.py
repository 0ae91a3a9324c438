"""sdm: software-defined memory for recommendation-model inference.

The public API is small; names are imported lazily so that `import sdm` stays cheap.
"""
from __future__ import annotations

from .lazy_exports import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
