"""The paper's claims reproduced in miniature: ``tools/reproduce_claims.py`` -> ``<out>/REPORT.md``.

1. ``gridding`` (section 3.2, Figure 2): exact coverage counts (:mod:`.gridding`), no training;
2. ``duc`` (section 4.1.2): the upsampling ceiling of each prediction stride (exact), and DUC vs
   bilinear upsampling trained on the same tiny HDC backbone: thin-class IoU, thin-structure band
   IoU and mIoU over seeds, paired tests;
3. ``hdc`` (section 4.1.3): HDC (``dilation-bigger``) vs constant rates (``deeplab``) with DUC: the
   gridding ratio of the last features on uniform regions and mIoU over seeds, paired tests.

Claims 2-3 train the runs of the budget's :class:`~.runs.Design` (:mod:`.runs`), each saved as
``<work>/runs/<variant>-seed<k>.json`` as soon as it ends: a second call skips the runs already
saved for the same design, and a changed design retrains (its fingerprint differs). ``jobs`` runs
train in parallel processes (one thread each). ``report_only`` rewrites the report and figures from
the saved runs without training.
"""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import time
from dataclasses import asdict
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from tusimple_duc.errors import ConfigError
from tusimple_duc.io.atomic import atomic_write_text, atomic_write_with
from experiments.claims.gridding import run_gridding
from experiments.claims.runs import (BILINEAR_HDC, DUC_CONSTANT, DUC_HDC, ClaimsData, Design, Variant, load_run,
                                     render_data, save_run, train_run)

CLAIMS = ("gridding", "duc", "hdc")
REPORT = "REPORT.md"

#: The full budget (chosen from the pilot, :mod:`.design_text`): 12 seeds x 3 variants x 32 epochs of
#: the demo's 64 training images, every crop centred on a thin object (class-balanced), median
#: frequency class weights, width 8; about 80 minutes with 2 parallel runs on 2 cores
#: (bilinear runs ~170 s, DUC runs ~250-470 s).
FULL = Design("full", (256, 512), 64, 16, 0, 32, 4, 256, 1.0, 8, tuple(range(12)), class_weighting="median-frequency")
#: A few minutes: 2 seeds, 2 epochs of 16 small images (smoke test).
QUICK = Design("quick", (128, 256), 16, 4, 0, 2, 4, 128, 0.5, 4, (0, 1), class_weighting="median-frequency")
BUDGETS: Dict[str, Design] = {"full": FULL, "quick": QUICK}


def parse_claims(text: str) -> List[str]:
    """``"gridding,duc"`` -> ``["gridding", "duc"]`` (ConfigError naming an unknown claim)."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in CLAIMS]
    if unknown or not names:
        raise ConfigError(f"--claims {text!r}: expected a comma-separated subset of {', '.join(CLAIMS)}")
    return [name for name in CLAIMS if name in names]


def claim_variants(claims: Sequence[str]) -> List[Variant]:
    """The variants the training claims need (each once)."""
    variants = ([DUC_HDC, BILINEAR_HDC] if "duc" in claims else []) + \
               ([DUC_HDC, DUC_CONSTANT] if "hdc" in claims else [])
    return list(dict.fromkeys(variants))


# ---------------------------------------------------------------------------- data
def _data_key(design: Design) -> str:
    fields = asdict(design)
    return "-".join(str(fields[k]).replace(" ", "").replace(",", "x").strip("()")
                    for k in ("image_size", "train_images", "val_images", "data_seed"))


def data_path(work_dir: str, design: Design) -> str:
    return os.path.join(work_dir, f"data-{_data_key(design)}.npz")


def prepare_data(work_dir: str, design: Design) -> ClaimsData:
    """The design's scenes, rendered once and kept in ``work_dir`` (an .npz named by the data fields)."""
    path = data_path(work_dir, design)
    if os.path.exists(path):
        return load_data(path)
    data = render_data(design)
    os.makedirs(work_dir, exist_ok=True)
    atomic_write_with(path, lambda tmp: np.savez(tmp, images=data.images, inputs=data.inputs,
                                                 labels=data.labels, train_images=data.train_images))
    return data


