"""One training sample: the released ``get_single_image_duc``, step for step.

A pure function of a list entry, a random generator and a :class:`SamplingSpec`. For the
same draws (scale, jitter, flip) it produces exactly the sample of the original
TuSimple-DUC ``get_single_image_duc`` (``tests/data/test_sample_released.py`` compares it
with a restatement of that function); docs/TRAINING.md "Augmentation" lists the steps:

1. draw, in this order: the scale ``s`` (uniform over ``scale_factors``); if
   ``use_random_crop``, the row then the column jitter, uniform integers in
   ``[-b, b]`` with ``b = int(random_bound * s)`` per axis; if ``use_mirror``, the flip (p 0.5);
2. read the image as ``cv2.imread`` reads it (BGR, converted to RGB as the original; grey, alpha, 16-bit and palette files
   converted as OpenCV's ``IMREAD_COLOR`` converts them) and the label as PIL reads it (a palette
   PNG gives its indices); resize the whole image to
   ``(int(H*s), int(W*s))`` (bilinear, uint8) and the label to the same size (nearest);
3. the crop's top-left corner is ``int(int(centre) * s) + jitter - crop // 2`` per axis
   (``int`` truncates, as the original); the part outside the scaled image is the mean
   colour (image) and ``ignore_label`` (label);
4. subtract ``rgb_mean`` in float64 (padding becomes exactly 0), stored as float32;
5. take the label at the prediction stride ``k`` (pixel ``(y*k, x*k)`` of the crop,
   OpenCV's ``INTER_NEAREST`` resize by ``1/k``) BEFORE the flip, then flip image and
   label together: a flipped label cell holds the pixel at the left of its cell in the
   unflipped crop, as in the original;
6. map label values to training ids (``convert_label``) and lay the label out for the DUC
   head (:func:`tusimple_duc.layout.label_to_duc_layout`, ratio ``r = ds_rate / cell_width``).

**12-fold scheme.** The list centre is the centre of an 800x800 patch of the original
image. Scaled by ``s`` the patch is ``int(800*s)`` px wide around the scaled centre; the
``crop_shape`` crop (544x544 in the paper) is placed uniformly inside it, i.e. the jitter
bound is ``max(0, (int(800*s) - 544) // 2)`` px per axis. When the scaled patch is smaller
than the crop, the crop is centred on the patch.

**Bad geometry.** A list centre outside its image is a :class:`DataError` naming the list
line (:mod:`tusimple_duc.data.geometry_checks`), which also warns, in one line, about images
smaller than the crop (the crop is then mostly padding, as in the original).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Tuple, Union

import cv2
import numpy as np

from tusimple_duc.config import RELEASED_RGB_MEAN, RELEASED_SCALE_FACTORS
from tusimple_duc.data.lists import ListEntry, resolve
from tusimple_duc.data.geometry_checks import check_centre
from tusimple_duc.data.label_tally import OutsideTableTally
from tusimple_duc.data.readers import LABEL_MODES, LabelCodec, read_bgr_image
from tusimple_duc.errors import ConfigError, DataError
from tusimple_duc.layout import duc_ratio, label_to_duc_layout, sides_are_multiples

PATCH_SCHEMES = ("7fold", "12fold")
LABEL_LAYOUTS = ("duc", "map")


@dataclass(frozen=True)
class SamplingSpec:
    """Everything that decides how a list entry becomes a training sample.

    The training engine fills it from the config file; the original keys are given per
    field. Shapes are ``(rows, cols)`` in pixels.

    Attributes
    ----------
    crop_shape : size of the network input patch ([data] crop_shape; 544x544 inner crop for 12-fold).
    scale_factors : scales drawn uniformly per sample ([data] scale_factors).
    random_bound : maximum centre jitter ``(rows, cols)`` at scale 1, 7-fold scheme
        ([data] random_bound; released 120, 120; the paper's 160x160 box is 80, 80).
    use_mirror : random horizontal flip ([data] use_mirror).
    use_random_crop : jitter the crop centre; off = crop exactly at the list centre
        ([data] use_random_crop).
    rgb_mean : subtracted per channel, RGB ([data] rgb_mean).
    convert_label : label file mapping, one of ``readers.LABEL_MODES`` ([data] convert_label:
        True -> 'cityscapes', False -> 'none'; 'kitti' and 'voc' for those datasets).
    num_classes : training classes, to validate labels in mode 'none' ([network] label_num).
    ds_rate : output stride d of the backbone ([data] ds_rate).
    cell_width : DUC cell width c ([network] cell_width).
    label_layout : 'duc' (flattened released layout, ratio d/c) or 'map' (2-D label map).
    label_stride : prediction stride of a 'map' label (bilinear baseline: d; deconvolution: 1);
        ``None`` = ``cell_width``. Must be ``None`` or ``cell_width`` for 'duc'.
    ignore_label : ignored label value ([network] ignore_label).
    patch_scheme : '7fold' (jitter by random_bound) or '12fold' (crop inside ``patch_shape``).
    patch_shape : the 12-fold patch size (800x800).
    """

    crop_shape: Tuple[int, int] = (800, 800)
    scale_factors: Tuple[float, ...] = RELEASED_SCALE_FACTORS
    random_bound: Tuple[int, int] = (120, 120)
    use_mirror: bool = True
    use_random_crop: bool = True
    rgb_mean: Tuple[float, float, float] = RELEASED_RGB_MEAN
    convert_label: str = "cityscapes"
    num_classes: int = 19
    ds_rate: int = 8
    cell_width: int = 2
    label_layout: str = "duc"
    label_stride: Optional[int] = None
    ignore_label: int = 255
    patch_scheme: str = "7fold"
    patch_shape: Tuple[int, int] = (800, 800)
    codec: LabelCodec = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("crop_shape", "random_bound", "patch_shape", "scale_factors", "rgb_mean"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        self._check()
        object.__setattr__(self, "codec", LabelCodec(self.convert_label, self.num_classes, self.ignore_label))

    def _check(self) -> None:
        if len(self.crop_shape) != 2 or min(self.crop_shape) < 1:
            raise ConfigError(f"[data] crop_shape: expected two positive sizes, got {self.crop_shape}")
        if not self.scale_factors or any(not (s > 0 and math.isfinite(s)) for s in self.scale_factors):
            raise ConfigError(f"[data] scale_factors: expected positive scales, got {self.scale_factors}")
        if len(self.random_bound) != 2 or min(self.random_bound) < 0:
            raise ConfigError(f"[data] random_bound: expected two sizes >= 0, got {self.random_bound}")
        if len(self.rgb_mean) != 3:
            raise ConfigError(f"[data] rgb_mean: expected 3 values, got {self.rgb_mean}")
        if self.convert_label not in LABEL_MODES:
            raise ConfigError(f"[data] convert_label: expected one of {LABEL_MODES}, got {self.convert_label!r}")
        if not 0 <= self.ignore_label <= 255:
            raise ConfigError(f"[network] ignore_label: expected 0..255, got {self.ignore_label}")
        if not 1 <= self.num_classes <= 255 or (self.convert_label == "none" and self.ignore_label < self.num_classes):
            raise ConfigError(f"[network] label_num: {self.num_classes} classes do not fit beside ignore label "
                              f"{self.ignore_label}")
        try:
            duc_ratio(self.ds_rate, self.cell_width)
        except ValueError as err:
            raise ConfigError(f"[network] cell_width: {err} ([data] ds_rate)") from None
        if self.label_layout not in LABEL_LAYOUTS:
            raise ConfigError(f"label_layout: expected one of {LABEL_LAYOUTS}, got {self.label_layout!r}")
        if self.label_layout == "duc" and self.label_stride not in (None, self.cell_width):
            raise ConfigError(f"label_stride: the DUC label has stride cell_width {self.cell_width}, "
                              f"got {self.label_stride}")
        duc = self.label_layout == "duc"
        multiple, what = (self.ds_rate, "ds_rate") if duc else (self.prediction_stride, "label_stride")
        if not sides_are_multiples(self.crop_shape, multiple):
            raise ConfigError(f"[data] crop_shape: {self.crop_shape} is not a multiple of {what} {multiple}")
        if self.patch_scheme not in PATCH_SCHEMES:
            raise ConfigError(f"patch_scheme: expected one of {PATCH_SCHEMES}, got {self.patch_scheme!r}")
        if len(self.patch_shape) != 2 or min(self.patch_shape) < 1:
            raise ConfigError(f"patch_shape: expected two positive sizes, got {self.patch_shape}")

    @property
    def prediction_stride(self) -> int:
        """Stride k of the label map: the label is the crop label at pixels ``(y*k, x*k)``."""
        return self.label_stride if self.label_stride is not None else self.cell_width

    @property
    def duc_ratio(self) -> int:
        """r = ds_rate / cell_width: pixels per cell side in the DUC layout."""
        return duc_ratio(self.ds_rate, self.cell_width)

    @property
    def image_shape(self) -> Tuple[int, int, int]:
        """Shape (3, rows, cols) of a sample's image."""
        return (3,) + self.crop_shape

    @property
    def label_shape(self) -> Tuple[int, ...]:
        """Shape of a sample's label: ``(r*r*h*w,)`` for 'duc', ``(rows/k, cols/k)`` for 'map'."""
        k = self.prediction_stride
        if self.label_layout == "duc":
            return ((self.crop_shape[0] // k) * (self.crop_shape[1] // k),)
        return (self.crop_shape[0] // k, self.crop_shape[1] // k)


@dataclass(frozen=True)
class Draws:
    """The random choices of one sample, in the order they are drawn.

    Attributes
    ----------
    scale : the scale s.
    jitter_row, jitter_col : centre offsets in scaled pixels (0 without ``use_random_crop``).
    flip : mirror left-right (False without ``use_mirror``).
    """

    scale: float
    jitter_row: int = 0
    jitter_col: int = 0
    flip: bool = False


@dataclass(frozen=True)
class CropWindow:
    """Where a sample's crop lies in the scaled image.

    Attributes
    ----------
    scale : the drawn scale s.
    top, left : first row and column of the crop in the scaled image (may be negative or
        run past the border: that part is padding).
    rows, cols : crop size.
    flip : the crop is mirrored left-right.
    """

    scale: float
    top: int
    left: int
    rows: int
    cols: int
    flip: bool


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of sample ``index`` (its line number in the list) in ``epoch``."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, epoch, index, 1])))


def scaled_size(length: int, scale: float) -> int:
    """Length of an axis resized by ``scale``: ``int(length * scale)``, truncated as the original."""
    return int(length * scale)


def jitter_bound(spec: SamplingSpec, scale: float) -> Tuple[int, int]:
    """Largest centre jitter ``(rows, cols)`` in scaled pixels at ``scale`` (module docstring)."""
    if spec.patch_scheme == "12fold":
        (patch_rows, patch_cols), (rows, cols) = spec.patch_shape, spec.crop_shape
        return (max(0, (scaled_size(patch_rows, scale) - rows) // 2),
                max(0, (scaled_size(patch_cols, scale) - cols) // 2))
    return scaled_size(spec.random_bound[0], scale), scaled_size(spec.random_bound[1], scale)


def draw_augmentation(spec: SamplingSpec, rng: np.random.Generator) -> Draws:
    """Draw scale, then row and column jitter (``use_random_crop``), then flip (``use_mirror``)."""
    scale = float(spec.scale_factors[int(rng.integers(len(spec.scale_factors)))])
    jitter_row = jitter_col = 0
    if spec.use_random_crop:
        bound_rows, bound_cols = jitter_bound(spec, scale)
        jitter_row = int(rng.integers(-bound_rows, bound_rows + 1))
        jitter_col = int(rng.integers(-bound_cols, bound_cols + 1))
    flip = spec.use_mirror and int(rng.integers(2)) == 1
    return Draws(scale, jitter_row, jitter_col, flip)


def crop_window(image_shape: Tuple[int, int], centre: Optional[Tuple[float, float]], spec: SamplingSpec,
                draws: Draws) -> CropWindow:
    """The crop of an image of ``image_shape`` (H, W) around a list centre for the given draws.

    ``centre`` is ``(row, col)`` in original pixels; ``None`` (a test-format line) = ``(H//2, W//2)``.
    Top-left corner per axis: ``int(int(centre) * s) + jitter - crop // 2``.
    """
    row, col = centre if centre is not None else (image_shape[0] // 2, image_shape[1] // 2)
    rows, cols = spec.crop_shape
    top = scaled_size(int(row), draws.scale) + draws.jitter_row - rows // 2
    left = scaled_size(int(col), draws.scale) + draws.jitter_col - cols // 2
    return CropWindow(draws.scale, top, left, rows, cols, draws.flip)


def plan_crop(image_shape: Tuple[int, int], centre: Optional[Tuple[float, float]],
              spec: SamplingSpec, rng: np.random.Generator) -> CropWindow:
    """Draw the augmentation with ``rng`` and place the crop (:func:`draw_augmentation`, :func:`crop_window`)."""
    return crop_window(image_shape, centre, spec, draw_augmentation(spec, rng))


def _clip(start: int, size: int, length: int) -> Tuple[int, int]:
    """The part ``[lo, hi)`` of ``[start, start + size)`` inside ``[0, length)``; ``lo == hi`` if none."""
    lo = min(max(start, 0), length)
    return lo, max(min(start + size, length), lo)


def scale_pair(image_bgr: np.ndarray, label: np.ndarray, scale: float) -> Tuple[np.ndarray, np.ndarray]:
    """Image (bilinear) and label (nearest) resized to ``(int(H*s), int(W*s))`` with OpenCV, as the original."""
    height, width = scaled_size(image_bgr.shape[0], scale), scaled_size(image_bgr.shape[1], scale)
    if (height, width) == image_bgr.shape[:2]:
        return image_bgr, label
    if height < 1 or width < 1:
        return image_bgr[:0, :0], label[:0, :0]
    return (cv2.resize(image_bgr, (width, height), interpolation=cv2.INTER_LINEAR),
            cv2.resize(label, (width, height), interpolation=cv2.INTER_NEAREST))


def render_sample(image_bgr: np.ndarray, label: np.ndarray, window: CropWindow, spec: SamplingSpec,
                  image_out: np.ndarray, label_out: np.ndarray) -> None:
    """Scale, cut, pad, flip, convert and normalise one sample into preallocated outputs.

    Parameters
    ----------
    image_bgr : (H, W, 3) uint8 unscaled image, BGR.
    label : (H, W) uint8 unscaled raw label map (values as in the file, already validated).
    window : the crop, from :func:`crop_window`.
    image_out : (3, rows, cols) float32, receives mean-subtracted RGB.
    label_out : ``spec.label_shape`` float32, receives training ids (``ignore_label`` = ignored).
    """
    image, raw = scale_pair(image_bgr, label, window.scale)
    r0, r1 = _clip(window.top, window.rows, image.shape[0])
    c0, c1 = _clip(window.left, window.cols, image.shape[1])
    out_r0, out_r1 = r0 - window.top, r1 - window.top
    out_c0, out_c1 = c0 - window.left, c1 - window.left
    image_out.fill(0.0)
    label_crop = np.full((window.rows, window.cols), spec.ignore_label, dtype=np.uint8)
    if r1 > r0 and c1 > c0:
        image_cols = slice(out_c0, out_c1)
        pixels = image[r0:r1, c0:c1]
        if window.flip:
            image_cols = slice(window.cols - out_c1, window.cols - out_c0)
            pixels = pixels[:, ::-1]
        for channel, mean in enumerate(spec.rgb_mean):
            np.subtract(pixels[:, :, 2 - channel], float(mean), dtype=np.float64, casting="same_kind",
                        out=image_out[channel, out_r0:out_r1, image_cols])
        label_crop[out_r0:out_r1, out_c0:out_c1] = spec.codec.lut[raw[r0:r1, c0:c1]]

    stride = spec.prediction_stride
    label_map = label_crop[::stride, ::stride]
    if window.flip:
        label_map = label_map[:, ::-1]
    if spec.label_layout == "duc":
        label_map = label_to_duc_layout(np.ascontiguousarray(label_map), spec.duc_ratio)
    label_out[...] = label_map


def read_pair(entry: ListEntry, spec: SamplingSpec, data_dir: str = "", label_dir: str = "",
              tally: Optional[OutsideTableTally] = None) -> Tuple[np.ndarray, np.ndarray]:
    """The entry's image (H, W, 3) uint8 BGR and validated raw label (H, W) uint8, same size.

    The entry's crop centre must lie in the image (:func:`check_centre`). Label pixels outside
    the table (``convert_label``; they become ``ignore_label``) are counted in ``tally``.
    """
    image_path, label_path = resolve(data_dir, entry.image), resolve(label_dir, entry.label)
    image = read_bgr_image(image_path, entry.where)
    check_centre(entry, image.shape[:2], image_path)
    label, outside = spec.codec.read_counted(label_path, entry.where)
    if tally is not None:
        tally.add(outside)
    if image.shape[:2] != label.shape:
        where = f" ({entry.where})" if entry.where else ""
        raise DataError(f"{label_path}: label is {label.shape[0]}x{label.shape[1]} but image {image_path} is "
                        f"{image.shape[0]}x{image.shape[1]}{where}")
    return image, label


def make_sample_into(entry: ListEntry, rng: np.random.Generator, spec: SamplingSpec, image_out: np.ndarray,
                     label_out: np.ndarray, data_dir: str = "", label_dir: str = "",
                     tally: Optional[OutsideTableTally] = None) -> CropWindow:
    """:func:`make_sample` writing into preallocated arrays; returns the crop window used."""
    image, label = read_pair(entry, spec, data_dir, label_dir, tally)
    window = plan_crop(image.shape[:2], entry.centre, spec, rng)
    render_sample(image, label, window, spec, image_out, label_out)
    return window


def make_sample(entry: ListEntry, rng: Union[np.random.Generator, int], spec: SamplingSpec,
                data_dir: str = "", label_dir: str = "") -> Tuple[np.ndarray, np.ndarray]:
    """One training sample of a list entry.

    Parameters
    ----------
    entry : the list line (paths relative to ``data_dir`` / ``label_dir`` or absolute).
    rng : a generator, or a seed for one (see :func:`sample_rng` for the iterator's seeds).
    spec : the sampling settings.

    Returns
    -------
    image : (3, rows, cols) float32, mean-subtracted RGB (padding exactly 0).
    label : ``spec.label_shape`` float32 training ids, ``ignore_label`` for ignored pixels.

    Raises
    ------
    DataError
        A file is missing, corrupt, of the wrong kind, the sizes differ, a label value is
        not in the dataset's table, or the crop centre is outside the image (naming the file
        and the list line).
    """
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    image_out = np.empty(spec.image_shape, dtype=np.float32)
    label_out = np.empty(spec.label_shape, dtype=np.float32)
    make_sample_into(entry, generator, spec, image_out, label_out, data_dir, label_dir)
    return image_out, label_out
