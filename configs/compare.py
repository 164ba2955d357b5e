"""The prior comparison (the paper's Tables 1-3, Figure 4): every prior trained on the latents of one VQ-VAE
run, evaluated alike (dbvq_jax/train/compare.py). benchmarks/compare_priors.py trains whatever is missing first.

  python -m dbvq_jax.main --config=configs/compare.py --workdir=runs/fmnist_compare

Variants: data=fashion_mnist (100 test maps scored) | cifar10 | miniimagenet (the paper's sizes: 1,000 maps,
a 4x4 or 9x9 masked centre); image_size, channels (configs/common.py); tiny.
"""

import ml_collections

from configs import common
from configs import prior as prior_config
from dbvq_jax import priors


def evals(num_kl: int, nll_examples: int, mask_size: int) -> ml_collections.ConfigDict:
  """The comparison's evaluators (dbvq_jax/evaluate/evaluators.py), run alike on every prior."""
  e = ml_collections.ConfigDict()
  e.nll = common.entry(
    "nll",
    num_examples=nll_examples,
    mask_size=mask_size,
    image_elbo=True,  # the image model's negative ELBO in bits/dim (evaluate/elbo.py) ...
    elbo_fit_examples=1_000,  # ... its decoder scale fitted by maximum likelihood on this many training images
    estimators=common.estimators(),  # sample counts, each applied to the priors that have it
  )
  e.samples = common.entry("samples", num=num_kl)  # s/sample at the comparison's batch_size
  e.kl = common.entry("code_kl", num=num_kl, alpha=1.0, bootstrap=200)  # M test maps, M samples; floor: the next M
  e.classifier_fd = common.entry("frechet", features="classifier", path="", num=num_kl)  # path: a classifier run
  e.fid = common.entry("frechet", features="inception", path="", num=num_kl)  # path: converted InceptionV3 weights
  e.steps = common.entry(
    "step_sweep", fractions=(0.25, 0.1, 0.05, 0.02), num=num_kl, alpha=1.0, bootstrap=200
  )  # quality against steps, for priors with a choice of steps
  e.inpaint = common.entry("inpaint", num_images=4, samples_per_image=4, mask_size=mask_size)
  return e


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  v = common.parse(arg, **common.DATA_VARIANTS)
  small = common.small(v.data)
  runs = prior_config.RUNS[v.data]
  c = ml_collections.ConfigDict()
  c.experiment = "compare"
  c.seed = 0
  c.vqvae_workdir = f"{runs}_vqvae"
  c.priors = ml_collections.ConfigDict(  # name -> a configs/prior.py run on vqvae_workdir, one per built-in prior
    {name: f"{runs}_prior" if name == "bridge" else f"{runs}_{name}" for name in priors.names()}
  )
  c.batch_size = 32  # sampling batch (and the batch of the s/sample timing)
  c.max_sample_steps = 100 if small else 0  # samplers with a choice of steps take at most this many (0: as trained)
  c.needs_accelerator = not small and not v.tiny  # paper-scale priors: main refuses a CPU
  c.evals = evals(
    num_kl=1_000, nll_examples=100 if small else 1_000, mask_size=common.mask_size(prior_config.latent_side(v))
  )
  c.evals.classifier_fd.path = f"{runs}_classifier" if small else ""
  if small:  # the bridge's sweep below its 100 steps: 50 and 20 (the paper's sizes sweep 250 to 20)
    c.evals.steps.fractions = (0.05, 0.02)
  if v.tiny:
    c.batch_size = 4
    c.evals.nll.update({"num_examples": 4, "batch_size": 4, "elbo_fit_examples": 8})
    c.evals.nll.estimators.update({"iwae_samples": 2, "nll_t_samples": 4, "nll_m_samples": 2})  # paper_mc: off
    c.evals.samples.num = 8
    c.evals.kl.update({"num": 8, "bootstrap": 10})
    c.evals.classifier_fd.num = c.evals.fid.num = 8
    c.evals.steps.update({"num": 8, "bootstrap": 10, "fractions": (0.2,)})
  return c
