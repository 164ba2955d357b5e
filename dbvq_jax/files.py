"""Files under a run's workdir, local or in a bucket (gs://...): reads and writes go through etils.epath, which
treats both alike (gs:// needs gcsfs, the `gcs` extra). Path strings are joined with os.path.join, which keeps
a `gs://` prefix; os.path.abspath and normpath would not, hence `absolute`."""

from __future__ import annotations

import json
import os

from etils import epath


def is_uri(path: str) -> bool:
  """Whether `path` names a location on a remote filesystem (scheme://...)."""
  return "://" in str(path)


def absolute(path: str) -> str:
  """os.path.abspath of a local path; a URI (gs://bucket/dir) unchanged."""
  return str(path) if is_uri(path) else os.path.abspath(path)


def write_json(path: str, record: dict) -> None:
  """PATH as indented JSON."""
  epath.Path(path).write_text(json.dumps(record, indent=2))


def save_figure(fig, path: str, dpi: int) -> None:
  """Writes a matplotlib figure as a PNG at PATH (tight bounding box) and closes it."""
  import matplotlib.pyplot as plt

  with epath.Path(path).open("wb") as f:
    fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight")
  plt.close(fig)
