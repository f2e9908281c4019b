"""CPU inference benchmark: this project's optimized Gluon forward vs mx.mod.Module, PyTorch eager, OpenVINO and ONNX Runtime.

    python tools/bench.py --shapes 512x1024 --runs 5 --sections main --out bench.json

Every variant runs in its own process (peak memory per variant), timings interleaved; the
outputs must agree before anything is timed. See ``experiments/bench/suite.py`` for the
sections and ``tusimple_duc/inference/fast.py`` for the optimized forward. Needs ``torch``
(``pip install -e ".[bench]"``) for variant ``torch`` and ``openvino`` (``.[openvino]``) for
the OpenVINO variants (without them they are reported as unavailable); ``--peer-python`` for the
peer variants (``peer-*``: the latest OpenVINO and NNCF in their own interpreter,
``experiments/bench/peers.py``). Prints a table and writes
the results as JSON (atomically).

A comparison system (``--preset fcn8s_vgg16``, ``pspnet_resnet101``, ...) runs the main section
with the variants that apply to it (``experiments/bench/systems.py``): test.py's MXNet forward
(the reference), mx.mod.Module on its exported graph, OpenVINO fp32/bf16 and ONNX Runtime fp32.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Optional, Tuple

import tusimple_duc  # noqa: F401  (before mxnet: OMP_NUM_THREADS)
from experiments.bench.report import format_report
from experiments.bench.compare import reference_of
from experiments.bench.backend_variants import BARE_VARIANTS
from experiments.bench.precision import parse_precision_backends
from experiments.bench.suite import MAIN_VARIANTS, SECTIONS, BenchOptions, Suite
from experiments.bench.systems import (SYSTEM_MAIN_VARIANTS, SYSTEM_SECTIONS, check_system_request,
                                       is_system_preset, not_applicable)
from tusimple_duc.errors import ConfigError, DUCError
from tusimple_duc.io.atomic import atomic_write_json


def parse_shape(text: str) -> Tuple[int, int]:
    """``HxW`` -> (H, W), positive multiples of 8."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--shapes: {text!r} is not HxW (e.g. 1024x2048)") from None
    if height <= 0 or width <= 0 or height % 8 or width % 8:
        raise ConfigError(f"--shapes: {text}: H and W must be positive multiples of 8")
    return height, width


def parse_trained(text: Optional[str]) -> Optional[Tuple[str, str, int]]:
    """``PRESET:PREFIX:EPOCH`` -> (preset, prefix, epoch); PRESET may be a training config file.

    Run folders are named by time (``.../2026_12_06_01:02:03/``), so the config and the prefix
    may hold colons: the epoch is after the last colon, a config ends at ``.cfg:``.
    """
    if text is None:
        return None
    head, _, epoch = text.rpartition(":")
    preset, cfg, prefix = head.partition(".cfg:")
    preset = preset + ".cfg" if cfg else preset
    if not cfg:
        preset, _, prefix = head.partition(":")
    if not preset or not prefix or not epoch.isdigit():
        raise ConfigError(f"--trained: {text!r} is not PRESET:PREFIX:EPOCH")
    if preset.endswith(".cfg") and not os.path.isfile(preset):
        raise ConfigError(f"--trained: {preset}: training config not found")
    return preset, prefix, int(epoch)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shapes", default="1024x2048,512x1024", help="input sizes HxW, comma-separated (default %(default)s)")
    p.add_argument("--runs", type=int, default=5, help="timed runs per variant (median reported) (default %(default)s)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs after the output check (default %(default)s)")
    p.add_argument("--sections", help=f"subset of {','.join(SECTIONS)} (default: all; a comparison system: "
                   f"{','.join(SYSTEM_SECTIONS)})")
    p.add_argument("--main-variants",
                   help=f"variants of the main section, a subset of {','.join(MAIN_VARIANTS)} (with the "
                   "reference of each: gluon, and predict-whole for the image variants; default: all; a "
                   f"comparison system: {','.join(SYSTEM_MAIN_VARIANTS)})")
    p.add_argument("--preset", default="resnet101_duc_hdc_released",
                   help="a DUC preset or a comparison system's (models.systems) (default %(default)s)")
    p.add_argument("--checkpoint", help="checkpoint prefix (default: random weights)")
    p.add_argument("--epoch", type=int, default=0, help="checkpoint epoch (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights and synthetic images (default %(default)s)")
    p.add_argument("--tolerance", type=float, default=1e-3, help="max abs probability difference allowed (default %(default)s)")
    p.add_argument("--levers-shape", help="HxW of the levers section (default: smallest shape)")
    p.add_argument("--sliding-shape", help="HxW of the sliding-window section (default: largest shape)")
    p.add_argument("--precision-shape", help="HxW of the bf16/int8 section (default: smallest shape)")
    p.add_argument("--precision-images", type=int, default=2, help="synthetic val images for agreement/mIoU (default %(default)s)")
    p.add_argument("--calibration-images", type=int, default=2, help="synthetic train images for int8 (default %(default)s)")
    p.add_argument("--calibration-mode", choices=("naive", "entropy"), default="naive",
                   help="int8 calibration: naive (min/max) or entropy (default %(default)s)")
    p.add_argument("--train-crop", default="544x544", help="HxW of the training-step batch (default %(default)s)")
    p.add_argument("--trained", help="PRESET:PREFIX:EPOCH of a trained checkpoint for the precision section "
                   "(PRESET: a preset name or the run's train_<time>.cfg) (default: none)")
    p.add_argument("--trained-shape", help="HxW of the trained checkpoint's precision run (default: --precision-shape)")
    p.add_argument("--precision-backends", default="all",
                   help="deployment backends scored next to MXNet's precisions in the precision section: "
                   f"comma-separated, a subset of {','.join(BARE_VARIANTS)}, or all (the default: those "
                   "installed) or none")
    p.add_argument("--gemm-size", type=int, default=4096,
                   help="N of the N x N x N fp32 matrix product measuring the GEMM peak (smaller: quicker, lower) (default %(default)s)")
    p.add_argument("--peer-python", help="Python of the peer variants (peer-*: bare OpenVINO and OpenVINO + NNCF "
                   "int8, experiments/bench/peers.py), a venv with the latest openvino and nncf (default: none, no peers)")
    p.add_argument("--workdir", help="folder for weights, inputs and worker logs (default: temporary)")
    p.add_argument("--out", help="JSON results file (default: none)")
    return p


