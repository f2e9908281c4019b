"""One training sample: read, scale, crop + pad, flip, convert labels, subtract the mean, lay out the label.

This is the released augmentation (TuSimple-DUC), as a pure function of a list entry,
a random generator and a :class:`SamplingSpec`:

1. read the image (RGB) and the label map;
2. draw a scale ``s`` from ``scale_factors``; the image is resized by ``s`` (bilinear),
   the label by ``s`` (nearest); the list's crop centre is scaled by ``s``; the crop
   size is not;
3. jitter the centre uniformly by ``+-round(random_bound * s)`` px per axis (integers;
   7-fold scheme; no jitter when ``use_random_crop`` is off);
4. cut a ``crop_shape`` window whose top-left corner is ``centre - crop//2``; the part
   outside the scaled image is the mean colour (image) and ``ignore_label`` (label);
5. flip image and label horizontally together with probability 0.5 (``use_mirror``);
6. map label values to training ids (``convert_label``), subtract ``rgb_mean`` (no std
   division): padded pixels are exactly 0;
7. downsample the crop label by the prediction stride with nearest neighbour (pixel
   ``(y*k, x*k)``, as OpenCV's ``INTER_NEAREST`` resize by ``1/k``) and, for the DUC head,
   flatten it into the released layout (:func:`tusimple_duc.layout.label_to_duc_layout`,
   ratio ``r = ds_rate / cell_width``).

The generator is used in a fixed order: scale, row jitter, column jitter, flip.

**12-fold scheme.** The list centre is the centre of an 800x800 patch of the original
image. Scaled by ``s`` the patch is ``round(800*s)`` px wide around the scaled centre;
the ``crop_shape`` crop (544x544 in the paper) is placed uniformly inside it, i.e. the
centre is jittered by ``+-max(0, (round(800*s) - 544) // 2)`` px per axis. When the
scaled patch is smaller than the crop the crop is centred on the patch (it then also
shows image content around the patch, and padding beyond the image border).

**Scaling only the crop window.** Nothing outside the crop is resized: the source
rectangle the crop needs (plus a margin for the bilinear taps) is cut from the
unscaled image, its origin aligned to a multiple of ``q`` where ``s = p/q``, and resized
by ``s`` with the same OpenCV call as the whole image would be. With the origin
aligned, every output pixel has the same source coordinate and the same weights as in
the whole-image resize, so the result equals "resize the whole image, then crop"
exactly for scales that are simple fractions (all the released ones) and within one
grey level otherwise (``tests/data/test_sample.py`` checks this against the
straightforward order). The label is indexed directly: output pixel ``x`` of the scaled
label is source pixel ``floor(x * q / p)``, exactly OpenCV's ``INTER_NEAREST``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Optional, Tuple, Union

import cv2
import numpy as np

from tusimple_duc.data.lists import ListEntry, resolve
from tusimple_duc.data.readers import LABEL_MODES, LabelCodec, read_bgr_image
from tusimple_duc.errors import ConfigError, DataError
from tusimple_duc.layout import label_to_duc_layout

PATCH_SCHEMES = ("7fold", "12fold")
LABEL_LAYOUTS = ("duc", "map")
RELEASED_RGB_MEAN = (122.675, 116.669, 104.008)
RELEASED_SCALE_FACTORS = (0.5, 0.75, 1.0, 1.25, 1.5)


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
        rows, cols = self.crop_shape
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
        if self.cell_width < 1 or self.ds_rate < 1 or self.ds_rate % self.cell_width:
            raise ConfigError(f"[network] cell_width: {self.cell_width} does not divide [data] ds_rate {self.ds_rate}")
        if self.label_layout not in LABEL_LAYOUTS:
            raise ConfigError(f"label_layout: expected one of {LABEL_LAYOUTS}, got {self.label_layout!r}")
        if self.label_layout == "duc" and self.label_stride not in (None, self.cell_width):
            raise ConfigError(f"label_stride: the DUC label has stride cell_width {self.cell_width}, "
                              f"got {self.label_stride}")
        multiple = self.ds_rate if self.label_layout == "duc" else self.prediction_stride
        if self.prediction_stride < 1 or rows % multiple or cols % multiple:
            raise ConfigError(f"[data] crop_shape: {self.crop_shape} is not a multiple of "
                              f"{'ds_rate' if self.label_layout == 'duc' else 'label_stride'} {multiple}")
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
        return self.ds_rate // self.cell_width

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


def plan_crop(image_shape: Tuple[int, int], centre: Optional[Tuple[float, float]],
              spec: SamplingSpec, rng: np.random.Generator) -> CropWindow:
    """Draw scale, jitter and flip for an image of ``image_shape`` (H, W) and a list centre.

    ``centre`` is ``(row, col)`` in original pixels; ``None`` = the image centre ``(H/2, W/2)``.
    """
    height, width = image_shape
    scale = float(spec.scale_factors[int(rng.integers(len(spec.scale_factors)))])
    row, col = centre if centre is not None else (height / 2, width / 2)
    if not spec.use_random_crop:
        bound = (0, 0)
    elif spec.patch_scheme == "12fold":
        bound = tuple(max(0, (int(np.rint(p * scale)) - c) // 2) for p, c in zip(spec.patch_shape, spec.crop_shape))
    else:
        bound = tuple(int(np.rint(b * scale)) for b in spec.random_bound)
    jitter_row = int(rng.integers(-bound[0], bound[0] + 1))
    jitter_col = int(rng.integers(-bound[1], bound[1] + 1))
    flip = bool(rng.random() < 0.5) and spec.use_mirror
    rows, cols = spec.crop_shape
    top = int(np.rint(row * scale)) + jitter_row - rows // 2
    left = int(np.rint(col * scale)) + jitter_col - cols // 2
    return CropWindow(scale, top, left, rows, cols, flip)


def scaled_size(length: int, scale: float) -> int:
    """Length of an axis resized by ``scale`` (OpenCV's rounding of ``length * scale``)."""
    return int(np.rint(length * scale))


def as_fraction(scale: float) -> Fraction:
    """``scale`` as a fraction p/q with a small denominator (exact for the released scales)."""
    return Fraction(scale).limit_denominator(1000)


def _clip(start: int, size: int, length: int) -> Tuple[int, int]:
    """The part ``[lo, hi)`` of ``[start, start + size)`` inside ``[0, length)``; ``lo == hi`` if none."""
    lo = min(max(start, 0), length)
    return lo, max(min(start + size, length), lo)


def _source_span(start: int, stop: int, scale: float, length: int) -> Tuple[int, int]:
    """Source rows ``[lo, hi)`` whose bilinear taps cover scaled rows ``[start, stop)``; ``lo % q == 0``."""
    q = as_fraction(scale).denominator
    margin = 2 + math.ceil(1 / scale)
    lo = max(math.floor((start + 0.5) / scale - 0.5) - margin, 0)
    hi = min(math.floor((stop - 0.5) / scale - 0.5) + 1 + margin, length)
    return lo - lo % q, hi


def scale_image_window(image: np.ndarray, scale: float, rows: Tuple[int, int],
                       cols: Tuple[int, int]) -> np.ndarray:
    """Rows ``[r0, r1)`` and columns ``[c0, c1)`` of ``image`` resized by ``scale`` (bilinear).

    The range must lie inside the scaled image. Equal to
    ``cv2.resize(image, None, fx=scale, fy=scale)[r0:r1, c0:c1]`` (see the module docstring).
    """
    (r0, r1), (c0, c1) = rows, cols
    if scale == 1.0:
        return image[r0:r1, c0:c1]
    y0, y1 = _source_span(r0, r1, scale, image.shape[0])
    x0, x1 = _source_span(c0, c1, scale, image.shape[1])
    resized = cv2.resize(image[y0:y1, x0:x1], None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    fraction = as_fraction(scale)
    oy, ox = y0 * fraction.numerator // fraction.denominator, x0 * fraction.numerator // fraction.denominator
    return resized[r0 - oy:r1 - oy, c0 - ox:c1 - ox]


def scale_label_window(label: np.ndarray, scale: float, rows: Tuple[int, int],
                       cols: Tuple[int, int]) -> np.ndarray:
    """Rows ``[r0, r1)`` and columns ``[c0, c1)`` of ``label`` resized by ``scale`` (nearest).

    Scaled pixel ``x`` is source pixel ``floor(x * q / p)`` for ``scale = p/q``.
    """
    (r0, r1), (c0, c1) = rows, cols
    if scale == 1.0:
        return label[r0:r1, c0:c1]
    fraction = as_fraction(scale)
    p, q = fraction.numerator, fraction.denominator
    source_rows = np.arange(r0, r1) * q // p
    source_cols = np.arange(c0, c1) * q // p
    return label[source_rows][:, source_cols]


def render_sample(image_bgr: np.ndarray, label: np.ndarray, window: CropWindow, spec: SamplingSpec,
                  image_out: np.ndarray, label_out: np.ndarray) -> None:
    """Cut, pad, flip, convert and normalise one sample into preallocated outputs.

    Parameters
    ----------
    image_bgr : (H, W, 3) uint8 unscaled image, BGR.
    label : (H, W) uint8 unscaled raw label map (values as in the file, already validated).
    window : the crop, from :func:`plan_crop`.
    image_out : (3, rows, cols) float32, receives mean-subtracted RGB.
    label_out : ``spec.label_shape`` float32, receives training ids (``ignore_label`` = ignored).
    """
    height, width = scaled_size(image_bgr.shape[0], window.scale), scaled_size(image_bgr.shape[1], window.scale)
    r0, r1 = _clip(window.top, window.rows, height)
    c0, c1 = _clip(window.left, window.cols, width)
    out_r0, out_r1 = r0 - window.top, r1 - window.top
    out_c0, out_c1 = c0 - window.left, c1 - window.left
    if window.flip:
        out_c0, out_c1 = window.cols - out_c1, window.cols - out_c0
    step = -1 if window.flip else 1

    image_out.fill(0.0)
    label_crop = np.full((window.rows, window.cols), spec.ignore_label, dtype=np.uint8)
    if r1 > r0 and c1 > c0:
        pixels = scale_image_window(image_bgr, window.scale, (r0, r1), (c0, c1))[:, ::step]
        for channel, mean in enumerate(spec.rgb_mean):
            np.subtract(pixels[:, :, 2 - channel], np.float32(mean), dtype=np.float32,
                        out=image_out[channel, out_r0:out_r1, out_c0:out_c1])
        raw = scale_label_window(label, window.scale, (r0, r1), (c0, c1))[:, ::step]
        label_crop[out_r0:out_r1, out_c0:out_c1] = spec.codec.lut[raw]

    stride = spec.prediction_stride
    label_map = label_crop[::stride, ::stride]
    if spec.label_layout == "duc":
        label_map = label_to_duc_layout(label_map, spec.duc_ratio)
    label_out[...] = label_map


def read_pair(entry: ListEntry, spec: SamplingSpec, data_dir: str = "",
              label_dir: str = "") -> Tuple[np.ndarray, np.ndarray]:
    """The entry's image (H, W, 3) uint8 BGR and validated raw label (H, W) uint8, same size."""
    image_path, label_path = resolve(data_dir, entry.image), resolve(label_dir, entry.label)
    image = read_bgr_image(image_path, entry.where)
    label = spec.codec.read(label_path, entry.where)
    if image.shape[:2] != label.shape:
        where = f" ({entry.where})" if entry.where else ""
        raise DataError(f"{label_path}: label is {label.shape[0]}x{label.shape[1]} but image {image_path} is "
                        f"{image.shape[0]}x{image.shape[1]}{where}")
    return image, label


def make_sample_into(entry: ListEntry, rng: np.random.Generator, spec: SamplingSpec, image_out: np.ndarray,
                     label_out: np.ndarray, data_dir: str = "", label_dir: str = "") -> CropWindow:
    """:func:`make_sample` writing into preallocated arrays; returns the crop window used."""
    image, label = read_pair(entry, spec, data_dir, label_dir)
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
        A file is missing, corrupt, of the wrong kind, the sizes differ, or a label value is
        not in the dataset's table (naming the file and the list line).
    """
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    image_out = np.empty(spec.image_shape, dtype=np.float32)
    label_out = np.empty(spec.label_shape, dtype=np.float32)
    make_sample_into(entry, generator, spec, image_out, label_out, data_dir, label_dir)
    return image_out, label_out
