"""The original's ``tusimple_duc.core.utils`` helpers over the package.

``get_single_image_duc(item, input_args)`` is one released-augmentation training sample
(:func:`tusimple_duc.data.sample.make_sample_into` with the DUC label layout), its random
choices drawn from Python's ``random`` module exactly as the original drew them
(``random.choice`` of the scale, ``random.randint`` of the row and column jitter, then of the
flip), so after the same ``random.seed`` it crops, scales and flips as the original. ``input_args`` keys are the original's (``data_path``, ``label_path``,
``data_shape``, ``convert_label``, ``use_random_crop``, ``use_mirror``, ``scale_factors``,
``rgb_mean``, ``ignore_label``, ``ds_rate``, ``cell_width``, ``random_bound``) plus the
optional ``label_num`` (19) the package validates label values with.
"""
from __future__ import annotations

import logging
import os
import random
import time
from datetime import datetime
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import mxnet as mx
import numpy as np

from tusimple_duc.data.labels import CITYSCAPES_TRAINID_PALETTE, cityscapes_ids_to_train_ids
from tusimple_duc.data.lists import ListEntry
from tusimple_duc.data.sample import SamplingSpec, make_sample_into
from tusimple_duc.io.atomic import atomic_write_text
from tusimple_duc.io.checkpoint import params_path, symbol_path
from tusimple_duc.io.paramfile import write_params

#: ``input_args`` defaults of the original's ``get_single_image_duc``.
DEFAULT_RGB_MEAN = (128, 128, 128)
DEFAULT_CELL_WIDTH = 1


def sampling_spec_from_input_args(input_args: Mapping[str, Any]) -> SamplingSpec:
    """The :class:`SamplingSpec` of an original loader ``input_args`` dict (flattened DUC labels).

    ``data_shape`` is ``[(N, 3, rows, cols)]``; missing keys take the original's defaults
    (no random crop, no mirror, scale 1, mean 128, cell width 1, ds_rate 8, no label conversion).
    """
    rows, cols = (int(v) for v in input_args["data_shape"][0][-2:])
    use_random_crop = bool(input_args.get("use_random_crop", False))
    bound = input_args.get("random_bound") or (0, 0)
    return SamplingSpec(
        crop_shape=(rows, cols), scale_factors=tuple(float(s) for s in input_args.get("scale_factors", [1])),
        random_bound=tuple(int(b) for b in bound), use_mirror=bool(input_args.get("use_mirror", False)),
        use_random_crop=use_random_crop, rgb_mean=tuple(float(m) for m in input_args.get("rgb_mean", DEFAULT_RGB_MEAN)),
        convert_label="cityscapes" if input_args.get("convert_label", False) else "none",
        num_classes=int(input_args.get("label_num", 19)), ds_rate=int(input_args.get("ds_rate", 8)),
        cell_width=int(input_args.get("cell_width", DEFAULT_CELL_WIDTH)), label_layout="duc",
        ignore_label=int(input_args.get("ignore_label", 255)))


def list_entry(item: Sequence[Any], index: int = 0) -> ListEntry:
    """A :class:`ListEntry` of an original ``read_data`` item ``[image, label, [row, col]]``."""
    centre = tuple(float(c) for c in item[2]) if len(item) > 2 else None
    return ListEntry(index, item[0], item[1], centre)


class PythonRandomDraws:
    """The ``integers`` method of a NumPy generator over Python's ``random`` module, so that
    :func:`tusimple_duc.data.sample.draw_augmentation` makes the original's calls:
    ``integers(n)`` is ``random.choice``'s index draw (``randrange(n)``), ``integers(lo, hi)``
    is ``random.randint(lo, hi - 1)`` (``randrange(lo, hi)``)."""

    @staticmethod
    def integers(low: int, high: Optional[int] = None) -> int:
        return random.randrange(low) if high is None else random.randrange(low, high)


def get_single_image_duc(item: Sequence[Any], input_args: Mapping[str, Any]) -> Tuple[List[np.ndarray], List[np.ndarray]]:
    """One training sample: ``[image (3, rows, cols)], [label (r*r*h*w,)]`` float32 (see the module doc)."""
    spec = sampling_spec_from_input_args(input_args)
    image = np.empty(spec.image_shape, dtype=np.float32)
    label = np.empty(spec.label_shape, dtype=np.float32)
    make_sample_into(list_entry(item), PythonRandomDraws(), spec, image, label,  # type: ignore[arg-type]
                     input_args.get("data_path", ""), input_args.get("label_path", ""))
    return [image], [label]


