"""Image metrics and pictures: PSNR, and labelled image grids (Panel) drawn as PNG figures, with their plain
uint8 grid for TensorBoard."""

from __future__ import annotations

import dataclasses

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from dbvq_jax import files
from dbvq_jax.data.pipeline import float_to_image

PAD = 2  # white pixels around and between the images of a grid
_INCHES = 6.0  # the long side of a drawn grid ...
_MIN_CELL_INCHES = 0.95  # ... unless its images would be smaller than this


def psnr(x: np.ndarray, y: np.ndarray) -> float:
  """PSNR in dB of images in [-1, 1] (peak-to-peak 2): 10 log10(4 / MSE)."""
  mse = float(np.mean(np.square(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
  return float(10.0 * np.log10(4.0 / max(mse, 1e-12)))


def grid(images: np.ndarray, rows: int) -> np.ndarray:
  """Images [n, H, W, C] in [-1, 1] -> one uint8 picture with `rows` rows, white gutters of PAD pixels."""
  images = float_to_image(images)
  n, h, w, c = images.shape
  cols = -(-n // rows)
  out = np.full((rows * (h + PAD) + PAD, cols * (w + PAD) + PAD, c), 255, np.uint8)
  for i in range(n):
    r, k = divmod(i, cols)
    out[PAD + r * (h + PAD) : PAD + r * (h + PAD) + h, PAD + k * (w + PAD) : PAD + k * (w + PAD) + w] = images[i]
  return out


@dataclasses.dataclass(frozen=True, eq=False)
class Panel:
  """A labelled image grid: images [rows, cols, H, W, C] in [-1, 1], a title, one label per row and per column
  (or none), and `box` = (top, left, height, width) in pixels of one image, outlined on every image (e.g. the
  inpainted region). PNG files show it all (save_panel); TensorBoard gets its plain `grid`."""

  images: np.ndarray
  title: str
  row_labels: tuple[str, ...] = ()
  col_labels: tuple[str, ...] = ()
  box: tuple[int, int, int, int] | None = None

  def __post_init__(self):
    rows, cols = self.images.shape[:2]
    if self.row_labels and len(self.row_labels) != rows or self.col_labels and len(self.col_labels) != cols:
      raise ValueError(f"{rows} x {cols} images need {rows} row and {cols} column labels (or none)")

  @property
  def grid(self) -> np.ndarray:
    """The images as one uint8 picture [H', W', C], row by row."""
    rows, cols = self.images.shape[:2]
    return grid(self.images.reshape((rows * cols,) + self.images.shape[2:]), rows)


def mask_box(known: np.ndarray, image_shape: tuple[int, int]) -> tuple[int, int, int, int]:
  """(top, left, height, width) in image pixels of the unknown cells of a latent mask known [h, w] (True where
  known; their bounding box), each latent cell covering image_shape // (h, w) pixels."""
  sy, sx = image_shape[0] // known.shape[0], image_shape[1] // known.shape[1]
  rows, cols = np.nonzero(~np.asarray(known))
  return (
    int(rows.min() * sy),
    int(cols.min() * sx),
    int((rows.max() - rows.min() + 1) * sy),
    int((cols.max() - cols.min() + 1) * sx),
  )


def hide(images: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
  """Images [..., H, W, C] in [-1, 1] with the box's pixels a grey checkerboard of 2-pixel squares (levels -0.25
  and 0.25: what an inpainter is not shown)."""
  top, left, height, width = box
  y, x = np.mgrid[:height, :width]
  out = np.array(images, copy=True)
  out[..., top : top + height, left : left + width, :] = np.where((y // 2 + x // 2) % 2, 0.25, -0.25)[..., None]
  return out


def _centres(count: int, size: int) -> np.ndarray:
  """Pixel centres of `count` images of `size` pixels along one axis of a grid."""
  return PAD + np.arange(count) * (size + PAD) + (size - 1) / 2


def _outlines(panel: Panel) -> list[Rectangle]:
  """The panel's box on every image, in the grid's pixel coordinates (pixel i spans i - 0.5 .. i + 0.5)."""
  rows, cols, h, w = panel.images.shape[:4]
  top, left, height, width = panel.box
  return [
    Rectangle(
      (PAD + c * (w + PAD) + left - 0.5, PAD + r * (h + PAD) + top - 0.5),
      width,
      height,
      fill=False,
      edgecolor="red",
      linewidth=1.2,
    )
    for r in range(rows)
    for c in range(cols)
  ]


def draw(panel: Panel) -> Figure:
  """The panel as a matplotlib figure: its grid (nearest neighbour), title, column labels above, row labels on
  the left, and its box outlined in red on every image."""
  picture = panel.grid
  rows, cols, h, w = panel.images.shape[:4]
  inches = max(_INCHES / max(picture.shape[:2]), _MIN_CELL_INCHES / max(h, w)) * np.array(picture.shape[1::-1])
  fig = Figure(figsize=tuple(inches + [0.3, 0.6]))
  ax = fig.add_subplot()
  ax.imshow(
    picture[..., 0] if picture.shape[-1] == 1 else picture, cmap="gray", vmin=0, vmax=255, interpolation="nearest"
  )
  ax.set_xticks(_centres(cols, w) if panel.col_labels else [], panel.col_labels)
  ax.set_yticks(_centres(rows, h) if panel.row_labels else [], panel.row_labels)
  ax.xaxis.tick_top()
  ax.tick_params(length=0, labelsize=9)
  ax.set_frame_on(False)
  for outline in _outlines(panel) if panel.box else ():
    ax.add_patch(outline)
  ax.set_title(panel.title, fontsize=10)
  return fig


def save_panel(path: str, panel: Panel) -> None:
  """Writes the drawn panel as a PNG at PATH (local or gs://)."""
  files.save_figure(draw(panel), path, dpi=100)
