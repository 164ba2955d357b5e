"""The image pipeline's parts that need no trained stack (test_images_run.py trains one): the paper-scale configs
on miniImageNet's files, the end-to-end loss, priors and U-Nets on grids, the comparison's command line and the
labelled pictures. A file of their own so that pytest-xdist runs them beside the stack's tests."""

import dataclasses
import importlib.util
import json
import os
import shlex

import jax
import jax.numpy as jnp
import matplotlib.patches
import matplotlib.text
import ml_collections
import numpy as np
import pytest

from dbvq_jax import latents, priors, quantize, train
from dbvq_jax import masks as inpaint_masks
from dbvq_jax.evaluate import base as evaluation
from dbvq_jax.evaluate import evaluators
from dbvq_jax.evaluate import images as image_eval
from dbvq_jax.models import unet
from dbvq_jax.priors import bridge as bridge_prior

import helpers


def test_miniimagenet_configs_run_on_pkl_files(tmp_path):
  """configs/vqvae.py and configs/prior.py at data=miniimagenet,tiny (84x84 -> 21x21 latents, 9x9 masks)."""
  import pickle

  rng = np.random.default_rng(0)
  for split, n in (("train", 16), ("test", 4)):
    with open(tmp_path / f"mini-imagenet-cache-{split}.pkl", "wb") as f:
      pickle.dump(
        {"image_data": rng.integers(0, 256, (n, 84, 84, 3), dtype=np.uint8), "class_dict": {"a": list(range(n))}}, f
      )
  vq = helpers.load_config("vqvae:data=miniimagenet,tiny")
  vq.data.dir = str(tmp_path)
  train.run(vq, str(tmp_path / "vqvae"), "train")
  prior = helpers.load_config("prior:data=miniimagenet,tiny")
  prior.model.attn_resolutions = (11,)
  prior.vqvae_workdir = str(tmp_path / "vqvae")
  train.run(prior, str(tmp_path / "prior"), "train")
  with np.load(tmp_path / "prior" / "samples" / "codes.npz") as f:
    assert f["codes"].shape == (4, 21, 21)


def test_end_to_end_guard_restores_the_latent_scale():
  """The guard: with the fixed normalisation, the loss pulls a shrunk or inflated encoder back."""
  from dbvq_jax.train import image_e2e

  config = helpers.load_config("e2e:tiny")
  config.quantize.scale_weight = 100.0
  vq = helpers.load_config("vqvae:tiny")
  prior = image_e2e.build_prior(config, 4, 8)
  params, _ = latents.vqvae_variables(vq)(jax.random.PRNGKey(0))
  params = dict(params, codebook=jax.random.normal(jax.random.PRNGKey(1), (8, 4)))
  params["denoiser"] = prior.init(jax.random.PRNGKey(2), (8, 8, 4), codebook=np.zeros((8, 4), np.float32))["denoiser"]
  x = {"image": jax.random.uniform(jax.random.PRNGKey(3), (4, 32, 32, 1), minval=-1, maxval=1)}
  z_e = latents.networks(vq)[0].apply(params["encoder"], x["image"])
  stats = {"mu": np.zeros(4, np.float32), "scale": np.float32(np.std(z_e))}  # std(z) = 1 at a = 1
  fn = image_e2e.loss_fn(config, vq, prior, stats)

  def loss(a):  # the encoder's output scaled by a
    p = jax.tree.map(lambda v: v, params)
    last = p["encoder"]["params"]["Conv_3"]
    p["encoder"]["params"]["Conv_3"] = {"kernel": last["kernel"] * a, "bias": last["bias"] * a}
    return fn(p, {}, x, jax.random.PRNGKey(4))[0]

  slope = jax.jit(jax.grad(loss))
  assert float(slope(0.5)) < 0 < float(slope(2.0))
  config.quantize.update({"rec_weight": 0.0, "scale_weight": 0.0, "tau": 1.0})  # the prior's terms alone (tau:
  # q_tau's softmax unsaturated on these random weights, so the straight-through gradient is not lost to underflow)
  # From z (its gradient to the encoder is plain) or from the drawn code's embedding (through the straight-through
  # one-hot), the prior's terms reach the encoder or are stopped there, and the prior learns either way.
  for diffuse, to_encoder in (("z_e", False), ("codes", True), ("codes", False)):
    config.prior.diffuse, config.quantize.prior_to_encoder = diffuse, to_encoder
    fn = image_e2e.loss_fn(config, vq, image_e2e.build_prior(config, 4, 8), stats)
    grads = jax.jit(jax.grad(lambda p, fn=fn: fn(p, {}, x, jax.random.PRNGKey(4))[0]))(params)
    largest = {k: max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads[k])) for k in grads}
    assert (largest["encoder"] > 0) == to_encoder, (diffuse, largest)
    assert largest["denoiser"] > 0 and largest["codebook"] > 0, (diffuse, largest)


