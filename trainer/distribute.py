"""Which devices train, through TensorFlow's own ``tf.distribute`` strategies (no home-made scheduler).

- ``auto``: ``MirroredStrategy`` when more than one GPU is visible, else the default strategy.
- ``default``: whatever single device TensorFlow picks.
- ``mirrored``: in-graph replication over all local GPUs, or the ``--devices`` given.
- ``multi-worker``: ``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``; the chief writes the run,
  the other workers write to a temporary folder (the TensorFlow multi-worker Keras guide's pattern).

``--batch-size`` is the batch of one replica; the global batch is that times the replicas.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Iterator, Optional

from artery_edge.trainer.config import ConfigError, TrainConfig

STRATEGIES = ("auto", "default", "mirrored", "multi-worker")


@dataclass
class Cluster:
    """This process's place in a multi-worker cluster, from ``TF_CONFIG``."""

    workers: int
    task_type: str
    task_index: int

    @property
    def is_chief(self) -> bool:
        return self.task_type == "chief" or (self.task_type == "worker" and self.task_index == 0)


def read_tf_config(text: Optional[str]) -> Cluster:
    """Parse and check ``TF_CONFIG``; a malformed one is a one-line error, not a hang or a traceback."""
    if not text:
        raise ConfigError("--strategy multi-worker needs TF_CONFIG (a JSON cluster spec and this worker's task)")
    try:
        spec: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"TF_CONFIG is not valid JSON ({exc.msg} at character {exc.pos})") from None
    cluster = spec.get("cluster") if isinstance(spec, dict) else None
    task = spec.get("task") if isinstance(spec, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise ConfigError('TF_CONFIG needs "cluster" and "task" objects')
    members = {kind: hosts for kind, hosts in cluster.items() if kind in ("chief", "worker")}
    if not members or not all(isinstance(h, list) and h and all(isinstance(a, str) and ":" in a for a in h)
                              for h in members.values()):
        raise ConfigError('TF_CONFIG "cluster" needs "worker" (and optionally "chief") lists of host:port')
    kind, index = task.get("type"), task.get("index")
    if kind not in members or not isinstance(index, int) or not 0 <= index < len(members[kind]):
        raise ConfigError(f'TF_CONFIG "task" {task!r} does not name a member of the cluster')
    return Cluster(workers=sum(len(h) for h in members.values()), task_type=kind, task_index=index)


def check_request(config: TrainConfig) -> Optional[Cluster]:
    """Everything that can be checked without starting TensorFlow's runtime; the cluster if any."""
    if config.strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy {config.strategy!r}; choose from {', '.join(STRATEGIES)}")
    if config.devices and config.strategy != "mirrored":
        raise ConfigError("--devices applies to --strategy mirrored only")
    if config.strategy == "multi-worker":
        return read_tf_config(os.environ.get("TF_CONFIG"))
    return None


def requested_devices(config: TrainConfig) -> list[str]:
    return [d.strip() for d in config.devices.split(",") if d.strip()]


def check_devices(config: TrainConfig) -> None:
    """Every ``--devices`` name must be a device of this machine, before any strategy is built:
    TensorFlow's MirroredStrategy hangs on devices that do not exist, or quietly trains on the CPU."""
    import tensorflow as tf

    requested = requested_devices(config)
    if not requested:
        return
    available = {}
    for device in tf.config.list_logical_devices():
        spec = tf.DeviceSpec.from_string(device.name)
        available[(spec.device_type.upper(), spec.device_index)] = f"/{spec.device_type.lower()}:{spec.device_index}"
    seen = set()
    for name in requested:
        try:
            spec = tf.DeviceSpec.from_string(name)
        except (ValueError, TypeError):
            raise ConfigError(f"--devices {name!r} is not a device name (e.g. /gpu:0)") from None
        key = ((spec.device_type or "").upper(), spec.device_index)
        if key not in available:
            raise ConfigError(f"--devices {name}: no such device on this machine "
                              f"(found {', '.join(sorted(available.values())) or 'none'})")
        if key in seen:
            raise ConfigError(f"--devices {name} is named twice")
        seen.add(key)


WATCHDOG = """
import os, select, signal, sys
parent, seconds = int(sys.argv[1]), float(sys.argv[2])
def stop(signum, frame):
    raise InterruptedError
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
try:
    ready, _, _ = select.select([0], [], [], seconds)
    if ready:
        sys.exit(0)  # the wait ended: the parent closed the pipe
    message = f"the other workers of TF_CONFIG did not connect within {seconds:g} s (--cluster-timeout)"
except InterruptedError:
    message = "interrupted while waiting for the other workers"
print(f"error: {message}", file=sys.stderr, flush=True)
os.kill(parent, signal.SIGKILL)
"""


@contextlib.contextmanager
def cluster_deadline(seconds: float) -> Iterator[None]:
    """Bound the wait for the other workers of a multi-worker cluster.

    ``MultiWorkerMirroredStrategy()`` blocks inside TensorFlow's C++ until every worker has
    connected, holding the interpreter (no Python thread or handler runs), and TensorFlow's
    preemption notifier takes SIGTERM over: a worker that never came meant a wait without end.
    A small watchdog process, in the same process group, ends this one (SIGKILL, after one
    error line) when ``seconds`` pass, or when Ctrl-C or a SIGTERM to the group (systemd,
    ``kill -TERM -PGID``) reaches it. Nothing of the run exists yet, so nothing is left behind.
    """
    watchdog = subprocess.Popen([sys.executable, "-c", WATCHDOG, str(os.getpid()), str(seconds)],
                                stdin=subprocess.PIPE)
    try:
        yield
    finally:
        watchdog.stdin.close()
        watchdog.wait()


def gpus() -> list:
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


def make_strategy(config: TrainConfig, log) -> Any:
    """The strategy to build, compile and fit under; logs what it chose and why."""
    import tensorflow as tf

    check_request(config)
    if config.mixed_precision and not gpus():
        raise ConfigError("--mixed-precision needs a GPU (on a CPU, float16 only slows training down)")
    if config.strategy == "multi-worker":
        log(f"waiting up to {config.cluster_timeout:g} s for the other workers of TF_CONFIG")
        with cluster_deadline(config.cluster_timeout):
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
    elif config.strategy == "mirrored" or (config.strategy == "auto" and len(gpus()) > 1):
        check_devices(config)
        try:
            strategy = tf.distribute.MirroredStrategy(devices=requested_devices(config) or None)
        except (ValueError, RuntimeError) as exc:
            raise ConfigError(f"--devices {config.devices}: {str(exc).splitlines()[0]}") from None
        if strategy.num_replicas_in_sync == 1:
            log("mirrored strategy with one device: nothing to mirror onto, training as on one device")
    else:
        strategy = tf.distribute.get_strategy()
    log(f"strategy {describe(strategy)}: {strategy.num_replicas_in_sync} replica(s), "
        f"global batch {config.batch_size * strategy.num_replicas_in_sync}")
    return strategy


def is_chief(strategy) -> bool:
    """The worker that writes the run: the only one, or the chief of a multi-worker cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return Cluster(0, resolver.task_type, resolver.task_id).is_chief


def describe(strategy) -> str:
    """The public name of a strategy (``tf.distribute`` aliases some classes)."""
    import tensorflow as tf

    names = ((tf.distribute.MultiWorkerMirroredStrategy, "MultiWorkerMirroredStrategy"),
             (tf.distribute.MirroredStrategy, "MirroredStrategy"))
    return next((name for cls, name in names if isinstance(strategy, cls)), "default")
