"""AdamW whose per-variable update is TensorFlow's fused Adam kernel."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="m3sa_tf")
class FusedAdamW(keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` with each variable's Adam update done by one fused op.

    Keras 3 writes Adam's update of a variable as about twenty small ops (the moment
    updates, bias corrections, square root, division, three assignments). M³SA has
    about 130 trainable variables, so on a CPU those ops cost some 80 ms of every
    training step and a third of the graph that the first step traces and optimises.
    TensorFlow's `ResourceApplyAdam` kernel does the same update of one variable in
    one op: m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g², θ ← θ − α·m / (√v + ε) with
    α = lr·√(1−β2^t) / (1−β1^t), which is Keras' formula. Weight decay, gradient
    clipping, the learning-rate schedule and the iteration count stay Keras' own, and
    the slot variables are Keras' (same names and checkpoints as `AdamW`).

    Keras' own update is used where the fused kernel does not apply: another backend,
    `amsgrad`, a variable that is not float32, a sparse gradient, or a distribution
    strategy (whose per-replica variable updates Keras handles).

    Args: those of `keras.optimizers.AdamW`.

    Example:
        >>> opt = FusedAdamW(learning_rate=1e-3, weight_decay=5e-3, clipnorm=1.0)
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        >>> model.compile(optimizer=opt, loss="mse")
    """

    def update_step(self, gradient, variable, learning_rate):
        import tensorflow as tf

        if (keras.backend.backend() != "tensorflow" or self.amsgrad
                or variable.dtype != "float32" or isinstance(gradient, tf.IndexedSlices)
                or tf.distribute.has_strategy()):
            return super().update_step(gradient, variable, learning_rate)
        index = self._get_variable_index(variable)
        step = ops.cast(self.iterations + 1, "float32")
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=self._momentums[index].handle,
            v=self._velocities[index].handle,
            beta1_power=ops.power(ops.cast(self.beta_1, "float32"), step),
            beta2_power=ops.power(ops.cast(self.beta_2, "float32"), step),
            lr=ops.cast(learning_rate, "float32"),
            beta1=ops.cast(self.beta_1, "float32"),
            beta2=ops.cast(self.beta_2, "float32"),
            epsilon=ops.cast(self.epsilon, "float32"),
            grad=ops.cast(gradient, "float32"),
            use_locking=False,
            use_nesterov=False,
        )
