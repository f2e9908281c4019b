"""The output check of the benchmark's main section: every variant against its reference.

Network variants (input: the (1, 3, H, W) network input; output: (1, L, H/s, W/s)) are compared
with ``gluon`` (FastForward fp32); image variants (input: a uint8 image; output: (1, L, H, W)
probabilities at image resolution) with ``predict-whole`` (FastForward fp32 through the
predictor). An fp32 variant must give its reference's probabilities within the tolerance; a
bf16/int8 one, whose rounding moves probabilities of an untrained network by far more, must
agree on the argmax of at least :data:`LOW_PRECISION_MIN_AGREEMENT` of the pixels.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from experiments.bench.backend_variants import IMAGE_VARIANTS
from experiments.bench.process import BenchError
from tusimple_duc.inference.precision_auto import argmax_agreement

#: the image variants' reference: FastForward fp32 through the predictor (the others': ``gluon``)
IMAGE_REFERENCE = "predict-whole"
#: least argmax agreement of a bf16/int8 variant with fp32 for its output to count as the network's
LOW_PRECISION_MIN_AGREEMENT = 0.9


def reference_of(variant: str) -> str:
    """The variant ``variant`` is compared with (``predict-whole`` is its own reference)."""
    return IMAGE_REFERENCE if variant == IMAGE_REFERENCE or variant in IMAGE_VARIANTS else "gluon"


def is_low_precision(variant: str) -> bool:
    """bf16 or int8 (a peer's NNCF presets, and OpenVINO's default hint, bf16 on a bf16 CPU):
    compared on the argmax, not within the fp32 tolerance."""
    return variant.endswith(("-bf16", "-int8", "-int8-all", "-int8-mixed", "-default"))


def compare_outputs(outputs: Dict[str, np.ndarray], tolerance: float, tag: str) -> Dict[str, Dict[str, object]]:
    """Per variant: its ``reference``, ``max_abs_difference`` and ``argmax_agreement`` (fraction
    of pixels) with the reference's probabilities.

    Parameters
    ----------
    outputs : probabilities per variant name, (1, L, h, w) each (see the module docstring).
    tolerance : max abs probability difference allowed for fp32 variants.
    tag : the input size, for messages.

    Raises
    ------
    BenchError : a reference missing, shapes differ, or a variant fails its check.
    """
    comparisons: Dict[str, Dict[str, object]] = {}
    for name, output in outputs.items():
        reference = reference_of(name)
        if reference not in outputs:
            raise BenchError(f"{tag}: {name} needs {reference} in the main variants (its reference)")
        expected = outputs[reference]
        if output.shape != expected.shape:
            raise BenchError(f"{tag}: {name} probabilities have shape {output.shape}, {reference}'s {expected.shape}")
        difference = float(np.abs(output - expected).max())
        agreement = argmax_agreement(output, expected)
        comparisons[name] = {"reference": reference, "max_abs_difference": difference,
                             "argmax_agreement": agreement}
        if is_low_precision(name):
            if not agreement >= LOW_PRECISION_MIN_AGREEMENT:
                raise BenchError(f"{tag}: {name} agrees with {reference} on the argmax of {100 * agreement:.1f}% "
                                 f"of the pixels < {100 * LOW_PRECISION_MIN_AGREEMENT:.0f}%: it does not "
                                 f"compute the same thing")
        elif not difference < tolerance:
            raise BenchError(f"{tag}: {reference} and {name} probabilities differ by {difference:.3g} "
                             f">= {tolerance}: they do not compute the same thing")
    return comparisons
