#!/usr/bin/env python
"""GPU self-test: mxnet-cu112 with the wheels' CUDA libraries, forward and updates on the GPUs.

    python tools/gpu_selftest.py                      # every visible GPU, the released network
    python tools/gpu_selftest.py --cpu-contexts 2 --preset tiny_duc_hdc --size 32   # same checks on CPU contexts

Checks, printed as a PASS / FAIL / SKIP table (exit 1 if any FAIL; exit 2 with a message
when no GPU is visible and ``--cpu-contexts`` is not given):

1. ``runtime``: MXNet imports, its CUDA / cuDNN / NCCL features, the CUDA libraries
   ``tusimple_duc.runtime`` preloaded from the nvidia-* wheels;
2. ``forward``: softmax probabilities of the network on device 0 equal the CPU's;
3. ``update``: one SGD update (the released solver's momentum, weight decay,
   ``rescale_grad = 1 / batch``, ``clip_gradient``) by the engine's ``SegmentationTrainer``
   on 1 device, and on 2 devices with each kvstore (``device`` and ``nccl`` on GPUs;
   ``local`` and ``device`` on CPU contexts, where ``nccl`` is skipped), equals the
   original-semantics reference: ``mx.mod.Module`` on the released training symbol
   (``SoftmaxOutput``, ``normalization='valid'``) with the same optimizer settings, devices
   and kvstore. (As in the original, each device normalises the loss by its own valid
   pixels, so a 2-device update is not the 1-device one: each is checked against its own.)
4. ``throughput``: forward images/s and training updates/s on the devices (a figure, not a check).
"""
import argparse
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import tusimple_duc  # noqa: F401  (before mxnet: CUDA preload, threads)
from tusimple_duc import runtime
from tusimple_duc.cli import run_cli

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402

from tusimple_duc.config import ModelSection  # noqa: E402
from tusimple_duc.engine.contexts import DeviceSetup  # noqa: E402
from tusimple_duc.engine.schedules import schedule_from_config  # noqa: E402
from tusimple_duc.engine.trainer import SegmentationTrainer  # noqa: E402
from tusimple_duc.inference.predictor import forward_probabilities  # noqa: E402
from tusimple_duc.io.names import symbol_name  # noqa: E402
from tusimple_duc.io.symbol import LABEL_NAME, training_symbol  # noqa: E402
from tusimple_duc.layout import label_to_duc_layout  # noqa: E402
from tusimple_duc.models.presets import get_model  # noqa: E402

#: The released solver's optimizer settings (lr from the example config).
SOLVER = dict(lr=1e-4, momentum=0.9, weight_decay=5e-5, clip_gradient=5.0)
IGNORE_LABEL = 255
NO_GPU_EXIT = 2


@dataclass
class Check:
    """One row of the result table."""

    name: str
    status: str            # PASS, FAIL or SKIP
    detail: str


def initial_values(preset: str, size: int, seed: int) -> Dict[str, np.ndarray]:
    """Gluon-named initial values of every parameter: Xavier weights, random statistics."""
    mx.random.seed(seed)
    net = get_model(preset)
    net.initialize(mx.init.Xavier(factor_type="in", magnitude=2.34))
    net(mx.nd.zeros((1, 3, size, size)))
    rng = np.random.RandomState(seed)
    values = {name: param.data().asnumpy() for name, param in net.collect_params().items()}
    for name, value in values.items():
        if name.endswith("_running_var"):
            values[name] = rng.uniform(0.5, 2.0, value.shape).astype(np.float32)
        elif name.endswith(("_running_mean", "_beta", "_bias")):
            values[name] = rng.normal(0, 0.1, value.shape).astype(np.float32)
    return values


def network_on(preset: str, values: Dict[str, np.ndarray], contexts: Sequence[mx.Context], size: int):
    """The preset's network with ``values`` on every context, hybridized."""
    net = get_model(preset)
    net.initialize(ctx=list(contexts))
    net(mx.nd.zeros((1, 3, size, size), ctx=contexts[0]))
    for name, param in net.collect_params().items():
        param.set_data(mx.nd.array(values[name]))
    net.hybridize(static_alloc=True)
    return net


def sample_batch(net, batch: int, size: int, seed: int):
    """Random mean-subtracted images (B, 3, size, size) and labels (B, size/s, size/s), 20 % ignored."""
    rng = np.random.RandomState(seed)
    data = rng.normal(0, 40, (batch, 3, size, size)).astype(np.float32)
    side = size // net.prediction_stride
    label = rng.randint(0, net.num_classes, (batch, side, side)).astype(np.float32)
    label[rng.rand(*label.shape) < 0.2] = IGNORE_LABEL
    return data, label


