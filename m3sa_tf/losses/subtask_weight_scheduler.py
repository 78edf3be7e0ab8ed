"""The paper's "dynamic weight decay" of the subtask weights, as a Keras callback."""

import keras


class SubtaskWeightScheduler(keras.callbacks.Callback):
    """Sets the decaying subtask weights at the start of every epoch.

    At epoch e (0-based) every unimodal weight ∂_m (eq. 25) and pair weight ∂_αβ
    (eq. 27) becomes its configured value × `config.subtask_weight_factor(e)`; the fused
    weight ∂_f stays fixed. In `fit` it finds the loss as `model.m3sa_loss`; a custom
    loop passes `loss=` and calls `on_epoch_begin(epoch)` itself.

    Args:
        config: the `M3SAConfig` whose schedule to follow.
        loss: an `M3SALoss`; defaults to the fitted model's.

    Example:
        >>> # model.fit(train, epochs=50, callbacks=[SubtaskWeightScheduler(config)])
    """

    def __init__(self, config, loss=None):
        super().__init__()
        self.config = config
        self.loss = loss
        self.factor = None

    def _target(self):
        if self.loss is not None:
            return self.loss
        model = getattr(self, "model", None)
        target = getattr(model, "m3sa_loss", None)
        if target is None:
            raise ValueError(
                "SubtaskWeightScheduler needs an M3SALoss: pass loss=... or use it in "
                "fit() of an M3SAModel"
            )
        return target

    def on_epoch_begin(self, epoch, logs=None):
        self.factor = float(self.config.subtask_weight_factor(int(epoch)))
        self._target().set_weight_factor(self.factor)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.factor is not None:
            logs["subtask_weight_factor"] = self.factor
