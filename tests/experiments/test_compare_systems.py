"""tools/compare_systems.py --quick: the table, the JSON and the figures of a subset of systems;
the published numbers beside them come from models.systems.PUBLISHED; bad --systems is one line."""
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np

from experiments.systems.entries import ENTRIES
from tusimple_duc.models.presets import PRESETS
from tusimple_duc.models.systems import SYSTEM_PRESETS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "tools", "compare_systems.py")


def run_tool(*args):
    return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1"), cwd=ROOT)


def test_every_entry_names_existing_presets():
    for entry in ENTRIES:
        assert entry.tiny in PRESETS or entry.tiny in SYSTEM_PRESETS
        assert entry.full in PRESETS or entry.full in SYSTEM_PRESETS


def test_quick_comparison_writes_table_json_and_figures(tmp_path):
    done = run_tool("--quick", "--systems", "pspnet,unet", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    report = (tmp_path / "SYSTEMS.md").read_text()
    rows = [line for line in report.splitlines() if line.startswith("| PSPNet") or line.startswith("| U-Net")]
    assert len(rows) == 2
    assert "78.4 (Cityscapes test, fine only)" in rows[0]
    assert rows[1].endswith("| - | `unet_padded`, [`configs/train/unet_padded.cfg`](../../configs/train/unet_padded.cfg) |")
    assert os.path.exists(os.path.join(ROOT, "configs", "train", "unet_padded.cfg"))
    machine = next(line for line in report.splitlines() if line.startswith("Machine: "))
    assert "1-minute load average" in machine
    results = json.loads((tmp_path / "systems.json").read_text())
    pspnet, unet = results["systems"]
    assert (pspnet["key"], unet["key"]) == ("pspnet", "unet")
    assert all(0 <= s["miou"] <= 1 and s["gmacs"] > 0 and s["parameters"] > 0 for s in results["systems"])
    # PSPNet trains with its auxiliary head: one loss per update, every one finite
    assert len(pspnet["losses"]) == results["budget"]["epochs"] * (
        results["budget"]["train_images"] // results["budget"]["batch_size"])
    for figure in ("systems_miou_cost.png", "systems_loss.png", "systems_class_iou.png"):
        assert (tmp_path / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_system_is_a_one_line_error(tmp_path):
    done = run_tool("--quick", "--systems", "fcn9s", "--out", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: --systems: unknown system(s) fcn9s (known: " + ", ".join(e.key for e in ENTRIES) + ")"]


def test_a_diverging_system_is_reported_and_the_others_go_on(tmp_path, monkeypatch):
    from experiments.systems import pipeline
    from experiments.systems.run import QUICK, Cost, Trained
    from tusimple_duc.engine.trainer import TrainingDivergedError

    def fake_training(entry, budget, train, val):
        if entry.key == "refinenet":
            raise TrainingDivergedError("loss is inf at update 3")
        return Trained(0.25, 0.1, (), (2.0, 1.5), 3.0)

    monkeypatch.setattr(pipeline, "render_splits", lambda budget: (None, None))
    monkeypatch.setattr(pipeline, "train_and_score", fake_training)
    monkeypatch.setattr(pipeline, "measure_cost", lambda entry, budget: Cost(1000, 0.5, 0.01, float("nan")))
    lines = []
    rows = pipeline.compare_systems(str(tmp_path), QUICK, ["refinenet", "unet"], progress=lines.append)
    assert [row.entry.key for row in rows] == ["refinenet", "unet"]
    assert lines[0] == "RefineNet: loss is inf at update 3"
    table = (tmp_path / "SYSTEMS.md").read_text()
    assert "| RefineNet | n/a | n/a | n/a | 0.00 | 0.5 | 0.010 | n/a |" in table
    assert "| U-Net | 25.0 | 10.0 | 3 |" in table


def test_a_second_call_reuses_each_systems_saved_scores_and_measures_only_deleted_costs(tmp_path, monkeypatch):
    from experiments.systems import pipeline
    from experiments.systems.run import QUICK, Cost, Trained

    calls = []

    def fake_training(entry, budget, train, val):
        calls.append(("train", entry.key))
        return Trained(0.25, float("nan"), (0.5,) + (0.0,) * 18, (2.0, 1.5), 3.0)

    def fake_cost(entry, budget):
        calls.append(("cost", entry.key))
        return Cost(1000, 0.5, 0.01, float("nan"))

    monkeypatch.setattr(pipeline, "render_splits", lambda budget: (None, None))
    monkeypatch.setattr(pipeline, "train_and_score", fake_training)
    monkeypatch.setattr(pipeline, "measure_cost", fake_cost)
    first = pipeline.compare_systems(str(tmp_path), QUICK, ["fcn8s", "unet"])
    assert calls == [("train", "fcn8s"), ("cost", "fcn8s"), ("train", "unet"), ("cost", "unet")]
    calls.clear()
    (tmp_path / "runs" / "unet.cost.json").unlink()
    second = pipeline.compare_systems(str(tmp_path), QUICK, ["fcn8s", "unet"])
    assert calls == [("cost", "unet")]
    assert [row.trained.losses for row in second] == [(2.0, 1.5)] * 2
    assert second[0].trained.iou == first[0].trained.iou and np.isnan(second[0].trained.thin_iou)
    calls.clear()
    pipeline.compare_systems(str(tmp_path), dataclasses.replace(QUICK, epochs=2), ["fcn8s"])
    assert calls == [("train", "fcn8s"), ("cost", "fcn8s")]  # another budget: nothing reused
    calls.clear()
    from experiments.systems import entries

    changed = tuple(dataclasses.replace(e, lr=e.lr / 2) if e.key == "unet" else e for e in entries.ENTRIES)
    monkeypatch.setattr(pipeline, "ENTRIES", changed)
    monkeypatch.setattr(entries, "ENTRIES", changed)
    pipeline.compare_systems(str(tmp_path), QUICK, ["unet"])
    assert calls == [("train", "unet"), ("cost", "unet")]  # another learning rate: that system again


def test_running_mean_of_the_loss_curves_by_hand():
    from experiments.systems.report import running_mean

    assert running_mean([1.0, 2.0, 3.0, 6.0], 2).tolist() == [1.5, 2.5, 4.5]
    assert running_mean([1.0, 2.0, 3.0, 6.0], 4).tolist() == [3.0]
    assert running_mean([2.0, 4.0], 5).tolist() == [3.0]
    assert running_mean([], 5).tolist() == []