def test_prior_on_grids_keeps_known_codes():
  codebook = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
  config = helpers.load_config("prior:tiny")
  prior = priors.build(config, codebook, 4)
  params = prior.init(jax.random.PRNGKey(0), (5, 5, 4))
  known = jnp.asarray(codebook[np.random.default_rng(1).integers(0, 8, (2, 5, 5))])
  mask = jnp.asarray(inpaint_masks.centred_square(5, 3))[None].repeat(2, 0)
  codes = prior.sample(params, jax.random.PRNGKey(1), known.shape, known=known, mask=mask)
  expected = quantize.nearest_code(known, jnp.asarray(codebook))
  np.testing.assert_array_equal(np.asarray(codes)[np.asarray(mask)], np.asarray(expected)[np.asarray(mask)])
  loss, _ = prior.loss(params, {"z0": known, "codes": expected}, jax.random.PRNGKey(2))
  assert np.isfinite(float(loss))


def test_unet_odd_sizes_and_masks():
  m = unet.UNet(out_features=3, channels=8, channel_mult=(1, 2, 2), num_res_blocks=1, attn_resolutions=(6,))
  z = jnp.zeros((2, 21, 21, 3))
  params = m.init(jax.random.PRNGKey(0), z, jnp.zeros((2,), jnp.int32))
  assert m.apply(params, z, jnp.array([3, 999])).shape == (2, 21, 21, 3)
  masks = bridge_prior.BridgePrior(bridge=prior_bridge(), denoiser=m, cond_prob=1.0)._random_mask(
    jax.random.PRNGKey(0), (256, 8, 8)
  )
  rectangles = 0
  for known in np.asarray(masks):
    hole = ~known
    if 0 < hole.sum() < hole.size:
      r, c = np.nonzero(hole.any(1))[0], np.nonzero(hole.any(0))[0]
      rectangles += (
        hole.sum() == (r[-1] - r[0] + 1) * (c[-1] - c[0] + 1) == hole[r[0] : r[-1] + 1, c[0] : c[-1] + 1].sum()
      )
  assert rectangles > 256 * 0.3  # about half the masks leave one rectangle to inpaint
  assert 0.2 < np.asarray(masks).mean() < 0.9


def prior_bridge():
  return bridge_prior.bridge_from_config(helpers.load_config("prior").bridge)


def _compare_priors():
  """benchmarks/compare_priors.py as a module."""
  spec = importlib.util.spec_from_file_location(
    "compare_priors", os.path.join(helpers.ROOT, "benchmarks", "compare_priors.py")
  )
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_equal_time_steps_come_from_the_probe_throughput(tmp_path):
  """compare_priors --minutes: a finished probe run is not retrained, and its recorded steps/s after
  compilation (train_time.json, written by the loop: test_train.py) sets the steps of M minutes."""
  compare_priors = _compare_priors()
  probe = tmp_path / "probes" / "pixelcnn"
  probe.mkdir(parents=True)
  (probe / "metrics.json").write_text("{}")
  (probe / "train_time.json").write_text(json.dumps({"step": 150, "seconds": 40.0, "steps_per_second": 4.4}))
  assert compare_priors.equal_time_steps("pixelcnn", str(tmp_path), "unused", 15, False) == 3960