def engine_update(preset, values, contexts, kvstore, data, label, size) -> Dict[str, np.ndarray]:
    """Parameters after one update of the engine's trainer on ``contexts``."""
    net = network_on(preset, values, contexts, size)
    model = ModelSection(lr=SOLVER["lr"], lr_policy="step", lr_factor=1.0, momentum=SOLVER["momentum"],
                         weight_decay=SOLVER["weight_decay"], clip_gradient=SOLVER["clip_gradient"])
    devices = DeviceSetup(list(contexts), kvstore if len(contexts) > 1 else None)
    trainer = SegmentationTrainer(net, devices, schedule_from_config(model, 1), model, IGNORE_LABEL, len(data))
    trainer.step(data, label)
    return trainer.parameter_arrays()


def module_update(preset, values, contexts, kvstore, data, label, size) -> Dict[str, np.ndarray]:
    """Parameters after one update of the original pipeline: Module + SoftmaxOutput + SGD on ``contexts``."""
    net = get_model(preset)
    net.initialize()
    net(mx.nd.zeros((1, 3, size, size)))
    symbol = training_symbol(net, IGNORE_LABEL)
    ratio = net.spec.output_stride // net.prediction_stride
    flat = np.stack([label_to_duc_layout(sample, ratio) for sample in label])
    module = mx.mod.Module(symbol, data_names=["data"], label_names=[LABEL_NAME], context=list(contexts))
    module.bind(data_shapes=[("data", data.shape)], label_shapes=[(LABEL_NAME, flat.shape)])
    aux_names = set(symbol.list_auxiliary_states())
    arrays = {symbol_name(k): mx.nd.array(v) for k, v in values.items()}
    module.init_params(arg_params={k: v for k, v in arrays.items() if k not in aux_names},
                       aux_params={k: v for k, v in arrays.items() if k in aux_names})
    module.init_optimizer(kvstore=kvstore, optimizer="sgd", optimizer_params=dict(
        learning_rate=SOLVER["lr"], momentum=SOLVER["momentum"], wd=SOLVER["weight_decay"],
        rescale_grad=1.0 / len(data), clip_gradient=SOLVER["clip_gradient"]))
    module.forward_backward(mx.io.DataBatch([mx.nd.array(data)], [mx.nd.array(flat)]))
    module.update()
    arg_params, aux_params = module.get_params()
    merged = {**arg_params, **aux_params}
    return {name: merged[symbol_name(name)].asnumpy() for name in values}


def change_error(result: Dict[str, np.ndarray], reference: Dict[str, np.ndarray],
                 start: Dict[str, np.ndarray]) -> float:
    """||result - reference|| / ||reference - start|| over the trained parameters."""
    names = [n for n in start if not n.endswith(("_running_mean", "_running_var"))]
    diff = np.concatenate([(result[n] - reference[n]).ravel() for n in names])
    change = np.concatenate([(reference[n] - start[n]).ravel() for n in names])
    return float(np.linalg.norm(diff) / max(np.linalg.norm(change), 1e-30))


def runtime_check(on_gpu: bool) -> Check:
    """MXNet's build features and the preloaded CUDA libraries."""
    features = mx.runtime.Features()
    enabled = [name for name in ("CUDA", "CUDNN", "NCCL") if features.is_enabled(name)]
    loaded = len(runtime.cuda_libraries_to_preload(runtime.find_cuda_library_dirs(runtime.site_package_dirs())))
    detail = f"mxnet {mx.__version__}, features {','.join(enabled) or 'none'}, {loaded} CUDA wheel libraries found"
    ok = not on_gpu or {"CUDA", "CUDNN"} <= set(enabled)
    return Check("runtime", "PASS" if ok else "FAIL", detail)


