"""The toy: its data law, its metrics, and one end-to-end run of each toy config."""

import json
import os

import matplotlib.text
import numpy as np
import pytest

from dbvq_jax import files, train
from dbvq_jax.data import toy as toy_data
from dbvq_jax.evaluate import toy as toy_eval

import helpers


def test_generated_sequences_are_uniform_random_walks():
  codes, x = toy_data.sample(np.random.default_rng(0), 40_000, 5, 8, 0.05)
  assert codes.shape == (40_000, 5) and x.shape == (40_000, 5, 2)
  assert toy_eval.valid_rate(codes, 8) == 1.0
  np.testing.assert_allclose(np.bincount(codes[:, 0], minlength=8) / 40_000, 1 / 8, atol=0.01)
  np.testing.assert_allclose(np.mean((codes[:, 1] - codes[:, 0]) % 8 == 1), 0.5, atol=0.01)
  np.testing.assert_allclose(np.std(x - toy_data.centroids(8)[codes]), 0.05, rtol=0.02)
  assert toy_eval.tv_to_uniform_valid(codes, 8) < 0.03  # 40k exact samples score about 0.02


def test_valid_sequences_against_brute_force():
  every = np.stack(np.meshgrid(*[np.arange(8)] * 5, indexing="ij"), -1).reshape(-1, 5)
  brute = every[toy_data.is_valid(every, 8)]
  np.testing.assert_array_equal(toy_data.valid_sequences(5, 8), brute)
  assert len(brute) == 128


def test_total_variation_extremes():
  valid = toy_data.valid_sequences(5, 8)
  assert toy_eval.tv_to_uniform_valid(valid, 8) == pytest.approx(0.0)
  assert toy_eval.tv_to_uniform_valid(np.zeros((10, 5), int), 8) == pytest.approx(1.0)
  half = np.concatenate([valid[:64], valid[:64]])  # uniform on half of the support
  assert toy_eval.tv_to_uniform_valid(half, 8) == pytest.approx(0.5)


def test_codebook_matching_recovers_a_permutation():
  true = toy_data.centroids(8)
  perm = np.random.default_rng(1).permutation(8)
  learned = true[perm] + 0.01
  true_index, error = toy_eval.match_codebook(learned, true)
  np.testing.assert_array_equal(true_index, perm)
  np.testing.assert_allclose(error, np.sqrt(2) * 0.01, rtol=1e-5)


def test_data_stream_is_deterministic_and_resumable():
  ds = toy_data.batches(3, 4, 2, 5, 8, 0.05)
  it = iter(ds)
  first = next(it)
  state = it.get_state()
  second = next(it)
  it2 = iter(ds)
  it2.set_state(state)
  np.testing.assert_array_equal(next(it2)["x"], second["x"])
  assert first["x"].shape == (2, 4, 5, 2) and first["codes"].shape == (2, 4, 5)
  assert not np.array_equal(first["x"], second["x"])


def _texts(fig) -> list[str]:
  return [t.get_text() for t in fig.findobj(matplotlib.text.Text) if t.get_text()]


@pytest.fixture
def drawn(monkeypatch):
  """{file name: the texts of its figure} of every figure saved while it is in use (the files are written too)."""
  texts, save = {}, files.save_figure

  def spy(fig, path, dpi):
    texts[os.path.basename(path)] = _texts(fig)
    save(fig, path, dpi)

  monkeypatch.setattr(files, "save_figure", spy)
  return texts


def test_inpainting_figure_has_one_panel_per_distinct_sequence(drawn, tmp_path):
  sequences = [(0, 1, 2, 3, 4)] * 5 + [(0, 7, 6, 5, 4)] * 3 + [(0, 0, 0, 0, 4)]
  codes = np.array(sequences)
  z0 = toy_data.centroids(8)[codes]
  given = np.array([0, -1, -1, -1, 4])
  toy_eval.plot_inpainting(str(tmp_path / "all.png"), toy_data.centroids(8), z0, codes, given)
  toy_eval.plot_inpainting(str(tmp_path / "two.png"), toy_data.centroids(8), z0, codes, given, most=2)
  titles = [t for t in drawn["all.png"] if "samples" in t]
  assert titles[:3] == [
    "(0, 1, 2, 3, 4)\nvalid, 5 of 9 samples",
    "(0, 7, 6, 5, 4)\nvalid, 3 of 9 samples",
    "(0, 0, 0, 0, 4)\nINVALID, 1 of 9 samples",
  ]
  assert "Inpainting (0, ?, ?, ?, 4), known positions boxed: 9 samples" in titles
  assert (
    "Inpainting (0, ?, ?, ?, 4), known positions boxed: 9 samples; 3 distinct, the 2 most frequent shown"
    in (drawn["two.png"])
  )


def test_codebook_figure_says_fixed_or_draws_initial_and_learned(drawn, tmp_path):
  true = toy_data.centroids(8)
  toy_eval.plot_codebooks(str(tmp_path / "fixed.png"), true, None, None)
  assert "Codebook fixed to the 8 true centroids\n(not learned)" in drawn["fixed.png"]
  assert not {"initial", "learned"} & set(drawn["fixed.png"])  # no legend entries: nothing was learned
  learned = true[::-1] + [0.0, 0.05]  # every code 0.05 from a centroid
  toy_eval.plot_codebooks(str(tmp_path / "learned.png"), true, 0.5 * true, learned)
  assert {"initial", "learned", "true centroid"} <= set(drawn["learned.png"])
  assert (
    "Codebook learned end to end: initial -> learned\nlargest distance to its matched centroid 0.050"
    in (drawn["learned.png"])
  )
  with pytest.raises(ValueError, match="or neither"):
    toy_eval.plot_codebooks(str(tmp_path / "x.png"), true, None, learned)


