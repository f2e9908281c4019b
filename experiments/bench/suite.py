"""The benchmark suite: every variant in its own worker process, timings interleaved.

Sections (:data:`SECTIONS`):

``main``       per input shape: (a) ``gluon`` (this project's optimized forward), (b) ``module``
               (``mx.mod.Module`` on the released-format symbol JSON), (c) ``torch`` (PyTorch
               eager), the deployment backends on the suite's ONNX export of the same weights
               (OpenVINO fp32, bf16, int8, ONNX Runtime fp32, int8: bare runtimes,
               :mod:`.backend_variants`) and a uint8 image segmented whole (pre/post-processing
               included) by the predictor with FastForward (``predict-whole``), by the predictor
               with OpenVINO fp32 (``predict-openvino``, what test.py runs) and by hand around
               bare OpenVINO (``bare-openvino``); ``main_variants`` chooses. Variants the install
               cannot run are recorded as unavailable with the reason. Every output is checked
               against its reference before anything is timed (:mod:`.compare`); then ``warmup``
               more runs and ``runs`` interleaved rounds; median latency, speed-up over the
               reference, GFLOP/s (``models.flops``) and its fraction of the measured GEMM peak,
               argmax agreement, peak resident memory of each process.
``levers``     at ``levers_shape``, one worker at a time, each adding a lever: imperative,
               hybridized, static graph, oneDNN fusion with the models' plain ``relu``, + ReLU
               rewrite, + 320-channel head (= ``gluon``, all levers); then ``gluon`` without the
               DUC rearrangement and with MXNet's default thread count.
``sliding``    at ``sliding_shape``: ``Predictor.predict`` whole image vs 800x800 windows
               (stride 600), interleaved.
``precision``  at ``precision_shape``: fp32, bf16, int8 (head, residual stream and last stage
               fp32, the default), int8-residual (head and residual stream fp32) and int8-all
               (every layer int8) interleaved; per low precision the speed-up, the fraction of
               pixels whose argmax equals fp32's (all pixels, and those where fp32's top-two
               probabilities differ by at least ``precision.CONFIDENT_MARGIN``) and the mIoU change on the
               synthetic val split (at prediction resolution), with the benchmark's random
               weights (timed) and, if given, a trained checkpoint (``trained``: a preset or a
               training config file, at ``trained_shape``; untimed). Next to them, scored the
               same way against FastForward fp32, the deployment backends
               ``precision_backends`` (default: all of :data:`BARE_VARIANTS` this install runs,
               each on the ONNX export of the same weights, int8 calibrated on the same images;
               :mod:`.precision`).
``train``      one engine SGD update (forward, backward, update) on a ``train_crop`` batch of 1.

Weights: ``checkpoint``/``epoch`` exported to the released format (``io.export``), or random
ones (the released solver's initializer, ``seed``) saved with ``io.checkpoint``. Inputs are
synthetic Cityscapes images (``data.synthetic``), mean-subtracted.
"""
from __future__ import annotations

import importlib.util
import os
import statistics
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Tuple

import mxnet as mx
import numpy as np

from experiments.bench.compare import IMAGE_REFERENCE, compare_outputs, reference_of
from experiments.bench.int8_peak import int8_gemm_peak
from experiments.bench.machine import available_memory_mb, describe_machine, gemm_peak, load_average
from experiments.bench.process import Worker
from experiments.bench.peers import PEER_VARIANTS, is_peer, peer_command, probe
from experiments.bench.peers import unavailable_reason as peer_unavailable_reason
from experiments.bench.precision import PrecisionSection
from experiments.bench.scoring import read_rgb, targets, train_id_map
from experiments.bench.backend_variants import (BARE_VARIANTS, IMAGE_VARIANTS, backend_precision, geometry_net,
                                                 unavailable_reason)
