"""The package's layers, lowest first: a module imports only from its own layer or the ones below it, so no import
runs back up (issue 22's "0 arrows up"), and every module has a layer (a new one must be placed here)."""

import ast
import fnmatch
import os

import helpers

LAYERS = (  # module name patterns, lowest layer first
  ("dbvq_jax.errors", "dbvq_jax.files", "dbvq_jax.progress", "dbvq_jax.plugins", "dbvq_jax.lock", "dbvq_jax.timing"),
  ("dbvq_jax.parallel",),
  ("dbvq_jax.bridge", "dbvq_jax.clock", "dbvq_jax.quantize", "dbvq_jax.sampling", "dbvq_jax.likelihood"),
  ("dbvq_jax.discrete_diffusion", "dbvq_jax.masks"),
  ("dbvq_jax.models", "dbvq_jax.models.*"),
  ("dbvq_jax.core", "dbvq_jax.core.*"),  # state, loop, checkpoint: below everything that loads a run
  ("dbvq_jax.data", "dbvq_jax.data.*"),
  ("dbvq_jax.priors", "dbvq_jax.priors.base", "dbvq_jax.priors.common"),
  ("dbvq_jax.priors.bridge", "dbvq_jax.priors.pixelcnn", "dbvq_jax.priors.maskgit", "dbvq_jax.priors.vq_diffusion"),
  ("dbvq_jax.evaluate", "dbvq_jax.evaluate.base", "dbvq_jax.evaluate.codes", "dbvq_jax.evaluate.images"),
  ("dbvq_jax.evaluate.toy", "dbvq_jax.evaluate.elbo", "dbvq_jax.evaluate.frechet", "dbvq_jax.evaluate.inception"),
  ("dbvq_jax.evaluate.features",),
  ("dbvq_jax.latents", "dbvq_jax.priors.trained"),
  ("dbvq_jax.evaluate.evaluators",),
  ("dbvq_jax.train", "dbvq_jax.train.*"),
  ("dbvq_jax.main",),
)


def _layer(module: str) -> int:
  found = [i for i, patterns in enumerate(LAYERS) if any(fnmatch.fnmatchcase(module, p) for p in patterns)]
  assert found, f"{module} has no layer in {__name__}.LAYERS"
  return found[0]


def _imports() -> dict[str, set[str]]:
  """{module: the dbvq_jax modules it imports} from the source (a `from package import name` of a submodule
  counts as that submodule)."""
  root = os.path.join(helpers.ROOT, "dbvq_jax")
  out = {}
  for folder, _, names in os.walk(root):
    for name in (n for n in names if n.endswith(".py")):
      path = os.path.join(folder, name)
      module = os.path.relpath(path, helpers.ROOT)[:-3].replace(os.sep, ".").removesuffix(".__init__")
      out[module] = set()
      for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dbvq_jax"):
          for alias in node.names:
            sub = f"{node.module}.{alias.name}"
            is_module = os.path.exists(os.path.join(helpers.ROOT, *sub.split("."))) or os.path.exists(
              os.path.join(helpers.ROOT, *sub.split(".")) + ".py"
            )
            out[module].add(sub if is_module else node.module)
        elif isinstance(node, ast.Import):
          out[module] |= {a.name for a in node.names if a.name.startswith("dbvq_jax")}
  return out


def _up(imports: dict[str, set[str]]) -> list[tuple[str, str]]:
  """The (module, import) pairs whose import is in a higher layer than the module."""
  return sorted((m, t) for m, targets in imports.items() for t in targets if _layer(t) > _layer(m))


def test_no_import_runs_up_a_layer():
  imports = _imports()
  assert {"dbvq_jax.core.loop", "dbvq_jax.latents", "dbvq_jax.train.experiment"} <= set(imports)
  assert "dbvq_jax.core.checkpoint" in imports["dbvq_jax.latents"]  # `from dbvq_jax.core import checkpoint`
  assert _up(imports) == [], "imports that run up a layer"


def test_the_check_sees_an_import_that_runs_up():
  """The loop importing the experiments, or the evaluators' base importing the latents, would be caught."""
  bad = {"dbvq_jax.core.loop": {"dbvq_jax.train.experiment"}, "dbvq_jax.evaluate.base": {"dbvq_jax.latents"}}
  assert _up(bad) == [
    ("dbvq_jax.core.loop", "dbvq_jax.train.experiment"),
    ("dbvq_jax.evaluate.base", "dbvq_jax.latents"),
  ]
