"""Serves exported SavedModels with plain TensorFlow, as a TF Serving host would.

Run as a script in a fresh process, from a directory that cannot see the project:

    python -I standalone_serve.py VERSION_DIR FEATURES.npz OUTPUTS.npz REPORT.json
    python -I standalone_serve.py --many JOBS.json REPORT.json

It refuses to import the project's packages (an import hook raises if anything tries),
loads VERSION_DIR with `tf.saved_model.load`, calls its `serving_default` signature on
the arrays of FEATURES.npz (read with allow_pickle=False; keys are the signature's input
names) and writes the named outputs to OUTPUTS.npz, and to REPORT.json the signature's
input and output names and which of the project's modules ended up in `sys.modules`.

`--many` does the same for every job of JOBS.json, a list of {"name", "version_dir",
"features", "outputs"} (paths), in one process, since starting TensorFlow is most of a
job's time. REPORT.json then holds {"jobs": {name: {"inputs", "outputs"} or {"error"}},
"project_modules_loaded", "sys_path"}: a job that fails is reported, not fatal, so each
test can say which export broke.
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


def serve_one(version_dir, features_path, outputs_path):
    """Calls VERSION_DIR's serving_default on FEATURES.npz, writes OUTPUTS.npz; returns
    the signature's input names and the outputs' names."""
    import numpy as np
    import tensorflow as tf

    loaded = tf.saved_model.load(version_dir)
    signature = loaded.signatures["serving_default"]
    input_names = sorted(signature.structured_input_signature[1])
    with np.load(features_path, allow_pickle=False) as data:
        features = {name: tf.constant(data[name]) for name in input_names}
    outputs = signature(**features)
    np.savez(outputs_path, **{name: value.numpy() for name, value in outputs.items()})
    return {"inputs": input_names, "outputs": sorted(outputs)}


def project_report():
    return {
        "project_modules_loaded": sorted(
            name for name in sys.modules if name.split(".")[0] in PROJECT_MODULES
        ),
        "sys_path": sys.path,
    }


def main(argv):
    sys.meta_path.insert(0, _RefuseProjectImports())
    if argv[0] == "--many":
        jobs_path, report_path = argv[1:3]
        with open(jobs_path, encoding="utf-8") as handle:
            jobs = json.load(handle)
        results = {}
        for job in jobs:
            try:
                results[job["name"]] = serve_one(job["version_dir"], job["features"],
                                                 job["outputs"])
            except Exception as err:  # reported per job; the test of that job fails
                results[job["name"]] = {"error": f"{type(err).__name__}: {err}"}
        report = {"jobs": results, **project_report()}
    else:
        version_dir, features_path, outputs_path, report_path = argv[:4]
        report = {**serve_one(version_dir, features_path, outputs_path), **project_report()}
    with open(report_path, "w", encoding="utf-8") as handle:
        json.dump(report, handle)


if __name__ == "__main__":
    main(sys.argv[1:])
