"""VQ-VAE, the four priors, the classifier and the comparison on tiny Fashion-MNIST-format files,
run as a user runs them: `benchmarks/compare_priors.py --smoke` (each stage `python -m dbvq_jax.main`)."""

import json
import os
import shlex
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from configs import common
from dbvq_jax import latents, priors, train
from dbvq_jax.core import loop

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
  """End to end from the stack's code-embedding bridge; a start prior that diffuses something else is refused."""
  root = runs
  config = helpers.load_config("e2e:tiny")  # diffuse=z_e, Algorithm 1's
  config.vqvae_workdir = str(root / "vqvae")
  config.prior_workdir = str(root / "bridge")
  with pytest.raises(ValueError, match="different config.prior"):
    train.run(config, str(root / "e2e"), "train")
  config.prior.diffuse, config.evals.fd.path = "codes", str(root / "classifier")
  estimators = dict(common.estimators(), nll_t_samples=2)
  config.evals.nll = common.entry(  # the image bound of the end-to-end model (its decoder scale fitted anew)
    "nll", num_examples=2, mask_size=0, batch_size=2, image_elbo=True, elbo_fit_examples=4, estimators=estimators
  )
  metrics = train.run(config, str(root / "e2e"), "train")
  for model in (metrics, metrics["before"]):  # the end-to-end model and the two-stage one it started from
    elbo = model["nll"]["image_elbo"]  # the prior's term, -log p(codes) >= 0, adds to the decoder's bits
    assert elbo["bound"]["bits_per_dim"] > elbo["decoder"]["bits_per_dim"] > 0 and elbo["bound"]["kind"] == "bound"
  assert set(metrics["after"]) == {"psnr", "perplexity", "latent_scale", "codebook_shift"}
  assert metrics["after"]["codebook_shift"] > 0  # 4 steps of the codebook's own learning rate moved it
  assert {"psnr", "perplexity", "latent_scale", "fd", "nll", "kl"} <= set(metrics["before"])  # with evals entries
  assert 0.5 < metrics["before"]["latent_scale"] < 2.0
  fds = (metrics["floor"]["fd"], metrics["before"]["fd"], metrics["fd"])
  assert all(v["distance"] >= 0 and v["features"] == "classifier" for v in fds)
  with np.load(root / "e2e" / "samples" / "codes.npz") as f:
    assert f["codes"].shape == (8, 8, 8)  # the most any evaluator drew: the FD's 8
  assert os.path.getsize(root / "e2e" / "figures" / "samples.png") > 500


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
  """The docs' training-curve commands, shrunk to the tiny configs: one budget each, rows with every metric and
  the floors; a rerun of the first skips the row it has."""
  commands = [c for c in helpers.readme_commands() if c.startswith("python benchmarks/curves.py")]
  assert len(commands) == 2
  for i, command in enumerate(commands):
    out_file = tmp_path / f"curve{i}.json"
    args = [sys.executable if a == "python" else a for a in shlex.split(command)] + [
      "--smoke",
      "--minutes=0.01",
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
    rows = []
    for _ in range(2 - i):
      out = subprocess.run(args, cwd=helpers.ROOT, capture_output=True, text=True, timeout=600)
      assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
      rows.append(json.loads(out_file.read_text())["rows"])
    curve = json.loads(out_file.read_text())
    assert [r["minutes"] for r in curve["rows"]] == [0.01] and curve["steps_per_second"] > 0
    assert all(r == rows[0] for r in rows)  # the rerun kept the row it had and scored nothing again
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
