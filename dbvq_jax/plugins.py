"""Parts found by name: a built-in module of a package, or a module of the user's own named by its import path
(as big_vision finds `models.<name>`). Priors (priors/base.py) and evaluators (evaluate/base.py) use it."""

import importlib
import types


def find_module(candidates: list[str]) -> types.ModuleType | None:
  """The first of the module names `candidates` that exists, imported; None when none does. A module that
  exists but fails to import (one of its own imports is missing) raises."""
  for name in candidates:
    try:
      return importlib.import_module(name)
    except ModuleNotFoundError as e:
      if e.name is None or not name.startswith(e.name):  # the module exists; something it imports does not
        raise
  return None
