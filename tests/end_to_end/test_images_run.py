"""VQ-VAE, the four priors, the classifier and the comparison on tiny Fashion-MNIST-format files,
run as a user runs them: `benchmarks/compare_priors.py --smoke` (each stage `python -m dbvq_jax.main`)."""

import dataclasses
import importlib.util
import json
import os
import shlex
import subprocess
import sys

import jax
import jax.numpy as jnp
import matplotlib.patches
import matplotlib.text
import ml_collections
import numpy as np
import pytest

from configs import common
from dbvq_jax import latents, priors, quantize, train
from dbvq_jax import masks as inpaint_masks
from dbvq_jax.core import loop
from dbvq_jax.evaluate import base as evaluation
from dbvq_jax.evaluate import evaluators
from dbvq_jax.evaluate import images as image_eval
from dbvq_jax.models import unet
from dbvq_jax.priors import bridge as bridge_prior

import helpers

BASELINES = tuple(n for n in priors.names() if n != "bridge")


def _metrics(workdir) -> dict:
  with open(workdir / "metrics.json") as f:
    return json.load(f)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """The stack's WORKDIR: {vqvae,bridge,pixelcnn,vq_diffusion,maskgit,classifier,compare}, FID of random weights."""
  root = tmp_path_factory.mktemp("images")
  helpers.write_fashion_mnist(str(root / "data"))
  helpers.write_random_inception(str(root / "inception_fid.npz"))
  out = subprocess.run(
    [
      sys.executable,
      "benchmarks/compare_priors.py",
      "--smoke",
      f"--workdir={root}",
      f"--data_dir={root / 'data'}",
      f"--inception_weights={root / 'inception_fid.npz'}",
    ],
    cwd=helpers.ROOT,
    capture_output=True,
    text=True,
    timeout=900,
  )
  assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
  assert "| maskgit |" in out.stdout  # the printed table
  return root


def test_vqvae_run(runs):
  metrics = _metrics(runs / "vqvae")["reconstruction"]  # the evaluator entry's record
  assert metrics["latent_shape"] == [8, 8] and 0 <= metrics["dead_codes"] <= 8
  assert np.isfinite(metrics["psnr"]) and 1.0 <= metrics["perplexity"] <= 8.0
  assert os.path.getsize(runs / "vqvae" / "figures" / "reconstructions.png") > 500
  model = latents.load_vqvae(str(runs / "vqvae"))
  assert model.codebook.shape == (8, 4)
  assert model.decode_codes(jnp.zeros((2, 8, 8), jnp.int32)).shape == (2, 32, 32, 1)


def test_image_prior_run(runs):
  prior_dir = runs / "bridge"
  with np.load(prior_dir / "samples" / "codes.npz") as f:
    assert f["codes"].shape == (4, 8, 8) and f["codes"].max() < 8
  for name in ("samples", "chain", "inpaint_centre", "inpaint_top_left"):
    assert os.path.getsize(prior_dir / "figures" / f"{name}.png") > 500
  metrics = _metrics(prior_dir)
  assert metrics["samples"]["seconds_per_sample"] > 0 and metrics["samples"]["num_samples"] == 4
  config = helpers.load_config("prior:tiny")
  config.vqvae_workdir = str(runs / "vqvae")
  restored = loop.load(
    config, str(prior_dir), lambda rng: (priors.build(config, np.zeros((8, 4), np.float32), 4).init(rng, (8, 8, 4)), {})
  )
  assert int(restored.step) == 4


def test_end_to_end_run(runs):
  root = runs
  prior_ze = helpers.load_config("prior:tiny")
  prior_ze.vqvae_workdir = str(root / "vqvae")
  prior_ze.prior.diffuse = "z_e"  # Algorithm 1 diffuses z_e; a codes-diffused prior is refused
  train.run(prior_ze, str(root / "prior_ze"), "train")
  config = helpers.load_config("e2e:tiny")
  config.vqvae_workdir = str(root / "vqvae")
  config.prior_workdir = str(root / "bridge")
  with pytest.raises(ValueError, match="different config.prior"):
    train.run(config, str(root / "e2e"), "train")
  config.prior_workdir, config.evals.fd.path = str(root / "prior_ze"), str(root / "classifier")
  estimators = dict(common.estimators(), nll_t_samples=2)
  config.evals.nll = common.entry(  # the image bound of the end-to-end model (its decoder scale fitted anew)
    "nll", num_examples=2, mask_size=0, batch_size=2, image_elbo=True, elbo_fit_examples=4, estimators=estimators
  )
  metrics = train.run(config, str(root / "e2e"), "train")
  elbo = metrics["nll"]["image_elbo"]  # the prior's term, -log p(codes) >= 0, adds to the decoder's bits
  assert elbo["bound"]["bits_per_dim"] > elbo["decoder"]["bits_per_dim"] > 0 and elbo["bound"]["kind"] == "bound"
  assert set(metrics["after"]) == {"psnr", "perplexity", "latent_scale", "codebook_shift"}
  assert metrics["after"]["codebook_shift"] > 0  # 4 steps of the codebook's own learning rate moved it
  assert set(metrics["before"]) == {"psnr", "perplexity", "latent_scale", "fd"}  # fd: the evals entry
  assert 0.5 < metrics["before"]["latent_scale"] < 2.0
  fds = (metrics["floor"]["fd"], metrics["before"]["fd"], metrics["fd"])
  assert all(v["distance"] >= 0 and v["features"] == "classifier" for v in fds)
  with np.load(root / "e2e" / "samples" / "codes.npz") as f:
    assert f["codes"].shape == (8, 8, 8)  # the most any evaluator drew: the FD's 8
  assert os.path.getsize(root / "e2e" / "figures" / "samples.png") > 500


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


