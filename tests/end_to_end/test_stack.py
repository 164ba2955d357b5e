"""One command per experiment (configs/stack.py, dbvq_jax/train/stack.py): the stages' order and wiring, and
the whole Fashion-MNIST stack through the CLI on tiny files: trained once, skipped when run again, one latent
cache per VQ-VAE checkpoint, a changed VQ-VAE retraining its priors."""

import json
import os
import shlex
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from dbvq_jax import latents, priors
from dbvq_jax.train import stack

import helpers


def test_prior_all_runs_vqvae_classifier_priors_then_compare_wired_to_each_other(tmp_path):
  config = helpers.load_config("fashion_mnist:prior=all,tiny")
  config.data.dir = "/my/fmnist"
  stages = dict(stack.wired(config, str(tmp_path)))
  assert list(stages) == ["vqvae", "classifier", *priors.names(), "compare"]
  assert stages["vqvae"].data.dir == stages["classifier"].data.dir == "/my/fmnist"  # the stack's data section
  runs = {n: str(tmp_path / n) for n in priors.names()}
  for name in runs:
    assert stages[name].vqvae_workdir == str(tmp_path / "vqvae") and stages[name].dataset == "fashion_mnist"
  assert stages["compare"].priors.to_dict() == runs
  assert stages["compare"].evals.classifier_fd.path == str(tmp_path / "classifier")
  assert stages["compare"].vqvae_workdir == str(tmp_path / "vqvae")


def test_a_named_vqvae_run_replaces_the_vqvae_stage(tmp_path):
  config = helpers.load_config("miniimagenet:prior=maskgit")
  config.vqvae_workdir = "/runs/mini_vqvae"
  stages = dict(stack.wired(config, str(tmp_path)))
  assert list(stages) == ["maskgit"] and stages["maskgit"].vqvae_workdir == "/runs/mini_vqvae"
  assert config.needs_accelerator  # a paper-scale stage makes the stack paper scale


def test_named_vqvae_and_classifier_runs_replace_their_stages_in_the_comparison(tmp_path):
  """benchmarks/compare_priors.py --vqvae --classifier: the stack trains neither, and the comparison reads both."""
  config = helpers.load_config("fashion_mnist:prior=all,tiny")
  config.vqvae_workdir, config.classifier_workdir = "/runs/v", "/runs/c"
  stages = dict(stack.wired(config, str(tmp_path)))
  assert list(stages) == [*priors.names(), "compare"]
  assert stages["compare"].evals.classifier_fd.path == "/runs/c" and stages["compare"].vqvae_workdir == "/runs/v"