def load_data(path: str) -> ClaimsData:
    with np.load(path) as archive:
        return ClaimsData(archive["images"], archive["inputs"], archive["labels"], int(archive["train_images"]))


# ---------------------------------------------------------------------------- runs
def _train_and_save(work_dir: str, design: Design, variant: Variant, seed: int) -> Tuple[str, int, float]:
    """One run in a worker process (the data read from the work dir); returns (variant, seed, seconds)."""
    result = train_run(design, variant, seed, load_data(data_path(work_dir, design)))
    save_run(work_dir, result)
    return variant.key, seed, result["seconds"]


def pending_runs(work_dir: str, design: Design, variants: Sequence[Variant]) -> List[Tuple[Variant, int]]:
    """The (variant, seed) pairs without a saved result of this design, seed-major order."""
    return [(v, s) for s in design.seeds for v in variants if load_run(work_dir, design, v, s) is None]


def train_runs(work_dir: str, design: Design, variants: Sequence[Variant], jobs: int = 1,
               show_progress: bool = True) -> int:
    """Train every pending run (``jobs`` at a time, each in its own single-threaded process when
    ``jobs`` > 1); a progress bar (runs done / total, elapsed, ETA) on stderr. Returns the number trained."""
    prepare_data(work_dir, design)
    todo = pending_runs(work_dir, design, variants)
    total = len(design.seeds) * len(variants)
    bar = tqdm(total=total, initial=total - len(todo), unit="run", desc=f"claims ({design.name})",
               disable=not show_progress, dynamic_ncols=True)
    with bar:
        if jobs <= 1:
            for variant, seed in todo:
                bar.set_postfix_str(f"{variant.key} seed {seed}")
                _train_and_save(work_dir, design, variant, seed)
                bar.update()
        else:
            os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the spawned workers
            context = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool:
                futures = [pool.submit(_train_and_save, work_dir, design, v, s) for v, s in todo]
                for future in concurrent.futures.as_completed(futures):
                    key, seed, seconds = future.result()
                    bar.set_postfix_str(f"{key} seed {seed}: {seconds:.0f} s")
                    bar.update()
    return len(todo)


def saved_runs(work_dir: str, design: Design, variants: Sequence[Variant]) -> Dict[str, List[Dict]]:
    """Every variant's saved results in seed order (ConfigError naming the first missing run)."""
    runs: Dict[str, List[Dict]] = {}
    for variant in variants:
        results = [load_run(work_dir, design, variant, seed) for seed in design.seeds]
        missing = [seed for seed, result in zip(design.seeds, results) if result is None]
        if missing:
            raise ConfigError(f"{work_dir}: no saved run of {variant.key} seed {missing[0]} for the "
                              f"{design.name!r} design (train without --report-only first)")
        runs[variant.key] = results
    return runs


# ---------------------------------------------------------------------------- entry point
def reproduce_claims(out_dir: str, work_dir: str, design: Design, claims: Sequence[str], jobs: int = 1,
                     report_only: bool = False, show_progress: bool = True,
                     say: Callable[[str], None] = lambda message: None) -> str:
    """Measure ``claims`` and write ``out_dir/REPORT.md`` with its figures; returns the Markdown."""
    from experiments.claims.report import ReportInputs, write_report

    start = time.time()
    os.makedirs(out_dir, exist_ok=True)
    inputs = ReportInputs(list(claims), design)
    if "gridding" in claims:
        say("claim 1: counting the coverage of dilated stacks and backbones")
        inputs.gridding = run_gridding(out_dir)
    variants = claim_variants(claims)
    if variants:
        if not report_only:
            say(f"claims 2-3: {len(design.seeds) * len(variants)} runs of the {design.name!r} design in {work_dir}")
            inputs.trained_now = train_runs(work_dir, design, variants, jobs, show_progress)
        inputs.runs = saved_runs(work_dir, design, variants)
        inputs.data = prepare_data(work_dir, design)
    inputs.seconds = time.time() - start
    markdown = write_report(inputs, out_dir)
    atomic_write_text(os.path.join(out_dir, REPORT), markdown)
    return markdown
