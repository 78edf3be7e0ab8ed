"""Subprocess driver for the tests that need a fresh process (strategies, kills).

Usage: python tests/pipelines/train_worker.py '<json spec>'

spec keys: dataset, data_dir, output_dir, overrides (M3SAConfig fields), scale,
strategy ("default", "mirrored", "multi-worker"), logical_cpus (split the CPU into that
many logical devices before TensorFlow starts), exit_after_epochs (die with os._exit
right after that many epochs of the main fit have been checkpointed, as a kill would),
weights_out (save the trained model's flattened weights there as .npy).
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))


def main(spec):
    import numpy as np
    import tensorflow as tf
    import keras

    if spec.get("logical_cpus"):
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * int(spec["logical_cpus"])
        )

    from m3sa_tf import M3SAConfig
    from pipelines import distribute, training

    class ExitAfterEpochs(keras.callbacks.Callback):
        def __init__(self, count):
            super().__init__()
            self.count = count

        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 >= self.count:
                sys.stdout.flush()
                os._exit(17)

    class SaveWeights(keras.callbacks.Callback):
        def __init__(self, path):
            super().__init__()
            self.path = path

        def on_train_end(self, logs=None):
            np.save(self.path, np.concatenate([w.ravel() for w in self.model.get_weights()]))

    callbacks = []
    if spec.get("exit_after_epochs"):
        callbacks.append(ExitAfterEpochs(int(spec["exit_after_epochs"])))
    if spec.get("weights_out"):
        callbacks.append(SaveWeights(spec["weights_out"]))
    config = M3SAConfig.for_dataset(spec["dataset"], **spec.get("overrides", {}))
    strategy = distribute.resolve_strategy(spec.get("strategy", "default"))
    metrics = training.train_and_evaluate(
        config, spec["data_dir"], spec["output_dir"], scale=spec.get("scale", 1.0),
        strategy=strategy, verbose=spec.get("verbose", 2), extra_callbacks=callbacks,
    )
    print("RESULT " + json.dumps({
        "num_replicas": int(strategy.num_replicas_in_sync),
        "strategy": type(strategy).__name__,
        "chief": distribute.is_chief(strategy),
        "test": {k: v for k, v in metrics["test"].items() if isinstance(v, float)},
    }), flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
