"""tools/evaluate.py: table, metrics JSON, figures, and `error: ...` with exit status 2."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import cv2
import numpy as np
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
    arguments = [voc_case.pred_dir, voc_case.gt_root, "--dataset", "voc", "--split", "val", "--out", str(out)]
    assert run_cli(tool.main, arguments) == 2
    assert "no prediction for this ground truth" in capsys.readouterr().err
    assert not out.exists()
    status = run_cli(tool.main, arguments + ["--subset"])
    printed = capsys.readouterr().out
    assert status == 0
    assert "note: --subset: 1 ground-truth image(s) have no prediction" in printed
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


def test_train_ids_and_ignored_files_are_said_in_one_line_each(cityscapes_case, capsys):
    from tusimple_duc.data.labels import CITYSCAPES_ID_TO_TRAINID

    for path, label_ids in zip(cityscapes_case.pred_paths, cityscapes_case.label_ids):
        cv2.imwrite(path, CITYSCAPES_ID_TO_TRAINID[label_ids].clip(0, 18).astype(np.uint8))
    notes = os.path.join(cityscapes_case.pred_dir, "notes.png")
    cv2.imwrite(notes, np.zeros((4, 4), np.uint8))
    assert run_cli(load_tool().main, [cityscapes_case.pred_dir, cityscapes_case.gt_root]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if line.startswith("warning: ")] == [
        f"warning: {cityscapes_case.pred_dir}: no prediction has a value above 18: these look like trainIds, but "
        f"the Cityscapes evaluator reads labelIds (7 = road ... 33 = bicycle; test.py writes them to score/)"]
    assert f"note: 1 file(s) match no ground truth and were ignored, e.g. {notes}" in lines


@pytest.mark.parametrize("blocker", ["file", "under_file"])
def test_unwritable_out_is_refused_before_any_prediction_is_read(cityscapes_case, tmp_path, blocker, monkeypatch,
                                                                 capsys):
    tool = load_tool()
    blocking_file = tmp_path / "taken"
    blocking_file.write_text("")
    folder = blocking_file if blocker == "file" else blocking_file / "sub"
    read = []
    monkeypatch.setattr(tool, "evaluate_folder", lambda *a, **k: read.append(a))
    assert run_cli(tool.main, [cityscapes_case.pred_dir, cityscapes_case.gt_root, "--out", str(folder / "m.json")]) == 2
    assert read == []
    problem = "is a file" if blocker == "file" else f"is under {blocking_file}, which is a file"
    assert capsys.readouterr().err.splitlines() == [f"error: --out folder {folder}: {problem}, not a folder"]