from experiments.bench.systems import is_system_preset, network_macs, save_system_weights
from experiments.bench.variants import SLIDING_STRIDE, SLIDING_WINDOW, VariantConfig, network
from tusimple_duc.synthetic.cityscapes import write_synthetic_cityscapes
from tusimple_duc.engine.network import initialise
from tusimple_duc.inference.predictor import RELEASED_RGB_MEAN
from tusimple_duc.inference.windows import network_input, padded_shape, window_origins
from tusimple_duc.inference.backends import TRACE_SHAPE, is_int8, prediction_layout
from tusimple_duc.io.checkpoint import load_checkpoint, save_checkpoint
from tusimple_duc.io.export import export_model, export_onnx
from tusimple_duc.models import get_model
from tusimple_duc.models.flops import achieved_gflops

Shape = Tuple[int, int]
SECTIONS = ("main", "levers", "sliding", "precision", "train")
BACKEND_VARIANTS = BARE_VARIANTS + IMAGE_VARIANTS
MAIN_VARIANTS = ("gluon", "module", "torch", *BARE_VARIANTS, *PEER_VARIANTS, IMAGE_REFERENCE, *IMAGE_VARIANTS)
LEVERS = ("lever-imperative", "lever-hybridized", "lever-static", "lever-fused-plain-relu",
          "lever-unpadded-head", "gluon", "lever-raw-head")
HALF_THREADS = "gluon (MXNet default threads)"
MEMORY_HEADROOM = 0.9
#: what a peer worker's ready reply adds to its results: the peer's versions, OpenVINO's precision
PEER_READY_FIELDS = ("versions", "inference_precision")


@dataclass(frozen=True)
class BenchOptions:
    """Everything ``tools/bench.py`` can set (see the module docstring)."""

    workdir: str
    preset: str = "resnet101_duc_hdc_released"
    shapes: Tuple[Shape, ...] = ((1024, 2048), (512, 1024))
    runs: int = 5
    warmup: int = 1
    sections: Tuple[str, ...] = SECTIONS
    checkpoint: Optional[str] = None
    epoch: int = 0
    seed: int = 0
    tolerance: float = 1e-3
    levers_shape: Optional[Shape] = None      # default: the smallest of ``shapes``
    sliding_shape: Optional[Shape] = None     # default: the largest
    precision_shape: Optional[Shape] = None   # default: the smallest
    precision_images: int = 2
    calibration_images: int = 2
    calibration_mode: str = "naive"
    train_crop: Shape = (544, 544)
    trained: Optional[Tuple[str, str, int]] = None   # (preset or train .cfg, prefix, epoch)
    trained_shape: Optional[Shape] = None     # default: precision_shape
    gemm_size: int = 4096
    main_variants: Tuple[str, ...] = MAIN_VARIANTS
    precision_backends: Tuple[str, ...] = BARE_VARIANTS
    peer_python: Optional[str] = None          # interpreter of the peer variants (experiments.bench.peers)