@pytest.mark.parametrize("variant", ["tiny", "e2e,tiny"])
def test_run_writes_samples_metrics_and_figures(variant, tmp_path, drawn):
  config = helpers.load_config(f"toy:{variant}")
  workdir = str(tmp_path)
  metrics = train.run(config, workdir, "train")
  codebook = drawn["toy_codebook.png"]
  if variant == "tiny":  # the toy's codebook is fixed: its figure must not say "learned"
    assert "Codebook fixed to the 8 true centroids\n(not learned)" in codebook and "initial" not in codebook
  else:
    error = f"largest distance to its matched centroid {metrics['toy']['codebook_max_error']:.3f}"
    assert {"initial", "learned"} <= set(codebook) and any(error in t for t in codebook)
  panels = [t for t in drawn["toy_inpainting.png"] if t.endswith(" of 32 samples")]
  assert 1 <= len(panels) <= 4 and len(set(panels)) == len(panels)  # one panel per distinct sequence
  with np.load(os.path.join(workdir, "samples", "codes.npz")) as f:
    assert f["codes"].shape == (64, 5) and f["codes"].dtype == np.int32
    assert f["inpainted"].shape == (64, 5)
    if variant == "tiny":  # fixed codebook: the given codes come back (a learned one may not be trained yet)
      np.testing.assert_array_equal(f["inpainted"][:, [0, 4]], np.broadcast_to([0, 4], (64, 2)))
  with open(os.path.join(workdir, "metrics.json")) as fp:
    assert json.load(fp) == metrics
  expected = {"valid_rate", "tv_to_uniform_valid", "inpaint_valid_rate", "inpaint_replacement_valid_rate"}
  if variant == "e2e,tiny":
    expected |= {"codebook_max_error", "codebook_mean_error"}
  assert expected <= set(metrics["toy"])  # the toy evaluator entry's record
  for fig in ("data", "chains", "codebook", "inpainting"):
    assert os.path.getsize(os.path.join(workdir, "figures", f"toy_{fig}.png")) > 1000
  if variant == "tiny":
    again = train.run(config, workdir, "eval")  # restored from the checkpoint: same samples
    timeless = lambda m: {k: v for k, v in m["toy"].items() if "seconds" not in k}  # noqa: E731
    assert again["checkpoint_step"] == metrics["checkpoint_step"] and timeless(again) == timeless(metrics)
    for sub in ("state",):  # a corrupt checkpoint is a clear error
      d = os.path.join(workdir, "checkpoints", "8", sub)
      for root, _, files in os.walk(d):
        for fn in files:
          with open(os.path.join(root, fn), "wb") as fp:
            fp.write(b"garbage")
    with pytest.raises(RuntimeError, match="cannot read checkpoint step 8") as err:
      train.run(config, workdir, "eval")
    assert "\n" not in str(err.value) and len(str(err.value)) < 600, str(err.value)  # one line with its cause


def test_bfloat16_compute_keeps_validity_and_the_bridge_posterior(tmp_path):
  """The toy MLP trained 1,000 steps in float32, then run with model.dtype=bfloat16 on the same float32
  weights: sample validity within 0.02 of float32's on 1,000 samples, and the bridge posterior mean
  q(z^{t-1} | z^t, z0_hat(z^t)) within 0.05 of float32's at t = 1, T/2, T (latents of scale 1)."""
  import jax
  import jax.numpy as jnp

  from dbvq_jax import bridge as bridge_lib
  from dbvq_jax.core import loop
  from dbvq_jax.train import toy as toy_task

  config = helpers.load_config("toy")
  config.training.update({"num_steps": 1_000, "log_every": 1_000, "checkpoint_every": 1_000, "steps_per_call": 100})
  d, t = config.data, config.training
  prior = toy_task.build_prior(config)
  data = iter(toy_data.batches(config.seed, t.batch_size, t.steps_per_call, d.length, d.num_codes, d.noise_std))
  state = loop.fit(
    config,
    str(tmp_path),
    init_variables=toy_task.init_fn(prior, config),
    loss_fn=toy_task.loss_fn(prior, config),
    data_iter=data,
  )
  params, valid, means = loop.eval_params(state, True), {}, {}
  zt = jax.random.normal(jax.random.PRNGKey(3), (256, d.length, 2))
  steps = jnp.asarray([1, prior.bridge.num_steps // 2, prior.bridge.num_steps])
  for dtype in ("float32", "bfloat16"):
    c = config.copy_and_resolve_references()
    c.model.dtype = dtype
    p = toy_task.build_prior(c)
    codes = np.asarray(jax.jit(p.sample, static_argnums=2)(params, jax.random.PRNGKey(5), (1_000, d.length, 2)))
    true_index, _ = toy_eval.match_codebook(np.asarray(p.codebook(params)), toy_data.centroids(d.num_codes))
    valid[dtype] = toy_eval.valid_rate(true_index[codes], d.num_codes)
    x0 = jax.jit(lambda z, s, p=p: p.x0_fn(params)(z, jnp.full((len(z),), s)))
    means[dtype] = np.stack([np.asarray(bridge_lib.posterior(p.bridge, x0(zt, s), zt, s)[0]) for s in steps])
  assert valid["float32"] > 0.95 and abs(valid["bfloat16"] - valid["float32"]) <= 0.02, valid
  gap = np.abs(means["bfloat16"] - means["float32"]).max()
  assert 0 < gap <= 0.05, gap  # bf16 is really used (not bit-equal), and close