def test_every_documented_comparison_command_parses(monkeypatch):
  """The documented compare_priors commands (the fixture above runs the equal-steps one): their flags parse, and
  each stack override they become names a field of the stack's config (the probes of --minutes faked)."""
  compare_priors = _compare_priors()
  monkeypatch.setattr(compare_priors, "equal_time_steps", lambda *args: 7)
  commands = [shlex.split(c)[2:] for c in helpers.readme_commands() if c.startswith("python benchmarks/compare_pr")]
  assert len(commands) >= 3 and any("--minutes=15" in c for c in commands)
  for argv in commands:
    args = compare_priors.parse_args(argv)
    if "my_pkg" in args.priors:  # the docs' placeholder for a module of your own
      continue
    stack = helpers.load_config(f"stack:prior={args.priors}")
    for flag in compare_priors.stack_overrides(args, "/w"):
      node = stack
      for part in flag.removeprefix("--config.").split("=")[0].split("."):
        node = node[part]  # a KeyError names an override the stack does not have
  with pytest.raises(SystemExit, match="--minutes needs --vqvae"):
    compare_priors.parse_args(["--minutes=1"])


# The pictures of the evaluators: labelled panels, drawn as PNG figures, their plain grid to TensorBoard. A fake
# VQ-VAE decodes code c of a [6, 6] map to a 4 x 4 block of grey level c / 4 - 1 (codes 0..2 stay dark, the
# fake prior fills unknown codes with 8: white), so pictures are checked pixel by pixel without a network.
NUM_CODES, CELL = 9, 4


@dataclasses.dataclass(frozen=True)
class FakePrior:
  """Fills every unknown position with code 8; its chain is F constant maps, frame f all code f."""

  full_sample_steps: int = 10
  latent_key = "codes"
  num_labels = 0

  def sample(self, params, rng, shape, *, known=None, mask=None, labels=None):
    return jnp.where(mask, known, NUM_CODES - 1)

  def chain(self, params, rng, shape, num_frames, *, labels=None):
    return jnp.broadcast_to(jnp.arange(num_frames)[:, None, None, None], (num_frames,) + tuple(shape))


class FakeVQVAE:
  codebook = np.zeros((NUM_CODES, 2), np.float32)

  @staticmethod
  def decode_codes(codes):
    pixels = jnp.repeat(jnp.repeat(codes, CELL, axis=1), CELL, axis=2)
    return (pixels / 4.0 - 1.0)[..., None]


def _fake_context(n: int = 2):
  codes = np.random.default_rng(0).integers(0, 3, (n, 6, 6)).astype(np.int32)
  ctx = evaluators.PriorContext(FakePrior(), FakeVQVAE(), {}, batch_size=4)
  ctx.cache["test"] = {"codes": codes, "z0": codes, "label": np.zeros(n, np.int32)}
  return ctx


def _texts(fig) -> list[str]:
  return [t.get_text() for t in fig.findobj(matplotlib.text.Text) if t.get_text()]


def _covered(rect) -> set[tuple[int, int]]:
  """Grid pixels (row, col) whose centres lie inside a drawn rectangle."""
  x0, y0 = rect.get_x(), rect.get_y()
  cols = [c for c in range(int(x0), int(x0 + rect.get_width()) + 2) if x0 < c < x0 + rect.get_width()]
  rows = [r for r in range(int(y0), int(y0 + rect.get_height()) + 2) if y0 < r < y0 + rect.get_height()]
  return {(r, c) for r in rows for c in cols}


