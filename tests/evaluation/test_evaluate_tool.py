"""tools/evaluate.py: table, metrics JSON, figures, and `error: ...` with exit status 2."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from tusimple_duc.cli import run_cli
from tusimple_duc.evaluation.cityscapes import evaluate_cityscapes

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(REPO, "tools", "evaluate.py")


def load_tool():
    spec = importlib.util.spec_from_file_location("evaluate_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cityscapes_table_json_and_figures(cityscapes_case, tmp_path, capsys):
    tool = load_tool()
    figures = tmp_path / "figures"
    status = run_cli(tool.main, [cityscapes_case.pred_dir, cityscapes_case.gt_root, "--figures", str(figures)])
    out = capsys.readouterr().out
    assert status == 0
    expected = evaluate_cityscapes(cityscapes_case.pred_dir, cityscapes_case.gt_root)
    assert "classes" in out and "categories" in out and f"{expected.summary['mIoU']:6.4f}" in out
    with open(os.path.join(cityscapes_case.pred_dir, "metrics.json")) as handle:
        metrics = json.load(handle)
    assert metrics["summary"]["mIoU"] == pytest.approx(expected.summary["mIoU"])
    assert sorted(os.listdir(figures)) == ["class_iou.png", "confusion_matrix.png"]
    # The JSON left in the result directory does not disturb a second run.
    assert run_cli(tool.main, [cityscapes_case.pred_dir, cityscapes_case.gt_root]) == 0


def test_voc_with_out_and_split(voc_case, tmp_path, capsys):
    tool = load_tool()
    out = tmp_path / "voc.json"
    status = run_cli(tool.main, [voc_case.pred_dir, voc_case.gt_root, "--dataset", "voc", "--split", "val",
                                 "--out", str(out)])
    printed = capsys.readouterr().out
    assert status == 0
    assert "note: 1 ground-truth images have no prediction" in printed
    with open(out) as handle:
        assert json.load(handle)["dataset"] == "voc"


def test_bad_input_prints_one_error_line_and_exits_2(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    completed = subprocess.run([sys.executable, TOOL, str(empty), str(tmp_path)], capture_output=True, text=True,
                               cwd=REPO)
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == [
        f"error: {tmp_path}: no gtFine folder; expected the Cityscapes root (gtFine/val/<city>/...)"]