@pytest.mark.parametrize("kind", BASELINES)
def test_baseline_prior_runs(runs, kind):
  """Each baseline trains and samples through the same loop and evaluation as the bridge prior."""
  workdir = runs / kind
  metrics = _metrics(workdir)
  assert metrics["prior"] == kind and metrics["samples"]["seconds_per_sample"] > 0 and metrics["kl"]["mean"] > 0
  with np.load(workdir / "samples" / "codes.npz") as f:
    assert f["codes"].shape == (4, 8, 8) and 0 <= f["codes"].min() and f["codes"].max() < 8
  for name in ("samples", "inpaint_centre", "inpaint_top_left"):
    assert os.path.getsize(workdir / "figures" / f"{name}.png") > 500
  assert not os.path.exists(workdir / "figures" / "chain.png")


def test_compare_writes_the_table_for_every_prior(runs):
  assert 0.0 <= _metrics(runs / "classifier")["accuracy"]["test_accuracy"] <= 1.0
  out = runs / "compare" / "eval"
  with open(out / "results.json") as f:
    results = json.load(f)
  assert sorted(r["prior"] for r in results["priors"]) == sorted(["bridge", *BASELINES])
  caches = [os.path.join(d, f) for d, _, names in os.walk(runs) for f in names if "latents" in os.path.join(d, f)]
  assert caches == [str(runs / "vqvae" / "latents" / "step_4.npz")]  # five prior runs, one latent cache
  for row in results["priors"]:
    assert row["checkpoint_step"] == row["train_steps"]  # each row names the checkpoint it scored
    for part in ("unconditional", "masked"):
      assert all(
        np.isfinite(v["nats"]) and v["nats"] > 0 and v["kind"] in ("exact", "bound", "estimate")
        for v in row["nll"][part].values()
      )
    assert row["kl"]["lo"] <= row["kl"]["hi"] and row["kl"]["mean"] > 0 and row["samples"]["seconds_per_sample"] > 0
    assert row["classifier_fd"]["distance"] > 0 and row["fid"]["distance"] > 0
    for name in ("samples", "inpaint_centre", "inpaint_top_left", "kl_map"):
      assert os.path.getsize(out / f"{name}_{row['prior']}.png") > 500
  assert set(results["priors"][0]["nll"]["masked"]) == {"bound", "iwae"}  # bridge (paper_mc: test_bridge_nll_command)
  assert results["floor"]["kl"]["mean"] > 0 and results["floor"]["classifier_fd"]["distance"] >= 0
  assert [s["steps"] for s in results["priors"][0]["steps"]["by_steps"]] == [2]  # the bridge at 0.2 T
  table = (out / "results.md").read_text()
  assert "| maskgit | md4_bound | bound |" in table and "| data (floor) |" in table and "Sampler steps" in table
  assert "classifier FD" in table and "| FID |" in table
  assert "- pixelcnn, exact, masked: the PixelCNN, each code given only the codes before it" in table
  for row in results["priors"]:  # the negative ELBO adds the decoder's bits to the prior's, map by map
    e, positions = row["nll"]["image_elbo"], 8 * 8
    assert e["dims"] == 32 * 32 and -7 < e["log_scale"] <= np.log(2) and e["decoder"]["bits_per_dim"] > 0
    for name, v in row["nll"]["unconditional"].items():
      prior_bits = v["nats"] * positions / (e["dims"] * np.log(2))
      assert e[name]["bits_per_dim"] == pytest.approx(e["decoder"]["bits_per_dim"] + prior_bits, rel=1e-6)
      assert e[name]["kind"] == ("estimate" if v["kind"] == "estimate" else "bound")
  assert "| pixelcnn | exact | bound |" in table and "negative ELBO" in table
  c = helpers.load_config("compare:tiny")
  c.vqvae_workdir = str(runs / "bridge")
  with pytest.raises(ValueError, match="not 'vqvae'"):
    train.run(c, str(runs / "compare2"), "eval")


