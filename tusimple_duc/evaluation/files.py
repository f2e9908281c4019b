"""Finding prediction files and reading label PNGs, with one-line errors naming the file."""
from __future__ import annotations

import os
from typing import List, Sequence

import numpy as np
from PIL import Image

from tusimple_duc.errors import EvaluationError

_MODE_NAMES = {
    "P": "palette (mode 'P')",
    "RGB": "3-channel colour",
    "RGBA": "4-channel colour",
    "LA": "grey + alpha",
    "1": "1-bit",
    "L": "8-bit single-channel",
    "I;16": "16-bit single-channel",
    "I": "32-bit single-channel",
}


def list_prediction_files(result_dir: str, extensions: Sequence[str]) -> List[str]:
    """All files under ``result_dir`` (recursively) ending in one of ``extensions``, sorted.

    Raises
    ------
    EvaluationError
        If ``result_dir`` is not a folder or holds no such file.
    """
    if not os.path.isdir(result_dir):
        raise EvaluationError(f"{result_dir}: result directory does not exist")
    found = []
    for folder, _, names in os.walk(result_dir):
        found += [os.path.join(folder, name) for name in names
                  if name.lower().endswith(tuple(extensions)) and not name.startswith(".")]
    if not found:
        raise EvaluationError(f"{result_dir}: no prediction files ({', '.join(extensions)}) in the result directory")
    return sorted(found)


def read_png(path: str, modes: Sequence[str], what: str) -> np.ndarray:
    """Read a PNG whose PIL mode is one of ``modes`` as an array (palette images give indices).

    Parameters
    ----------
    path : str
        The file.
    modes : sequence of str
        Accepted PIL modes, e.g. ``("L", "I;16")`` for labelIds, ``("L", "P")`` for VOC.
    what : str
        What the file should be, for the error message (e.g. ``"labelIds prediction"``).

    Returns
    -------
    np.ndarray
        (H, W) for single-channel and palette modes, (H, W, C) otherwise.
    """
    try:
        with Image.open(path) as image:
            mode = image.mode
            if mode not in modes:
                accepted = " or ".join(_MODE_NAMES.get(m, m) for m in modes)
                raise EvaluationError(
                    f"{path}: {what} is a {_MODE_NAMES.get(mode, mode)} image; expected {accepted}")
            return np.array(image)
    except (OSError, SyntaxError, ValueError) as error:
        raise EvaluationError(f"{path}: cannot read {what} ({error})") from None


def check_same_size(prediction: np.ndarray, prediction_path: str, gt: np.ndarray, gt_path: str) -> None:
    """Raise EvaluationError naming both files when the (H, W) sizes differ."""
    if prediction.shape[:2] != gt.shape[:2]:
        (ph, pw), (gh, gw) = prediction.shape[:2], gt.shape[:2]
        raise EvaluationError(
            f"{prediction_path}: prediction is {pw}x{ph} but ground truth {gt_path} is {gw}x{gh}")
