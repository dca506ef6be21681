"""`data=rendered_digits`: synthetic digits 0-9 rendered from the TrueType fonts that ship with matplotlib.

The offline stand-in for SimGAN's synthetic eye images (Shrivastava et al., 2017): a refiner learns to make
these computer-drawn digits look like the real handwritten ones of `data=digits`, scikit-learn's bundled 8x8
digits. They share the content (the same ten classes, drawn like the real ones as bright strokes on black,
centred and filling the frame's height) and differ in style (font outlines instead of pen strokes), which is
the domain gap a refiner closes. The labels are kept, so a classifier trained on refined images can be scored
on the real digits.

How an image is made: every (font, digit) glyph is rendered once with PIL at high resolution and kept as two
distance fields, to its outline and to its centre line (the bank stays in the process's memory; nothing is
written to disk). Each image draws a font, glyph height, width, slant, shift and stroke width; one affine map
per image samples its glyph's fields onto a grid a few times finer than `image_size` (torch's affine_grid and
grid_sample, batched); thresholds there draw the strokes with the chosen width, like a round pen; an area
average down to `image_size` antialiases, much as each real 8x8 pixel counts the ink in a 4x4 block of a
32x32 bitmap. All randomness comes from a numpy generator seeded with `seed`: the same seed gives the same
images, and the global torch RNG does not move. 5000 images of 16x16 take about a second on one core.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ganlab.data.base import InMemoryImages
from ganlab.errors import ConfigError

# matplotlib's bundled fonts (mpl-data/fonts/ttf) with ordinary lining digits. Left out: the symbol and size
# variants (STIXNonUni*, STIXSiz*, cmex10, cmsy10), the Display faces and LastResort (no digit glyphs) and
# cmmi10 (old-style digits that rise and descend).
FONT_FILES = (
    "DejaVuSans",
    "DejaVuSans-Bold",
    "DejaVuSans-Oblique",
    "DejaVuSans-BoldOblique",
    "DejaVuSansMono",
    "DejaVuSansMono-Bold",
    "DejaVuSansMono-Oblique",
    "DejaVuSansMono-BoldOblique",
    "DejaVuSerif",
    "DejaVuSerif-Bold",
    "DejaVuSerif-Italic",
    "DejaVuSerif-BoldItalic",
    "STIXGeneral",
    "STIXGeneralBol",
    "STIXGeneralItalic",
    "STIXGeneralBolIta",
    "cmr10",
    "cmb10",
    "cmss10",
    "cmti10",
    "cmtt10",
)

GLYPH_HEIGHT = 64  # a glyph's ink height in the bank, in bank pixels
BANK_SIZE = 96  # the bank's square canvas: room around the glyph for thick strokes, slant and small sizes
FINE_PIXELS = 64  # the fine grid has at least this many pixels a side (and at least 3 per output pixel)
CHUNK = 256  # images drawn at once: bounds the memory of the fine grid


def font_dir() -> Path:
    import matplotlib  # only for its data path; pyplot is not imported

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@functools.lru_cache(maxsize=4)
def glyph_bank(fonts: tuple[str, ...]) -> tuple[Tensor, Tensor, Tensor]:
    """The glyphs of digits 0-9 in each font, every one scaled to GLYPH_HEIGHT pixels of ink height:

    - fields (F, 10, 2, B, B), in bank pixels: the outline's signed distance (negative inside the ink), and the
      distance to the glyph's centre line (the ridge of the distance inside the ink), which a round pen
      follows;
    - the ink box's centre (F, 10, 2) as (x, y) from the canvas centre;
    - the glyph's mean stroke width (F, 10).
    """
    from PIL import Image, ImageDraw, ImageFont
    from scipy.ndimage import distance_transform_edt, maximum_filter  # scipy comes with scikit-learn

    size = BANK_SIZE
    fields = np.zeros((len(fonts), 10, 2, size, size), np.float32)
    centres = np.zeros((len(fonts), 10, 2), np.float32)
    strokes = np.zeros((len(fonts), 10), np.float32)
    for i, name in enumerate(fonts):
        font = ImageFont.truetype(str(font_dir() / f"{name}.ttf"), 2 * GLYPH_HEIGHT)
        for digit in range(10):
            canvas = Image.new("L", (4 * GLYPH_HEIGHT, 4 * GLYPH_HEIGHT), 0)
            ImageDraw.Draw(canvas).text((GLYPH_HEIGHT, GLYPH_HEIGHT), str(digit), fill=255, font=font)
            box = canvas.getbbox()
            if box is None:
                raise ConfigError(f"data=rendered_digits: the font {name} has no glyph for the digit {digit}.")
            glyph = canvas.crop(box)
            width = max(1, round(glyph.width * GLYPH_HEIGHT / glyph.height))
            glyph = np.asarray(glyph.resize((width, GLYPH_HEIGHT), Image.Resampling.BOX)) >= 128
            top, left = (size - GLYPH_HEIGHT) // 2, (size - width) // 2
            ink = np.zeros((size, size), bool)
            ink[top : top + GLYPH_HEIGHT, left : left + width] = glyph
            # distances between pixel centres; the outline lies half a pixel beyond the ink's outermost centres
            outside, inside = distance_transform_edt(~ink), distance_transform_edt(ink)
            fields[i, digit, 0] = np.where(ink, 0.5 - inside, outside - 0.5)
            ridge = ink & (inside >= maximum_filter(inside, size=3) - 0.5)  # a line one or two pixels wide
            fields[i, digit, 1] = distance_transform_edt(~ridge)
            centres[i, digit] = (left + width / 2 - size / 2, top + GLYPH_HEIGHT / 2 - size / 2)
            # a stroke of width w and length L has area wL and outline 2L; 4-neighbour edges overcount the
            # outline of curves and slopes by about 4/pi
            edges = np.count_nonzero(ink[1:] != ink[:-1]) + np.count_nonzero(ink[:, 1:] != ink[:, :-1])
            strokes[i, digit] = 2 * ink.sum() / (edges * math.pi / 4)
    return torch.from_numpy(fields), torch.from_numpy(centres), torch.from_numpy(strokes)


def available_fonts() -> tuple[str, ...]:
    """The fonts of FONT_FILES that this matplotlib ships."""
    here = font_dir()
    return tuple(name for name in FONT_FILES if (here / f"{name}.ttf").is_file())


def _range(name: str, value: object, low: float, high: float, positive: bool = False) -> tuple[float, float]:
    """A knob that is a [min, max] pair inside [low, high] (and above 0 when `positive`)."""
    try:
        lo, hi = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ConfigError(f"data.{name} must be a [min, max] pair of numbers, got {value!r}.") from None
    if not (low <= lo <= hi <= high) or (positive and lo <= 0):
        bounds = f"{low} {'<' if positive else '<='} min <= max <= {high}"
        raise ConfigError(f"data.{name} must be a [min, max] pair with {bounds}, got {value!r}.")
    return lo, hi


def _fonts(fonts: Sequence[str] | str | None) -> tuple[str, ...]:
    shipped = available_fonts()
    if not shipped:
        raise ConfigError(f"data=rendered_digits: matplotlib ships none of its usual fonts in {font_dir()}.")
    if fonts is None:
        return shipped
    chosen = [fonts] if isinstance(fonts, str) else list(fonts)
    unknown = [f for f in chosen if f not in shipped]
    if unknown or not chosen:
        raise ConfigError(
            f"data.fonts: {unknown or 'an empty list'}: choose among the fonts with digits, {', '.join(shipped)} "
            "(or null for all)."
        )
    return tuple(dict.fromkeys(chosen))


class RenderedDigitsData(InMemoryImages):
    """`n` rendered digits (1, image_size, image_size), held as uint8; labels 0-9, balanced (counts differ by at
    most one), in random order. The style knobs are [min, max] ranges drawn uniformly per image, relative to the
    frame's height:

    - `height`: the ink's height (the real digits fill the frame's height);
    - `width`: a horizontal stretch of the font's letter shape (1: as drawn);
    - `stroke`: the pen's width. A round pen of this width runs along each glyph's centre line and the outline
      grows or shrinks by the difference from the font's mean stroke: thin fonts get bolder, bold ones thinner,
      a serif font's hairlines no thinner than the pen;
    - `slant`: a shear, the top's horizontal shift per unit of height (positive leans right), on top of an
      oblique font's own (about 0.2);
    - `jitter`: the largest shift of the centre, each way (not a range);
    - `fonts`: which of FONT_FILES to draw from, each image's font uniformly; None: all that matplotlib ships.
    """

    def __init__(
        self,
        n: int = 5000,
        image_size: int = 16,
        seed: int = 0,
        device: torch.device | str = "cpu",
        *,
        height: Sequence[float] = (0.85, 1.0),
        width: Sequence[float] = (0.75, 1.05),
        stroke: Sequence[float] = (0.1, 0.2),
        slant: Sequence[float] = (-0.3, 0.1),
        jitter: float = 0.05,
        fonts: Sequence[str] | str | None = None,
    ) -> None:
        for name, value in (("n", n), ("image_size", image_size), ("seed", seed)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"data.{name} must be an integer >= 0, got {value!r}.")
        if n < 10:
            raise ConfigError(f"data.n must be at least 10 (one image of each digit), got {n}.")
        if not 8 <= image_size <= 32:
            raise ConfigError(f"data.image_size must be from 8 to 32 for rendered digits, got {image_size}.")
        ranges = {
            "height": _range("height", height, 0.0, 1.0, positive=True),
            "width": _range("width", width, 0.0, 4.0, positive=True),
            "stroke": _range("stroke", stroke, 0.0, 0.5, positive=True),
            "slant": _range("slant", slant, -1.0, 1.0),
        }
        if ranges["stroke"][1] >= 0.5 * ranges["height"][0]:
            raise ConfigError(
                f"data.stroke's max ({ranges['stroke'][1]}) must be under half data.height's min "
                f"({ranges['height'][0]}): the pen's width is part of the digit's height."
            )
        if isinstance(jitter, bool) or not isinstance(jitter, int | float) or not 0 <= jitter <= 0.5:
            raise ConfigError(f"data.jitter must be a number from 0 to 0.5, got {jitter!r}.")
        self.fonts = _fonts(fonts)

        rng = np.random.default_rng(seed)  # its own generator: the global torch RNG does not move
        labels = rng.permutation(np.arange(n) % 10)
        style = {"font": rng.integers(len(self.fonts), size=n)}
        for name, (lo, hi) in ranges.items():
            style[name] = rng.uniform(lo, hi, n)
        style["dx"], style["dy"] = rng.uniform(-jitter, jitter, (2, n))
        images = render(labels, style, glyph_bank(self.fonts), image_size)
        super().__init__(images, torch.from_numpy(labels).long(), num_classes=10, device=device)


def render(labels: np.ndarray, style: dict[str, np.ndarray], bank: tuple[Tensor, Tensor, Tensor], size: int) -> Tensor:
    """Draw each image's glyph with its style: uint8 images (N, 1, size, size)."""
    fields, centres, strokes = bank
    factor = max(3, math.ceil(FINE_PIXELS / size))
    fine = size * factor
    out = torch.empty(len(labels), 1, size, size, dtype=torch.uint8)
    half = BANK_SIZE / 2
    for start in range(0, len(labels), CHUNK):
        part = slice(start, start + CHUNK)
        font, digit = torch.from_numpy(style["font"][part]), torch.from_numpy(labels[part])
        h, k, s, t, dx, dy = (
            torch.from_numpy(style[key][part]).float() for key in ("height", "width", "stroke", "slant", "dx", "dy")
        )
        w0 = strokes[font, digit]
        cx, cy = centres[font, digit].unbind(1)
        # The frame's height in bank pixels: the glyph, GLYPH_HEIGHT tall with strokes w0 wide, gets strokes s
        # frame wide, so its ink height becomes GLYPH_HEIGHT - w0 + s * frame, which is to be h * frame.
        frame = (GLYPH_HEIGHT - w0) / (h - s)
        radius = (s * frame - w0) / 2  # the outline grows (or, negative, shrinks) by this, in bank pixels
        # output (u, v), frame units from the centre -> bank: unshift, unscale, unshear, unstretch. affine_grid's
        # coordinates are [-1, 1] across the output (u = x / 2) and across the bank (x_bank = g * half).
        theta = torch.zeros(len(h), 2, 3)
        theta[:, 0, 0] = frame / (2 * k * half)
        theta[:, 0, 1] = t * frame / (2 * k * half)
        theta[:, 0, 2] = (-(dx + t * dy) * frame / k + cx) / half
        theta[:, 1, 1] = frame / (2 * half)
        theta[:, 1, 2] = (-dy * frame + cy) / half
        grid = F.affine_grid(theta, [len(h), 1, fine, fine], align_corners=False)
        outline, line = F.grid_sample(
            fields[font, digit], grid, mode="bilinear", padding_mode="border", align_corners=False
        ).unbind(1)
        # ink: the union of the grown outline (a serif font's thick parts stay thicker than its thin ones) and a
        # round pen s * frame wide along the centre line (no hairline stays thinner than the pen)
        distance = torch.minimum(outline - radius.view(-1, 1, 1), line - (s * frame / 2).view(-1, 1, 1))
        pixel = (frame / fine).view(-1, 1, 1)  # one fine pixel in bank pixels: the antialiasing ramp
        ink = (0.5 - distance / pixel).clamp_(0.0, 1.0).unsqueeze(1)
        ink = F.avg_pool2d(ink, factor)
        out[part] = ink.mul_(255.0).round_().to(torch.uint8)
    return out
