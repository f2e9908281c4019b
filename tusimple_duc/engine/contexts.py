"""Devices, kvstore and the worker's place in a distributed run.

* ``use_cpu=True``: ``cpus`` CPU contexts ``mx.cpu(0) .. mx.cpu(cpus - 1)`` (several CPU
  contexts exercise the multi-device path without GPUs); otherwise one context per id in
  ``gpus``. The global batch of a worker is split evenly across its contexts.
* kvstore ``local`` / ``device`` / ``nccl`` aggregate gradients across the contexts of one
  process (none is created for a single context, as in the released solver);
  ``dist_sync`` / ``dist_device_sync`` also across the worker processes of MXNet's
  parameter server, configured by the ``DMLC_*`` environment (see ``tools/launch_local.py``).
* Gradients are summed by the kvstore and every worker applies the same SGD update
  locally (``update_on_kvstore=False``), so the optimizer state and the learning rate
  live in the worker: they are checkpointed and resumed like in a single process.
  ``dist_async`` needs the update on the servers and is rejected.
* Across workers the sum goes through :class:`WorkerAllreduce`, not Gluon's Trainer:
  MXNet's distributed kvstore sends the arrays' raw memory, which fails for the oneDNN
  (MKLDNN) blocked layouts that CPU convolutions leave in weights and gradients
  ("We can't generate TBlob for MKLDNN data"; the server then dies with "init <key> first").
  :class:`WorkerAllreduce` stages every array in plain host memory first. Both
  ``dist_sync`` and ``dist_device_sync`` therefore sum the devices of a worker on its
  first device and the workers on the servers.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional, Sequence

import mxnet as mx
import numpy as np

from tusimple_duc.config import EnvSection
from tusimple_duc.errors import ConfigError

DMLC_VARIABLES = ("DMLC_ROLE", "DMLC_PS_ROOT_URI", "DMLC_PS_ROOT_PORT", "DMLC_NUM_SERVER", "DMLC_NUM_WORKER")
DISTRIBUTED_KVSTORES = ("dist_sync", "dist_device_sync")


@dataclass
class DeviceSetup:
    """Contexts of this process, its kvstore and its rank among the workers.

    Attributes
    ----------
    contexts : one ``mx.Context`` per device of this worker
    kvstore : ``mx.kv.KVStore`` (distributed), a kvstore name for Gluon's Trainer
        (several local devices) or None (one device, one process)
    rank, num_workers : this worker's index and the number of workers (0 and 1 locally)
    """

    contexts: List[mx.Context]
    kvstore: Optional[object]
    rank: int = 0
    num_workers: int = 1

    @property
    def distributed(self) -> bool:
        """True when gradients are also summed across worker processes."""
        return isinstance(self.kvstore, mx.kv.KVStore) and "dist" in self.kvstore.type

    @property
    def is_chief(self) -> bool:
        """Rank 0 writes checkpoints, logs and the progress bar."""
        return self.rank == 0


def make_contexts(env: EnvSection, source: str = "<config>") -> List[mx.Context]:
    """The contexts of ``[env]``; GPUs must exist."""
    if env.use_cpu:
        return [mx.cpu(i) for i in range(env.cpus)]
    visible = mx.context.num_gpus()
    missing = [g for g in env.gpus if g >= visible or g < 0]
    if missing:
        raise ConfigError(f"{source}: [env] gpus: GPU {missing[0]} not available "
                          f"({visible} visible); set use_cpu=True to train on the CPU")
    return [mx.gpu(g) for g in env.gpus]


def check_kvstore(env: EnvSection, source: str = "<config>", environ=os.environ) -> None:
    """Reject kvstore settings that cannot work here (before anything is built)."""
    if env.kv_store == "dist_async":
        raise ConfigError(f"{source}: [env] kv_store: dist_async is not supported (updates happen on "
                          f"the workers); use dist_sync or dist_device_sync")
    if env.kv_store == "nccl" and env.use_cpu:
        raise ConfigError(f"{source}: [env] kv_store: nccl needs GPUs, but use_cpu is True")
    if environ.get("DMLC_ROLE") == "worker" and env.kv_store not in DISTRIBUTED_KVSTORES:
        raise ConfigError(f"{source}: [env] kv_store: {env.kv_store} in a parameter-server worker "
                          f"(DMLC_ROLE=worker): every worker would train alone; use dist_sync")
    if env.kv_store in DISTRIBUTED_KVSTORES:
        missing = [name for name in DMLC_VARIABLES if not environ.get(name)]
        if missing:
            raise ConfigError(f"{source}: [env] kv_store: {env.kv_store} needs the parameter-server "
                              f"environment ({', '.join(missing)} unset); start the workers with "
                              f"tools/launch_local.py or your cluster launcher (docs/TRAINING.md)")


def setup_devices(env: EnvSection, source: str = "<config>") -> DeviceSetup:
    """Contexts and kvstore of this process (creating a distributed kvstore joins the job)."""
    check_kvstore(env, source)
    contexts = make_contexts(env, source)
    if env.kv_store in DISTRIBUTED_KVSTORES:
        kv = mx.kv.create(env.kv_store)
        return DeviceSetup(contexts, kv, kv.rank, kv.num_workers)
    return DeviceSetup(contexts, env.kv_store if len(contexts) > 1 else None)


class WorkerAllreduce:
    """Parameter broadcast and gradient sum over all devices and workers of a dist job.

    Construction (collective: every worker, same parameters, same order) stores rank 0's
    value of every parameter under keys ``0 .. P-1`` and copies it into every worker, so
    all workers start from identical parameters. :meth:`__call__` then replaces every
    device's gradient by the sum of the gradients of all devices of all workers.

    Parameters
    ----------
    kvstore : the ``dist_sync`` / ``dist_device_sync`` kvstore
    params : all parameters of the network, in a fixed order
    """

    def __init__(self, kvstore: "mx.kv.KVStore", params: Sequence) -> None:
        self._kv = kvstore
        self._params = list(params)
        keys = list(range(len(self._params)))
        host = [mx.nd.array(p.data(p.list_ctx()[0]).asnumpy(), ctx=mx.cpu()) for p in self._params]
        kvstore.init(keys, host)
        kvstore.pull(keys, out=host)
        for param, value in zip(self._params, host):
            param.set_data(value)
        self._trainable = [i for i, p in enumerate(self._params) if p.grad_req != "null"]
        self._sent = [mx.nd.zeros(self._params[i].shape, ctx=mx.cpu()) for i in self._trainable]
        self._received = [mx.nd.zeros(self._params[i].shape, ctx=mx.cpu()) for i in self._trainable]

    def __call__(self) -> None:
        for index, sent in zip(self._trainable, self._sent):
            grads = self._params[index].list_grad()
            total = grads[0] if len(grads) == 1 else mx.nd.add_n(*[g.as_in_context(grads[0].context)
                                                                    for g in grads])
            total.copyto(sent)
        self._kv.pushpull(self._trainable, self._sent, out=self._received)
        for index, received in zip(self._trainable, self._received):
            for grad in self._params[index].list_grad():
                received.copyto(grad)


class WorkerSum:
    """Elementwise sum of a small float vector over all workers of a distributed job
    (identity otherwise).

    Uses kvstore key ``key`` (pick one after the parameters' keys), initialised when
    constructed; every worker must construct it and call it the same number of times in
    the same order. The servers add in float32: integers
    are exact up to 2**24.
    """

    def __init__(self, devices: DeviceSetup, key: int, size: int) -> None:
        self._kv = devices.kvstore if devices.distributed else None
        self._key = key
        self._size = size
        if self._kv is not None:
            self._kv.init(self._key, mx.nd.zeros((self._size,)))

    def __call__(self, values: Sequence[float]) -> np.ndarray:
        local = np.asarray(values, dtype=np.float64)
        if self._kv is None:
            return local
        out = mx.nd.zeros((self._size,))
        self._kv.pushpull(self._key, mx.nd.array(local, dtype=np.float32), out=out)
        return out.asnumpy().astype(np.float64)