def run_checks(preset: str, size: int, devices: List[mx.Context], on_gpu: bool, tolerance: float,
               repeats: int) -> List[Check]:
    """Every check of the module docstring on ``devices`` (GPUs, or CPU contexts)."""
    checks = [runtime_check(on_gpu)]
    start = initial_values(preset, size, seed=1)
    net = network_on(preset, start, devices[:1], size)
    cpu_net = network_on(preset, start, [mx.cpu()], size)
    data, label = sample_batch(net, 2, size, seed=2)
    on_device = forward_probabilities(net, data[:1], devices[:1])
    on_cpu = forward_probabilities(cpu_net, data[:1], [mx.cpu()])
    gap = float(np.abs(on_device - on_cpu).max())
    checks.append(Check("forward device 0 vs cpu", "PASS" if gap <= tolerance else "FAIL",
                        f"max |p difference| {gap:.2e} (tolerance {tolerance:.0e})"))

    runs = [("1 device", devices[:1], None)]
    kvstores = ("device", "nccl") if on_gpu else ("local", "device")
    for kvstore in kvstores + (() if on_gpu else ("nccl",)):
        runs.append((f"2 devices, kvstore {kvstore}", devices[:2], kvstore))
    for title, contexts, kvstore in runs:
        name = f"update {title} vs Module"
        if len(contexts) < (2 if kvstore else 1):
            checks.append(Check(name, "SKIP", f"needs 2 devices, {len(devices)} given"))
            continue
        if kvstore == "nccl" and not on_gpu:
            checks.append(Check(name, "SKIP", "nccl needs GPUs"))
            continue
        reference = module_update(preset, start, contexts, kvstore, data, label, size)
        error = change_error(engine_update(preset, start, contexts, kvstore, data, label, size), reference, start)
        checks.append(Check(name, "PASS" if error <= 1e-3 else "FAIL",
                            f"relative error of the update {error:.2e} (tolerance 1e-3)"))

    checks.append(throughput(preset, start, devices, size, repeats))
    return checks


def throughput(preset: str, start: Dict[str, np.ndarray], devices: List[mx.Context], size: int,
               repeats: int) -> Check:
    """Forward images/s on device 0 and updates/s (batch 1 per device) on every device."""
    net = network_on(preset, start, devices[:1], size)
    data, label = sample_batch(net, len(devices), size, seed=3)
    forward_probabilities(net, data[:1], devices[:1])
    tic = time.perf_counter()
    for _ in range(repeats):
        forward_probabilities(net, data[:1], devices[:1])
    forward_rate = repeats / (time.perf_counter() - tic)
    train_net = network_on(preset, start, devices, size)
    model = ModelSection(lr=SOLVER["lr"], lr_policy="step", lr_factor=1.0)
    setup = DeviceSetup(list(devices), "device" if len(devices) > 1 else None)
    trainer = SegmentationTrainer(train_net, setup, schedule_from_config(model, 1), model, IGNORE_LABEL, len(data))
    trainer.step(data, label)
    tic = time.perf_counter()
    for _ in range(repeats):
        trainer.step(data, label)
    update_rate = repeats / (time.perf_counter() - tic)
    return Check("throughput", "PASS", f"{size}x{size}: forward {forward_rate:.2f} images/s on 1 device, "
                                       f"{update_rate:.2f} updates/s of batch {len(devices)} on {len(devices)}")


def table_text(checks: Sequence[Check]) -> str:
    """The result table."""
    width = max(len(c.name) for c in checks)
    lines = [f"{'check'.ljust(width)}  result  detail", "-" * (width + 40)]
    lines += [f"{c.name.ljust(width)}  {c.status.ljust(6)}  {c.detail}" for c in checks]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="resnet101_duc_hdc_released", help="network preset (default %(default)s)")
    parser.add_argument("--size", type=int, default=512, help="square input side in pixels (multiple of 8) (default %(default)s)")
    parser.add_argument("--cpu-contexts", type=int, default=0, metavar="N",
                        help="run the checks on N CPU contexts instead of GPUs (default %(default)s)")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="max probability difference GPU vs CPU (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=5, help="timed iterations of the throughput figure (default %(default)s)")
    args = parser.parse_args(argv)
    if args.cpu_contexts:
        devices, on_gpu = [mx.cpu(i) for i in range(args.cpu_contexts)], False
    else:
        count = mx.context.num_gpus()
        if count == 0:
            print("error: no GPU visible to MXNet (check nvidia-smi, CUDA_VISIBLE_DEVICES and that mxnet-cu112 "
                  "is installed: pip install -e \".[gpu]\"); --cpu-contexts N runs the same checks on the CPU",
                  file=sys.stderr)
            return NO_GPU_EXIT
        devices, on_gpu = [mx.gpu(i) for i in range(count)], True
    checks = run_checks(args.preset, args.size, devices, on_gpu, args.tolerance, args.repeats)
    print(table_text(checks))
    failed = [c.name for c in checks if c.status == "FAIL"]
    print(f"FAIL: {', '.join(failed)}" if failed else "all checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
