"""sdm: software-defined memory for recommendation-model inference.

The public API is small; names are imported lazily so that `import sdm` stays cheap.
"""
from __future__ import annotations

from sdm import hardware  # a package that is also callable: sdm.hardware("host-nand")
from sdm.core.lazy_exports import lazy_exports

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "TableSpec": "sdm.core.spec",
    "HardwareSpec": "sdm.hardware.server",
    "EmbeddingStore": "sdm.runtime.embedding_store",
    "wrap": "sdm.runtime.embedding_store",
    "Plan": "sdm.placement.plan",
    "DLRM": "sdm.runtime.dlrm",
    "SdmError": "sdm.core.errors",
    "InvalidInputError": "sdm.core.errors",
    "CorruptionError": "sdm.core.errors",
    "StoreFormatError": "sdm.core.errors",
    "InfeasibleError": "sdm.core.errors",
    "CorruptMetadataError": "sdm.core.errors",
    "CorruptPageError": "sdm.core.errors",
    "ShortFileError": "sdm.core.errors",
    "UnsupportedVersionError": "sdm.core.errors",
    "StoreIOError": "sdm.core.errors",
    "DiskFullError": "sdm.core.errors",
}

__all__ = sorted([*_EXPORTS, "hardware"])


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
