"""The precision section of the benchmark suite (:class:`PrecisionSection`, a part of
:class:`~experiments.bench.suite.Suite`): MXNet's FastForward precisions and the deployment
backends' on the same weights, each in its own worker, scored against FastForward fp32.

MXNet's precisions are labelled as in :data:`PRECISIONS` (``fp32`` is the reference), the
backends by their variant names (``openvino-int8``, ...: :data:`~experiments.bench.backend_variants.BARE_VARIANTS`),
each running the ONNX export of the same checkpoint (:meth:`Suite.onnx_file`), int8 calibrated
on the same synthetic train images as MXNet's int8.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

from experiments.bench.backend_variants import BARE_VARIANTS
from experiments.bench.peers import PEER_VARIANTS, is_peer
from experiments.bench.process import Worker
from experiments.bench.scoring import score_against_fp32, train_id_map
from tusimple_duc.errors import ConfigError
from tusimple_duc.inference.fast import bf16_unavailable_reason

Shape = Tuple[int, int]
Weights = Tuple[str, str, int]   # (preset or training config, checkpoint prefix, epoch)
#: label -> variant of MXNet's precisions (FastForward)
PRECISIONS = {"fp32": "gluon", "bf16": "gluon-bf16", "int8": "gluon-int8",
              "int8-residual": "gluon-int8-residual", "int8-all": "gluon-int8-all"}
#: fp32 top-1 minus top-2 probability above which a pixel counts as confidently classified
CONFIDENT_MARGIN = 0.1


def parse_precision_backends(text: str) -> Tuple[str, ...]:
    """``--precision-backends``: comma-separated names of :data:`BARE_VARIANTS` and of the peer
    variants (:data:`~experiments.bench.peers.PEER_VARIANTS`, run by ``--peer-python``) (``all``:
    every one of :data:`BARE_VARIANTS`, ``none`` or empty: MXNet's precisions only) -> the names,
    in the order given."""
    if text.strip() == "all":
        return BARE_VARIANTS
    names = tuple(dict.fromkeys(name for name in text.split(",") if name and name != "none"))
    known = BARE_VARIANTS + tuple(PEER_VARIANTS)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ConfigError(f"--precision-backends: unknown {', '.join(unknown)} "
                          f"(known: {', '.join(known)}, all, none)")
    return names


class PrecisionSection:
    """``precision``: the random-weight set (timed) and the ``trained`` set (untimed).

    Uses the suite's ``options``, ``prefix``, ``log``, ``spawn``, ``spawn_peer``, ``unavailable``,
    ``path``, ``synthetic``, ``network_input``, ``calibration_inputs``, ``first_outputs``, ``timed``
    and ``onnx_file``.
    """

    def precision(self, shape: Shape) -> Dict[str, object]:
        o = self.options
        self.log(f"precision {shape[0]}x{shape[1]}: {', '.join(PRECISIONS)} ({o.calibration_mode} calibration), "
                 f"backends: {', '.join(o.precision_backends) or 'none'}")
        result = {"shape": list(shape), "calibration_images": o.calibration_images}
        result["random_weights"] = self.precision_set(shape, None, timed=True)
        if o.trained:
            result["trained"] = self.precision_set(o.trained_shape or shape, o.trained, timed=False)
        return result

    def precision_workers(self, first_input: str, calibration: str, trained: Optional[Weights],
                          shape: Shape) -> Tuple[Dict[str, Worker], Dict[str, str]]:
        """The workers of one set, keyed by label: :data:`PRECISIONS`, then the available
        ``precision_backends`` on the ONNX export of the same weights (``trained``, or the
        benchmark's; a peer variant in the peer interpreter, NNCF calibrated on the same images);
        and the unavailable backends with the reason."""
        o = self.options
        preset, prefix, epoch = trained or (o.preset, self.prefix, 0)
        unavailable = {name: reason for name in o.precision_backends if (reason := self.unavailable(name))}
        for name, reason in unavailable.items():
            self.log(f"  {name} unavailable: {reason}")
        backends = [name for name in o.precision_backends if name not in unavailable]
        onnx = self.onnx_file(trained) if backends else None
        mxnet_unavailable = {"bf16": bf16_unavailable_reason()} if bf16_unavailable_reason() else {}
        for name, reason in mxnet_unavailable.items():
            self.log(f"  {name} unavailable: {reason}")
        unavailable.update(mxnet_unavailable)
        plans = [*((label, variant, None) for label, variant in PRECISIONS.items() if label not in mxnet_unavailable),
                 *((name, name, onnx) for name in backends)]
        workers = {label: self.spawn_peer(label, first_input, shape, trained) if is_peer(label) else
                   self.spawn(label, variant, first_input, prefix=prefix, preset=preset, epoch=epoch,
                              calibration=calibration if "int8" in label else None,
                              calibration_mode=o.calibration_mode, onnx=model)
                   for label, variant, model in plans}
        return workers, unavailable

    def precision_set(self, shape: Shape, trained: Optional[Weights], timed: bool) -> Dict[str, object]:
        """Every precision's probabilities on the synthetic val images at ``shape`` (all workers
        alive together), scored against ``fp32`` (:func:`score_against_fp32`); ``timed``: also
        interleaved latencies and the speed-up over fp32."""
        o = self.options
        tag = f"{shape[0]}x{shape[1]}" + ("-trained" if trained else "")
        calibration = self.calibration_inputs(shape)
        frames = self.synthetic(shape).frames["val"]
        inputs = [self.network_input(f.image, f"val-{tag}-{i}") for i, f in enumerate(frames)]
        workers, unavailable = self.precision_workers(inputs[0], calibration, trained, shape)
        probabilities = {p: [first] for p, first in self.first_outputs(workers, tag).items()}
        for i, path in enumerate(inputs[1:], start=1):
            for p, worker in workers.items():
                out = self.path(f"out-{tag}-{p}-{i}.npy")
                worker.request(op="probabilities", input=path, save=out)
                probabilities[p].append(worker.saved_probabilities(out))
        if timed:
            variants = self.timed(workers)
        else:
            variants = {p: {"threads": w.ready.get("threads"), **w.close()} for p, w in workers.items()}
        stride = shape[0] // probabilities["fp32"][0].shape[2]
        labels = [train_id_map(f.files["gtFine_labelIds"], stride) for f in frames]
        scores, confident = score_against_fp32(probabilities, labels, CONFIDENT_MARGIN)
        for p, result in variants.items():
            result.update(scores[p])
            if timed:
                result["speedup_vs_fp32"] = variants["fp32"]["median_s"] / result["median_s"]
        preset, prefix, epoch = trained or (o.preset, self.prefix, 0)
        return {"weights": f"{prefix} epoch {epoch} ({preset})", "shape": list(shape), "images": len(frames),
                "calibration_images": o.calibration_images, "confident_margin": CONFIDENT_MARGIN,
                "confident_fraction": float(confident.mean()), "variants": variants, "unavailable": unavailable}