def default_main_variants(preset: str) -> Tuple[str, ...]:
    """The main variants run when ``--main-variants`` is not given: those that apply to ``preset``."""
    return SYSTEM_MAIN_VARIANTS if is_system_preset(preset) else MAIN_VARIANTS


def parse_main_variants(text: str) -> Tuple[str, ...]:
    """``--main-variants`` -> names, each known and listed with its reference."""
    names = tuple(dict.fromkeys(name for name in text.split(",") if name))
    unknown = [name for name in names if name not in MAIN_VARIANTS]
    if unknown:
        raise ConfigError(f"--main-variants: unknown {', '.join(unknown)} (known: {', '.join(MAIN_VARIANTS)})")
    missing = sorted({reference_of(name) for name in names} - set(names))
    if missing or "gluon" not in names:
        raise ConfigError(f"--main-variants: add {', '.join(missing or ['gluon'])} (the reference the "
                          f"others are checked and timed against)")
    return names


def options_from_args(args: argparse.Namespace, workdir: str) -> BenchOptions:
    if args.sections is None:
        sections = SYSTEM_SECTIONS if is_system_preset(args.preset) else SECTIONS
    else:
        sections = tuple(s for s in args.sections.split(",") if s)
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"--sections: unknown {', '.join(unknown)} (known: {', '.join(SECTIONS)})")
    main_variants = (default_main_variants(args.preset) if args.main_variants is None
                     else parse_main_variants(args.main_variants))
    check_system_request(args.preset, sections, main_variants)
    if args.runs < 1 or args.warmup < 0 or args.gemm_size < 1:
        raise ConfigError("--runs and --gemm-size must be >= 1 and --warmup >= 0")
    if args.peer_python and not (os.path.isfile(args.peer_python) and os.access(args.peer_python, os.X_OK)):
        raise ConfigError(f"--peer-python {args.peer_python}: not an executable file")
    optional = lambda text: parse_shape(text) if text else None  # noqa: E731
    return BenchOptions(
        workdir=workdir, preset=args.preset, shapes=tuple(parse_shape(s) for s in args.shapes.split(",")),
        runs=args.runs, warmup=args.warmup, sections=sections, checkpoint=args.checkpoint,
        epoch=args.epoch, seed=args.seed, tolerance=args.tolerance,
        levers_shape=optional(args.levers_shape), sliding_shape=optional(args.sliding_shape),
        precision_shape=optional(args.precision_shape), precision_images=args.precision_images,
        calibration_images=args.calibration_images, calibration_mode=args.calibration_mode,
        train_crop=parse_shape(args.train_crop), trained=parse_trained(args.trained),
        trained_shape=optional(args.trained_shape), main_variants=main_variants, gemm_size=args.gemm_size,
        precision_backends=parse_precision_backends(args.precision_backends), peer_python=args.peer_python)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        skipped = not_applicable(args.preset, MAIN_VARIANTS) if args.main_variants is None else ()
        with tempfile.TemporaryDirectory(prefix="duc-bench-") as tmp:
            workdir = args.workdir or tmp
            os.makedirs(workdir, exist_ok=True)
            options = options_from_args(args, workdir)
            if skipped:
                print(f"main: {', '.join(skipped)} do not apply to comparison system {args.preset} (skipped)",
                      flush=True)
            results = Suite(options, log=lambda line: print(line, flush=True)).run()
        results["not_applicable"] = list(skipped)
        print(format_report(results))
        if args.out:
            atomic_write_json(args.out, results)
    except DUCError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
