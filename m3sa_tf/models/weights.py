"""Moving trained weights between M³SA models built with different settings."""


def _relative_paths(layer):
    """(path below the layer, shape) of every weight of `layer`, in order."""
    out = []
    for weight in layer.weights:
        path = weight.path
        marker = layer.name + "/"
        path = path[path.index(marker) + len(marker):] if marker in path else path
        out.append((path, tuple(weight.shape)))
    return out


def copy_matching_weights(source, target):
    """Copies every layer of `source` into the layer of `target` with the same name whose
    weights have the same names (below the layer) and shapes; returns the copied names.

    Layer names are stable across keys and fusion strategies (`multi_scale_{m}`,
    `head_{m}`, `fusion`, `head_fused`, `contrastive_projection_{m}`), so after the
    key-modality warm-up the unimodal blocks and heads carry over to the model built with
    the chosen key. A fusion layer built for another key has differently named attention
    sublayers (`cross_attention_{m}`) and is left as it is.

    Example:
        >>> # copied = copy_matching_weights(warmup_model, final_model)
    """
    target_layers = {layer.name: layer for layer in target.layers}
    copied = []
    for layer in source.layers:
        other = target_layers.get(layer.name)
        if other is None or not layer.weights:
            continue
        if _relative_paths(layer) != _relative_paths(other):
            continue
        other.set_weights(layer.get_weights())
        copied.append(layer.name)
    return copied
