"""Serves an exported SavedModel with plain TensorFlow, as a TF Serving host would.

Run as a script in a fresh process, from a directory that cannot see the project:

    python -I standalone_serve.py VERSION_DIR FEATURES.npz OUTPUTS.npz REPORT.json

It refuses to import the project's packages (an import hook raises if anything tries),
loads VERSION_DIR with `tf.saved_model.load`, calls its `serving_default` signature on
the arrays of FEATURES.npz (read with allow_pickle=False; keys are the signature's input
names) and writes the named outputs to OUTPUTS.npz, and to REPORT.json the signature's
input names and which of the project's modules ended up in `sys.modules`.
"""

import importlib.abc
import json
import sys

PROJECT_MODULES = ("m3sa_tf", "tfrecords", "pipelines", "tuning", "keras_hub")


class _RefuseProjectImports(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in PROJECT_MODULES:
            raise ImportError(f"the serving process must not import {name}")
        return None


def main(version_dir, features_path, outputs_path, report_path):
    sys.meta_path.insert(0, _RefuseProjectImports())
    import numpy as np
    import tensorflow as tf

    loaded = tf.saved_model.load(version_dir)
    signature = loaded.signatures["serving_default"]
    input_names = sorted(signature.structured_input_signature[1])
    with np.load(features_path, allow_pickle=False) as data:
        features = {name: tf.constant(data[name]) for name in input_names}
    outputs = signature(**features)
    np.savez(outputs_path, **{name: value.numpy() for name, value in outputs.items()})
    report = {
        "inputs": input_names,
        "outputs": sorted(outputs),
        "project_modules_loaded": sorted(
            name for name in sys.modules if name.split(".")[0] in PROJECT_MODULES
        ),
        "sys_path": sys.path,
    }
    with open(report_path, "w", encoding="utf-8") as handle:
        json.dump(report, handle)


if __name__ == "__main__":
    main(*sys.argv[1:5])