def test_bridge_nll_command(runs):
  """The README's NLL sensitivity command on the trained bridge, shrunk."""
  commands = [c for c in helpers.readme_commands() if c.startswith("python benchmarks/bridge_nll.py")]
  [command] = [c for c in commands if "--nested_iwae" not in c]
  [nested_command] = [c for c in commands if "--nested_iwae" in c]
  args = [
    sys.executable if a == "python" else a.replace("=runs/fmnist_prior", f"={runs}/bridge") for a in command.split()
  ]
  out = subprocess.run(
    args + ["--examples=4", "--iwae_samples=1,2", "--mc_samples=2", "--taus=0.5,4", "--steps=2"],
    cwd=helpers.ROOT,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
  rows = [
    [c.strip() for c in line.split("|")[1:-1]]
    for line in out.stdout.splitlines()
    if line.startswith(("| bound", "| iwae", "| paper_mc"))
  ]
  assert [r[0] for r in rows] == ["bound", "iwae", "iwae", "paper_mc", "paper_mc"]
  assert all(float(r[3].split(" ± ")[0]) > 0 for r in rows)
  whole = subprocess.run(
    args + ["--examples=4", "--iwae_samples=1,2", "--mask_size=0"], cwd=helpers.ROOT, capture_output=True, text=True
  )
  assert whole.returncode == 0 and "whole maps" in whole.stdout, whole.stderr[-3000:]
  assert [line.split("|")[1].strip() for line in whole.stdout.splitlines() if line.startswith("| ")][1:] == [
    "bound",
    "iwae",
    "iwae",
  ]
  nested_args = [sys.executable if a == "python" else a for a in nested_command.split()]
  nested_args = [f"--prior_workdir={runs}/bridge" if a.startswith("--prior_workdir") else a for a in nested_args]
  nested = subprocess.run(
    nested_args + ["--examples=4", "--nested_iwae=4"], cwd=helpers.ROOT, capture_output=True, text=True
  )
  rows = [line.split("|")[1:-1] for line in nested.stdout.splitlines() if line.startswith("| ") and "S |" not in line]
  assert nested.returncode == 0 and [r[0].strip() for r in rows] == ["1", "2", "4"], nested.stderr[-3000:]
  assert rows[0][2].strip() == "—" and all(0 < float(r[1].split("±")[0]) < np.inf for r in rows), nested.stdout


def test_curves_commands(runs, tmp_path):
  """The docs' training-curve commands, shrunk to the tiny configs: two budgets on the first, one on the second,
  rows with every metric and the floors; a rerun of the first skips the rows it has."""
  commands = [c for c in helpers.readme_commands() if c.startswith("python benchmarks/curves.py")]
  assert len(commands) == 2
  for i, command in enumerate(commands):
    out_file = tmp_path / f"curve{i}.json"
    args = [sys.executable if a == "python" else a for a in shlex.split(command)] + [
      "--smoke",
      "--minutes=0.01,0.02" if i == 0 else "--minutes=0.01",
      "--num=4",
      "--nll_examples=4",
      "--nll_s=2",
      "--sample_steps=2",
      "--checkpoint_every=2",
      f"--root={tmp_path}/curves",
      f"--vqvae={runs}/vqvae",
      f"--classifier={runs}/classifier",
      f"--out={out_file}",
    ]
    for _ in range(2 if i == 0 else 1):
      out = subprocess.run(args, cwd=helpers.ROOT, capture_output=True, text=True, timeout=600)
      assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    curve = json.loads(out_file.read_text())
    assert [r["minutes"] for r in curve["rows"]] == [0.01, 0.02][: 2 - i] and curve["steps_per_second"] > 0
    for row in curve["rows"]:
      assert row["classifier_fd"]["distance"] > 0 and row["kl"]["mean"] > 0
      assert all(v["nats"] > 0 and v["model"] for v in row["nll"]["unconditional"].values())
    assert curve["floor"]["kl"]["mean"] > 0 and curve["floor"]["classifier_fd"]["distance"] >= 0
  assert os.path.getsize(tmp_path / "curves.png") > 10_000  # both curves in one figure


def test_bridge_ablation_command(runs):
  """The README's ablation command on the trained bridge, shrunk (its validation maps are 8)."""
  [command] = [c for c in helpers.readme_commands() if c.startswith("python benchmarks/bridge_ablation.py")]
  args = [sys.executable if a == "python" else a for a in command.split()]
  flags = [f"--workdirs={runs}/bridge,{runs}/bridge", "--num_kl=4", "--examples=4", "--steps=2"]
  out = subprocess.run(args + flags, cwd=helpers.ROOT, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
  rows = [line for line in out.stdout.splitlines() if line.startswith("| bridge |")]
  assert len(rows) == 2 and " ± " in rows[0]


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
  config.quantize.update({"rec_weight": 0.0, "scale_weight": 0.0, "prior_to_encoder": False})  # the prior's terms
  fn = image_e2e.loss_fn(config, vq, prior, stats)
  grads = jax.jit(jax.grad(lambda p: fn(p, {}, x, jax.random.PRNGKey(4))[0]))(params)
  assert all(float(jnp.abs(g).max()) == 0 for g in jax.tree.leaves(grads["encoder"]))  # stopped at the encoder ...
  assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads["denoiser"])) > 0  # ... and the prior learns


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