class Suite(PrecisionSection):
    """Runs the sections of :class:`BenchOptions`; ``log`` receives progress lines."""

    def __init__(self, options: BenchOptions, log: Callable[[str], None] = print) -> None:
        self.options = options
        self.log = log
        self.workers: List[Worker] = []
        self.prefix = os.path.join(options.workdir, "weights")
        self.peak = 0.0
        self.int8_peak: Optional[float] = None   # int8 GEMM peak, GOP/s (OpenVINO installed)
        self._synthetic: Dict[Shape, object] = {}
        self.peer: Optional[Dict[str, object]] = None   # the peer interpreter's probe

    # ------------------------------------------------------------------ helpers
    def spawn(self, label: str, variant: str, input_path: str, prefix: Optional[str] = None,
              preset: Optional[str] = None, epoch: int = 0, env: Optional[Dict[str, str]] = None,
              **extra) -> Worker:
        config = VariantConfig(variant=variant, preset=preset or self.options.preset,
                               prefix=prefix or self.prefix, epoch=epoch, input=input_path, **extra)
        log_path = os.path.join(self.options.workdir, f"worker-{len(self.workers)}-{variant}.log")
        worker = Worker(label, config, log_path, env)
        self.workers.append(worker)
        return worker

    def spawn_peer(self, name: str, input_path: str, shape: Shape,
                   weights: Optional[Tuple[str, str, int]] = None) -> Worker:
        """The peer variant ``name`` in the peer interpreter, on the suite's ONNX export (of
        ``weights``, default the benchmark's, as :meth:`onnx_file`) and ``input_path``; its
        ``seg_prob`` output rearranged to the pixel layout."""
        net = geometry_net(weights[0] if weights else self.options.preset)
        command = peer_command(self.options.peer_python, name, self.onnx_file(weights), input_path,
                               self.calibration_inputs(shape))
        config = VariantConfig(variant=name, preset=self.options.preset, prefix=self.prefix, epoch=0,
                               input=input_path)
        log_path = os.path.join(self.options.workdir, f"worker-{len(self.workers)}-{name}.log")
        worker = Worker(name, config, log_path, command=command,
                        to_pixels=lambda flat: prediction_layout(flat, net, shape))
        self.workers.append(worker)
        return worker

    def unavailable(self, name: str) -> Optional[str]:
        """Why the main variant ``name`` cannot run here (None when it can)."""
        if is_peer(name):
            if self.options.peer_python and self.peer is None:
                self.peer = probe(self.options.peer_python)
            return peer_unavailable_reason(name, self.options.peer_python, self.peer)
        if name == "torch" and importlib.util.find_spec("torch") is None:
            return 'torch is not installed (pip install -e ".[bench]")'
        return unavailable_reason(name) if name in BACKEND_VARIANTS else None

    def close_all(self) -> None:
        for worker in self.workers:
            worker.kill()

    def path(self, name: str) -> str:
        return os.path.join(self.options.workdir, name)

    def synthetic(self, shape: Shape):
        """Synthetic Cityscapes at ``shape`` (train: calibration images, val: evaluation)."""
        if shape not in self._synthetic:
            o = self.options
            self._synthetic[shape] = write_synthetic_cityscapes(
                self.path(f"synthetic-{shape[0]}x{shape[1]}"),
                {"train": max(o.calibration_images, 1), "val": max(o.precision_images, 1)},
                image_size=shape, seed=o.seed)
        return self._synthetic[shape]

    def network_input(self, image_path: str, name: str) -> str:
        """Save the mean-subtracted (1, 3, H, W) input of an image; returns the ``.npy`` path."""
        image = read_rgb(image_path)
        path = self.path(f"{name}.npy")
        np.save(path, network_input(image, RELEASED_RGB_MEAN, image.shape[:2])[None])
        return path

    def timed(self, workers: Dict[str, Worker]) -> Dict[str, Dict[str, object]]:
        """Warm-up, then ``runs`` interleaved rounds; medians and memory of each worker."""
        o = self.options
        for _ in range(o.warmup):
            for worker in workers.values():
                worker.run()
        times: Dict[str, List[float]] = {name: [] for name in workers}
        for round_index in range(o.runs):
            for name, worker in workers.items():
                times[name].append(worker.run())
            self.log(f"  round {round_index + 1}/{o.runs}: " +
                     ", ".join(f"{n} {t[-1]:.3f}s" for n, t in times.items()))
        results = {}
        for name, worker in workers.items():
            results[name] = {"median_s": statistics.median(times[name]), "runs_s": times[name],
                             "build_s": worker.ready.get("build_seconds"),
                             "built_rss_mb": worker.ready.get("built_rss_mb"),
                             "threads": worker.ready.get("threads"), **worker.close(),
                             **{key: worker.ready[key] for key in PEER_READY_FIELDS if key in worker.ready}}
        return results

    def first_outputs(self, workers: Dict[str, Worker], tag: str) -> Dict[str, np.ndarray]:
        """One run of every worker (the first warm-up) saving its probabilities."""
        outputs = {}
        for name, worker in workers.items():
            worker.wait_ready()
            path = self.path(f"out-{tag}-{name}.npy")
            worker.run(save=path)
            outputs[name] = worker.saved_probabilities(path)
        return outputs

    # ------------------------------------------------------------------ sections
    def prepare_weights(self) -> Dict[str, object]:
        o = self.options
        if is_system_preset(o.preset):
            return {"source": save_system_weights(o.preset, o.checkpoint, o.epoch, o.seed, self.prefix,
                                                  self.module_prefix())}
        if o.checkpoint:
            export_model(o.checkpoint, o.epoch, self.prefix, o.preset, overwrite=True)
            return {"source": f"{o.checkpoint} epoch {o.epoch}"}
        net = get_model(o.preset)
        stride = int(net.output_stride)
        initialise(net, [mx.cpu()], o.seed, (1, 3, 4 * stride, 4 * stride))
        save_checkpoint(net, self.prefix, 0)
        return {"source": f"random (released initializer, seed {o.seed})"}

    def module_prefix(self) -> str:
        """The checkpoint variant ``module`` loads: a system's exported graph has its own (PSPNet's
        leaves out the auxiliary head, which the Gluon network holds)."""
        return self.path("module") if is_system_preset(self.options.preset) else self.prefix

    def add_throughput(self, variants: Dict[str, Dict[str, object]], shape: Shape) -> None:
        """GFLOP/s from the conventional multiply-add count (every tap) and from the taps inside
        the image only (what oneDNN's brgemm kernels compute), and the former's fraction of peak."""
        count = network_macs(self.options.preset, *shape)
        for result in variants.values():
            result["gflops"] = achieved_gflops(count.gemm, result["median_s"])
            result["gflops_valid_taps"] = achieved_gflops(count.gemm_valid, result["median_s"])
            result["fraction_of_peak"] = result["gflops"] / self.peak
            if self.int8_peak:
                result["fraction_of_int8_peak"] = result["gflops"] / self.int8_peak

    def main_shape(self, shape: Shape, memory_estimate_mb: Dict[str, float]) -> Dict[str, object]:
        """The main variants at ``shape``: interleaved when their estimated peak memories fit in
        90% of the available memory, else one process at a time (recorded). Variants this
        install cannot run are recorded as unavailable, with the reason."""
        o = self.options
        tag = f"{shape[0]}x{shape[1]}"
        unavailable = {name: reason for name in o.main_variants if (reason := self.unavailable(name))}
        names = [name for name in o.main_variants if name not in unavailable]
        available = available_memory_mb()
        together = sum(memory_estimate_mb.get(name, 0.0) for name in names) < MEMORY_HEADROOM * available
        self.log(f"main {tag}: {', '.join(names)}, "
                 f"{'interleaved' if together else 'one process at a time (memory)'}")
        for name, reason in unavailable.items():
            self.log(f"  {name} unavailable: {reason}")
        image = self.synthetic(shape).frames["val"][0].image
        x = self.network_input(image, f"input-{tag}")
        quantizations = {name: self.quantize_once(name, x, shape) for name in names if is_backend_int8(name)}
        spawn = lambda name: self.spawn_peer(name, x, shape) if is_peer(name) else self.spawn(  # noqa: E731
            name, name, image if reference_of(name) == IMAGE_REFERENCE else x,
            prefix=self.module_prefix() if name == "module" else None,
            onnx=self.onnx_file() if name in BACKEND_VARIANTS else None,
            calibration=self.calibration_inputs(shape) if "-int8" in name else None,
            int8_cache=self.int8_cache_stem() if is_backend_int8(name) else None)
        outputs, variants, skipped = {}, {}, {}
        if together:
            workers = {name: spawn(name) for name in names}
            outputs = self.first_outputs(workers, tag)
            comparisons = compare_outputs(outputs, self.options.tolerance, tag)
            variants = self.timed(workers)
        else:
            for name in names:
                estimate = memory_estimate_mb.get(name, 0.0)
                if estimate >= MEMORY_HEADROOM * available_memory_mb():
                    skipped[name] = (f"estimated peak {estimate:.0f} MB > 90% of the "
                                     f"{available_memory_mb():.0f} MB available")
                    self.log(f"  skipping {name}: {skipped[name]}")
                    continue
                worker = spawn(name)
                outputs.update(self.first_outputs({name: worker}, tag))
                variants.update(self.timed({name: worker}))
            comparisons = compare_outputs(outputs, self.options.tolerance, tag)
        for name, result in variants.items():
            result.update(comparisons[name])
            if name in quantizations:
                result["quantization"] = quantizations[name]
            reference = variants.get(result["reference"])
            result["speedup_vs_reference"] = reference["median_s"] / result["median_s"] if reference else None
        self.add_throughput(variants, shape)
        a = variants["gluon"]["median_s"]
        ratio = lambda name: a / variants[name]["median_s"] if name in variants else None  # noqa: E731
        return {"shape": list(shape), "variants": variants, "interleaved": together,
                "skipped": skipped, "unavailable": unavailable,
                "available_memory_mb": available, "memory_estimate_mb": memory_estimate_mb,
                "max_abs_difference_vs_gluon": {name: variants[name]["max_abs_difference"]
                                                for name in ("module", "torch") if name in variants},
                "ratio_a_over_b": ratio("module"), "ratio_a_over_c": ratio("torch")}

    def int8_cache_stem(self) -> str:
        """Stem of the benchmark weights' quantized-model cache files (one per calibration and groups)."""
        return self.path("weights-0000")

    def quantize_once(self, name: str, input_path: str, shape: Shape) -> Dict[str, object]:
        """Build the backend int8 variant ``name`` once in its own process, which quantizes and
        keeps the quantized model in the cache (:meth:`int8_cache_stem`), then ends it: its peak
        RSS is the quantization's (with a compile); the timed worker of ``name`` then only reads
        and compiles the file, so its peak is the inference's."""
        self.log(f"  {name}: quantizing in its own process")
        worker = self.spawn(f"{name}-quantize", name, input_path, onnx=self.onnx_file(),
                            calibration=self.calibration_inputs(shape), int8_cache=self.int8_cache_stem())
        ready = worker.wait_ready()
        memory = worker.close()
        return {"build_s": ready.get("build_seconds"), "peak_rss_mb": memory["peak_rss_mb"]}

    def onnx_file(self, weights: Optional[Tuple[str, str, int]] = None) -> str:
        """The ONNX export of ``weights`` (preset or training config, prefix, epoch; default: the
        benchmark's), written once: every backend runs it."""
        preset, prefix, epoch = weights or (self.options.preset, self.prefix, 0)
        path = self.path("weights.onnx" if weights is None else f"weights-{os.path.basename(prefix)}-{epoch}.onnx")
        if not os.path.exists(path):
            net = network(preset)
            load_checkpoint(net, prefix, epoch, ctx=mx.cpu())
            export_onnx(net, path, TRACE_SHAPE)
        return path

    def main(self) -> List[Dict[str, object]]:
        """Every shape, smallest first: the peaks measured at one shape, scaled by the pixel
        count, estimate the next shape's (unknown for the first: interleaved)."""
        entries: List[Dict[str, object]] = []
        for shape in sorted(self.options.shapes, key=lambda s: s[0] * s[1]):
            estimate: Dict[str, float] = {}
            if entries:
                previous = entries[-1]
                scale = shape[0] * shape[1] / (previous["shape"][0] * previous["shape"][1])
                for name, v in previous["variants"].items():
                    built = v["built_rss_mb"]
                    estimate[name] = built + (v["peak_rss_mb"] - built) * scale
            entries.append(self.main_shape(shape, estimate))
        return entries

    def levers(self, shape: Shape) -> Dict[str, object]:
        tag = f"{shape[0]}x{shape[1]}"
        self.log(f"levers {tag} (one process at a time)")
        x = self.network_input(self.synthetic(shape).frames["val"][0].image, f"input-{tag}")
        half = str(max(1, (os.cpu_count() or 2) // 2))
        plans = [(name, name, None) for name in LEVERS]
        plans.append((HALF_THREADS, "gluon", dict(os.environ, OMP_NUM_THREADS=half)))
        variants, reference = {}, None
        for label, variant, env in plans:
            worker = self.spawn(label, variant, x, env=env)
            output = self.first_outputs({label: worker}, f"lever-{len(variants)}")[label]
            reference = output if variant == "gluon" and reference is None else reference
            variants[label] = self.timed({label: worker})[label]
            variants[label]["output"] = output
        for result in variants.values():
            result["max_abs_difference_vs_gluon"] = float(np.abs(result.pop("output") - reference).max())
        self.add_throughput(variants, shape)
        return {"shape": list(shape), "variants": variants, "omp_threads_default": int(half)}

    def sliding(self, shape: Shape) -> Dict[str, object]:
        tag = f"{shape[0]}x{shape[1]}"
        self.log(f"sliding {tag}: whole image vs {SLIDING_WINDOW} windows, stride {SLIDING_STRIDE}")
        image = self.synthetic(shape).frames["val"][0].image
        workers = {name: self.spawn(name, name, image) for name in ("predict-whole", "predict-sliding")}
        for worker in workers.values():
            worker.wait_ready()
            worker.run()
        variants = self.timed(workers)
        windows = len(window_origins(padded_shape(shape, 8, SLIDING_WINDOW), SLIDING_WINDOW, SLIDING_STRIDE))
        return {"shape": list(shape), "variants": variants, "windows": windows,
                "sliding_over_whole": variants["predict-sliding"]["median_s"] / variants["predict-whole"]["median_s"]}

    def calibration_inputs(self, shape: Shape) -> str:
        """``.npy`` of the (K, 3, H, W) network inputs of the synthetic train images at ``shape``."""
        tag = f"{shape[0]}x{shape[1]}"
        path = self.path(f"calibration-{tag}.npy")
        if not os.path.exists(path):
            frames = self.synthetic(shape).frames["train"]
            np.save(path, np.concatenate([np.load(self.network_input(f.image, f"train-{tag}-{i}"))
                                          for i, f in enumerate(frames)]))
        return path

    def train(self, crop: Shape) -> Dict[str, object]:
        tag = f"{crop[0]}x{crop[1]}"
        self.log(f"train {tag}: engine SGD update, batch 1")
        frame = self.synthetic(crop).frames["train"][0]
        stride = int(get_model(self.options.preset).prediction_stride)
        path = self.path(f"train-batch-{tag}.npz")
        label = train_id_map(frame.files["gtFine_labelIds"], stride).astype(np.float32)[None]
        np.savez(path, data=np.load(self.network_input(frame.image, f"train-{tag}")), label=label)
        worker = self.spawn("train-step", "train-step", path)
        worker.wait_ready()
        worker.run()
        result = self.timed({"train-step": worker})["train-step"]
        result["iterations_per_s"] = 1.0 / result["median_s"]
        return {"crop": list(crop), "batch": 1, **result}

    def run(self) -> Dict[str, object]:
        o = self.options
        smallest = min(o.shapes, key=lambda s: s[0] * s[1])
        largest = max(o.shapes, key=lambda s: s[0] * s[1])
        results: Dict[str, object] = {"machine": describe_machine(), "options": options_record(o)}
        self.log("GEMM peak ...")
        results["gemm_gflops"] = gemm_peak(o.gemm_size)
        self.peak = results["gemm_gflops"]["peak"]
        if unavailable_reason("openvino-int8") is None:
            self.log("int8 GEMM peak (OpenVINO) ...")
            results["gemm_int8"] = int8_gemm_peak(o.gemm_size)
            self.int8_peak = results["gemm_int8"]["int8_gops"]
        results["weights"] = self.prepare_weights()
        counts = {f"{h}x{w}": network_macs(o.preset, h, w) for h, w in o.shapes}
        results["macs"] = {tag: {"gemm": c.gemm, "gemm_valid_taps": c.gemm_valid,
                                 "batchnorm": c.of_kind("batchnorm")} for tag, c in counts.items()}
        try:
            if "main" in o.sections:
                results["main"] = self.main()
            if "levers" in o.sections:
                results["levers"] = self.levers(o.levers_shape or smallest)
            if "sliding" in o.sections:
                results["sliding"] = self.sliding(o.sliding_shape or largest)
            if "precision" in o.sections:
                results["precision"] = self.precision(o.precision_shape or smallest)
            if "train" in o.sections:
                results["train"] = self.train(o.train_crop)
        finally:
            self.close_all()
        results["load_average_at_end"] = load_average()
        results["peer"] = {"python": o.peer_python, **(self.peer or {})}
        results["targets"] = {} if is_system_preset(o.preset) else targets(results)   # DUC issues' targets
        return results


def is_backend_int8(name: str) -> bool:
    """Whether ``name`` is an int8 variant of the ONNX backends (quantized by the project)."""
    return name in BARE_VARIANTS and is_int8(backend_precision(name)[1])


def options_record(options: BenchOptions) -> Dict[str, object]:
    record = asdict(options)
    record.pop("workdir")
    return record