def replace_city_labels(label_data: np.ndarray) -> np.ndarray:
    """Cityscapes labelIds -> trainIds (float64, 255 for ids without a trainId)."""
    return cityscapes_ids_to_train_ids(label_data).astype(np.float64)


def get_palette() -> List[int]:
    """The 768-entry PIL palette of the Cityscapes trainIds (index 255 black)."""
    return [int(v) for v in CITYSCAPES_TRAINID_PALETTE.reshape(-1)]


def save_symbol(net: mx.sym.Symbol, net_prefix: str) -> None:
    """Write ``<net_prefix>-symbol.json`` (atomically)."""
    atomic_write_text(symbol_path(net_prefix), net.tojson())


def save_parameter(net: mx.sym.Symbol, net_prefix: str, data_shape: Tuple[int, ...],
                   ctx: mx.Context = None) -> None:
    """Bind ``net`` for ``data_shape`` and write its (uninitialised) arrays to ``<net_prefix>.params``.

    ``ctx``: the original always used ``mx.gpu(0)``; default here is the CPU.
    """
    executor = net.simple_bind(ctx or mx.cpu(), data=data_shape)
    arrays: Dict[str, mx.nd.NDArray] = {f"arg:{k}": v for k, v in executor.arg_dict.items()}
    arrays.update({f"aux:{k}": v for k, v in executor.aux_dict.items()})
    write_params(f"{net_prefix}.params", arrays)


def save_log(prefix: str, output_dir: str) -> str:
    """Log INFO to ``<output_dir>/<prefix>_<date>.log`` and the console; returns the log file."""
    fmt, date_fmt = "%(asctime)s %(message)s", "%m-%d %H:%M:%S"
    path = os.path.join(output_dir, f"{prefix}_{datetime.now().strftime('%Y_%m_%d_%H:%M:%S')}.log")
    logging.basicConfig(level=logging.INFO, format=fmt, datefmt=date_fmt, filename=path, filemode="w")
    console = logging.StreamHandler()
    console.setLevel(logging.INFO)
    console.setFormatter(logging.Formatter(fmt=fmt, datefmt=date_fmt))
    logging.getLogger("").addHandler(console)
    return path


def do_checkpoint(prefix: str, interval: int) -> Callable[[int, mx.sym.Symbol, Dict, Dict], None]:
    """``Module.fit`` epoch-end callback writing ``<prefix>-symbol.json`` and ``<prefix>-%04d.params``
    (epoch ``iter_no + 1``) every ``interval`` epochs, atomically."""
    def _callback(iter_no: int, sym: mx.sym.Symbol, arg: Dict, aux: Dict) -> None:
        if (iter_no + 1) % interval == 0:
            save_symbol(sym, prefix)
            arrays = {f"arg:{k}": v for k, v in arg.items()}
            arrays.update({f"aux:{k}": v for k, v in aux.items()})
            write_params(params_path(prefix, iter_no + 1), arrays)
    return _callback


class Speedometer:
    """``Module.fit`` batch-end callback: log samples/s and the metrics every ``frequent`` batches."""

    def __init__(self, batch_size: int, frequent: int = 50) -> None:
        self.batch_size = batch_size
        self.frequent = frequent
        self.tic = time.time()
        self.last_count = 0

    def __call__(self, param: Any) -> None:
        if param.nbatch % self.frequent == 0:
            speed = self.frequent * self.batch_size / (time.time() - self.tic)
            logging.info("Epoch[%d] Batch [%d]\tSpeed: %.2f samples/sec", param.epoch, param.nbatch, speed)
            param.eval_metric.print_log()
            self.tic = time.time()


def draw_network(net: mx.sym.Symbol, title: str, data_shape: Tuple[int, ...] = (8, 3, 224, 224)) -> None:
    """Render the network graph with graphviz (``mx.viz.plot_network``) to ``<title>.pdf``."""
    mx.viz.plot_network(net, title=title, shape={"data": data_shape}).render()
