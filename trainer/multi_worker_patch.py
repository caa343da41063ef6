"""A workaround for a Keras bug, kept apart so that it can be deleted in one piece.

Upstream: keras-team/keras#20585 (open as of Keras 3.15): ``Model.fit`` under
``tf.distribute.MultiWorkerMirroredStrategy`` fails. Remove this module (and its one call in
``trainer.training``) when ``tests/test_distribute.py``'s multi-worker test passes without it
on the pinned Keras.
"""

from __future__ import annotations


def prebuild(model, train_ds) -> None:
    """Work around keras-team/keras#20585 (open): Keras 3's ``fit`` fails twice under
    MultiWorkerMirroredStrategy. (1) It reduces one distributed input batch across workers only
    to learn its shapes ("Attempt to convert a value (PerReplica ...)"): the shapes are known
    here, so loss, metrics and optimizer are built from them and that step is skipped. (2) It
    averages each worker's scalar metrics along axis 0, which scalars lack: they are averaged
    as scalars instead. Nothing changes for any other strategy."""
    import tensorflow as tf

    if not isinstance(model.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    x_spec, y_spec = train_ds.element_spec
    local_batch = (tf.zeros([1, *x_spec.shape[1:]], x_spec.dtype), tf.zeros([1, *y_spec.shape[1:]], y_spec.dtype))
    model._symbolic_build(data_batch=local_batch)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    from keras.src.backend.tensorflow import trainer as tf_trainer

    if not getattr(tf_trainer.reduce_per_replica, "artery_edge_patch", False):
        original = tf_trainer.reduce_per_replica

        def reduce_per_replica(values, strategy, reduction):
            # Keras reduces every worker's scalar metrics with MEAN along axis 0, which scalars lack
            if reduction in ("auto", "mean") and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
                return tf.nest.map_structure(
                    lambda v: strategy.reduce("MEAN", v, axis=None) if isinstance(v, tf.distribute.DistributedValues)
                    else v, values)
            return original(values, strategy, reduction)

        reduce_per_replica.artery_edge_patch = True
        tf_trainer.reduce_per_replica = reduce_per_replica