def _main(*args) -> subprocess.CompletedProcess:
  command = [sys.executable, "-m", "dbvq_jax.main", *args]
  return subprocess.run(command, cwd=helpers.ROOT, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def fmnist(tmp_path_factory):
  """docs/images.md's one-command Fashion-MNIST experiment as printed, with `tiny` and on tiny files:
  (workdir, the arguments, its log)."""
  [command] = [c for c in helpers.readme_commands() if "--config=configs/fashion_mnist.py " in c]
  root = tmp_path_factory.mktemp("stack")
  helpers.write_fashion_mnist(root / "data")
  args = shlex.split(command)[3:]  # after `python -m dbvq_jax.main`
  args = [a.replace(".py", ".py:tiny").replace("=runs/", f"={root}/") for a in args]
  args += [f"--config.data.dir={root / 'data'}", "--config.stages.bridge.evals.samples.log_steps=2"]  # TensorBoard
  out = _main(*args)
  assert out.returncode == 0, out.stderr[-3000:]
  return root / "fmnist", args, out.stderr


def test_one_command_trains_the_vqvae_then_the_prior_on_its_latents(fmnist):
  run, _, log = fmnist
  assert "stage 1/2 vqvae" in log and "stage 2/2 bridge" in log
  with open(run / "bridge" / "config.json") as f:
    assert json.load(f)["vqvae_workdir"] == str(run / "vqvae")
  with open(run / "stack.json") as f:
    record = json.load(f)
  assert record["vqvae"]["metrics"]["checkpoint_step"] == record["bridge"]["metrics"]["checkpoint_step"] == 4
  caches = [os.path.join(d, f) for d, _, names in os.walk(run) for f in names if f.endswith(".npz") and "latents" in d]
  assert caches == [str(run / "vqvae" / "latents" / "step_4.npz")]  # one cache, in the VQ-VAE's run


def test_tensorboard_reads_the_training_curves_and_sample_grids(fmnist):
  from tensorboard.backend.event_processing import event_accumulator

  run, _, _ = fmnist
  events = event_accumulator.EventAccumulator(str(run / "bridge" / "tb"), size_guidance={"images": 0})
  events.Reload()
  assert [e.step for e in events.Scalars("train/loss")] == [2, 4]
  assert [e.step for e in events.Images("eval/samples")] == [2, 4]
  image = events.Images("eval/samples")[0]
  assert image.width > 32 and image.height > 32 and image.encoded_image_string.startswith(b"\x89PNG")


def test_the_same_command_again_skips_every_finished_stage(fmnist):
  run, args, _ = fmnist
  before = {p: os.path.getmtime(run / p / "metrics.json") for p in ("vqvae", "bridge")}
  again = _main(*args)
  assert again.returncode == 0, again.stderr[-3000:]
  assert again.stderr.count("done, skipped") == 2 and "training steps" not in again.stderr
  assert before == {p: os.path.getmtime(run / p / "metrics.json") for p in ("vqvae", "bridge")}
  longer = _main(*args, "--config.stages.bridge.training.num_steps=6")  # a changed stage runs again, resuming
  assert longer.returncode == 0, longer.stderr[-3000:]
  assert "stage 1/2 vqvae: done, skipped" in longer.stderr and "resumed from step 4" in longer.stderr


def test_a_vqvae_trained_on_retrains_its_priors_and_the_old_prior_is_refused(fmnist):
  """After the VQ-VAE trains on (4 -> 8 steps), the same command trains the prior again on the new latents and
  keeps the old one aside; scoring the old prior on the new VQ-VAE is refused in one line that names the
  change, its files and its latent cache untouched."""
  run, args, _ = fmnist
  more = _main(*args, "--config.stages.vqvae.training.num_steps=8")
  assert more.returncode == 0, more.stderr[-3000:]
  assert "bridge: done, skipped" not in more.stderr and "trains afresh" in more.stderr
  [stale] = [run / d for d in os.listdir(run) if d.startswith("bridge.stale-")]
  with open(run / "bridge" / "provenance.json") as f:
    assert json.load(f)["vqvae_step"] == 8
  before = {p: p.read_bytes() for p in stale.rglob("*") if p.is_file()}
  out = _main(
    "--config=configs/prior.py:tiny", f"--workdir={stale}", f"--config.vqvae_workdir={run / 'vqvae'}", "--mode=eval"
  )
  errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
  assert out.returncode != 0 and len(errors) == 1 and "vqvae_step 4 -> 8" in errors[0], out.stderr[-3000:]
  assert before == {p: p.read_bytes() for p in stale.rglob("*") if p.is_file()}
  assert (run / "vqvae" / "latents" / "step_4.npz").exists()


def test_an_image_folder_of_an_unlisted_size_runs_the_whole_stack(tmp_path):
  """docs/data.md's whole experiment on 48x48 RGB images in 5 class folders (tiny, two priors for the CI's time):
  named only by the variants image_size and channels, the VQ-VAE's code maps are 12x12, every size that depends
  on them follows (the masked square 5 of 12, the U-Net's attention), and the priors train and are compared."""
  rng = np.random.default_rng(0)
  for split, n in (("train", 8), ("test", 4)):
    for c in range(5):
      for i in range(n):
        image = np.clip(rng.normal(40 * c + 40, 30, (48, 48, 3)), 0, 255).astype(np.uint8)
        path = tmp_path / "images" / split / f"class_{c}" / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path)
  bridge = helpers.load_config("prior:image_size=48,channels=3,tiny")
  assert bridge.model.attn_resolutions == (6,)  # the U-Net's levels 12 and 6, attention below the top one
  assert bridge.evals.inpaint.mask_size == helpers.load_config("compare:image_size=48,tiny").evals.nll.mask_size == 5
  [command] = [c for c in helpers.readme_commands() if "--config=configs/stack.py:image_size=48" in c]
  args = [a.replace("prior=all", "prior=maskgit+pixelcnn,tiny") for a in shlex.split(command)[3:]]
  args = [a.replace("=runs/", f"={tmp_path}/").replace("=data/my_images", f"={tmp_path}/images") for a in args]
  out = _main(*args)
  assert out.returncode == 0, out.stderr[-3000:]
  model = latents.load_vqvae(str(tmp_path / "mine" / "vqvae"))
  assert model.config.data.image_size == 48 and model.config.data.channels == 3
  assert latents.test_latents(model, latents.training_latents(model, 4), 4, 4)["codes"].shape == (4, 12, 12)
  table = (tmp_path / "mine" / "compare" / "eval" / "results.md").read_text()
  assert "| maskgit |" in table and "| pixelcnn |" in table and "| data (floor) |" in table
