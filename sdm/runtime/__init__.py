"""Runtime: `EmbeddingStore` and its per-table lookup path, pooling, row formats, stats, the DLRM model.

It composes the tiers (sdm.tiers) with a placement (sdm.placement) into the object a model calls.
"""