@pytest.mark.parametrize("region", ["centre", "top_left"])
def test_inpaint_panel_labels_its_rows_and_columns_and_outlines_the_masked_cells(region):
  cfg = ml_collections.ConfigDict({"num_images": 2, "samples_per_image": 3, "mask_size": 2})
  _, pictures = evaluators.Inpaint(cfg, _fake_context()).run({}, jax.random.PRNGKey(0), {})
  panel = pictures[f"inpaint_{region}"]
  assert panel.images.shape == (2, 5, 6 * CELL, 6 * CELL, 1)
  fig = image_eval.draw(panel)
  texts = _texts(fig)
  for label in ("original\n(decoded)", "known part", "sample 1", "sample 3", "test image 1", "test image 2"):
    assert label in texts
  assert any(region.replace("_", "-") in t and "2x2" in t for t in texts)
  # the masked cells in image pixels, from the latent mask alone
  known = evaluators.Inpaint.REGIONS[region](6, 2)
  hole = np.kron(~known, np.ones((CELL, CELL), bool))
  rects = [p for p in fig.axes[0].patches if isinstance(p, matplotlib.patches.Rectangle)]
  assert len(rects) == 2 * 5
  picture = panel.grid[..., 0]
  grey = {tuple(p) for p in np.argwhere(np.isin(picture, (96, 159)))}  # the "known part"'s hidden checkerboard
  assert grey == set().union(*(_covered(r) for r in rects[1::5])) and len(grey) == 2 * hole.sum()
  for r in rects:  # each outline covers exactly as many pixels as the masked cells: the samples' white fill
    assert len(_covered(r)) == hole.sum()
  for r in rects[2::5]:
    assert all(picture[p] == 255 for p in _covered(r))


def test_chain_panel_labels_each_frame_with_its_t():
  ctx = _fake_context()
  _, pictures = evaluators.Chain(ml_collections.ConfigDict({"num_chains": 2, "frames": 3}), ctx).run(
    {}, jax.random.PRNGKey(0), {}
  )
  panel = pictures["chain"]
  assert panel.col_labels == ("t = 10", "t = 5", "t = 0") and panel.row_labels == ("chain 1", "chain 2")
  np.testing.assert_allclose(panel.images[:, 2], 2 / 4 - 1)  # frame f: all code f, as the fake chain made it
  texts = _texts(image_eval.draw(panel))
  assert {"t = 10", "t = 5", "t = 0", "chain 1"} <= set(texts)
  assert any("Denoising chains of the Fake prior" in t for t in texts)


def test_panels_go_to_tensorboard_as_grids_and_to_files_as_labelled_figures(tmp_path):
  from PIL import Image

  from dbvq_jax.train import experiment

  panel = image_eval.Panel(np.zeros((2, 3, 8, 8, 1)), "a title", ("r1", "r2"), ("a", "b", "c"), box=(2, 2, 4, 4))
  drawn = []

  class Due(evaluation.Evaluator):
    def run(self, params, key, shared):
      return {"x": 1.0}, {"grid": panel, "figure": drawn.append}

  class Writer:
    images, scalars = [], []

    def add_scalar(self, name, value, step):
      self.scalars.append((name, value, step))

    def add_image(self, name, value, step, dataformats):
      self.images.append((name, value, step, dataformats))

  run = experiment.Experiment(ml_collections.ConfigDict({"seed": 0, "use_ema": False}), str(tmp_path))
  run._evaluators = {"due": Due(ml_collections.ConfigDict({"log_steps": 5}), run)}
  run.eval_params = lambda state: {}
  writer = Writer()
  run._periodic(10, None, writer)
  [(name, value, step, dataformats)] = writer.images  # the figure function is for files only
  assert (name, step, dataformats) == ("eval/grid", 10, "HWC") and writer.scalars == [("eval/due/x", 1.0, 10)]
  assert value.dtype == np.uint8 and value.shape == (2 * 10 + 2, 3 * 10 + 2, 1)
  assert value[2, 2, 0] == 128 and value[0, 0, 0] == 255  # grey images, white gutters
  experiment.save_pictures(str(tmp_path / "figures"), {"grid": panel, "figure": drawn.append}, suffix="_x")
  with Image.open(tmp_path / "figures" / "grid_x.png") as png:
    assert png.size[0] > 3 * value.shape[1]  # a figure, larger than the grid itself
  assert drawn == [str(tmp_path / "figures" / "figure_x.png")]
