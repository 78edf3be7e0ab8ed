"""The paper's baselines (Tables II, III) and Self-MM, in Keras 3, one model per file.

Each module defines one `MultimodalModel` subclass and its `SPEC`; the registry
(`m3sa_tf.models.registry`) finds them by scanning this package. Architectures and
defaults follow MMSA's PyTorch implementations; docs/baselines.md lists, per model, what
differs and why.
"""
