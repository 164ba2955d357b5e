"""The prior comparison (Tables 1-3, Figure 4) on Fashion-MNIST codes: every prior trained on the
latents of one VQ-VAE run, evaluated alike (see dbvq_jax/train/compare.py).

  python -m dbvq_jax.main --config=configs/fashion_mnist_compare.py --workdir=runs/fmnist_compare

benchmarks/compare_priors.py trains whatever is missing first.
"""

import ml_collections


def evals(num_kl: int, nll_examples: int, mask_size: int) -> ml_collections.ConfigDict:
  """The comparison's evaluators (dbvq_jax/evaluate/evaluators.py), run alike on every prior."""
  e = ml_collections.ConfigDict()
  e.nll = {"type": "nll", "num_examples": nll_examples, "mask_size": mask_size, "estimators": {
      "iwae_samples": 4,  # bridge: S forward paths of the IWAE estimate
      "nll_t_samples": 50,  # bridge: strata of t in the bound's diffusion term (0: all T)
      "paper_mc_samples": 4,  # bridge: S inpainted samples of the paper's Monte Carlo estimate ...
      "paper_mc_tau": 1.0,  # ... and its quantiser temperature on normalised latents
      "nll_m_samples": 16,  # maskgit: strata of the masking probability in MD4's bound
  }}  # sample counts, applied to every prior with such a field
  e.samples = {"type": "samples", "num": num_kl, "timing_repeats": 3}  # s/sample at the comparison's batch_size
  e.kl = {"type": "code_kl", "num": num_kl, "alpha": 1.0, "bootstrap": 200}  # M test maps and M samples; floor: the next M
  e.classifier_fd = {"type": "frechet", "features": "classifier", "path": "", "num": num_kl}  # path: a classifier run
  e.fid = {"type": "frechet", "features": "inception", "path": "", "num": num_kl}  # path: converted InceptionV3 weights
  e.steps = {"type": "step_sweep", "fractions": (0.25, 0.1, 0.05, 0.02), "num": num_kl, "alpha": 1.0,
             "bootstrap": 200}  # quality against steps, for priors with a choice of steps
  e.inpaint = {"type": "inpaint", "num_images": 4, "samples_per_image": 4, "mask_size": mask_size}
  return ml_collections.ConfigDict(e)


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.experiment = "compare"
  c.seed = 0
  c.vqvae_workdir = "runs/fmnist_vqvae"
  c.priors = ml_collections.ConfigDict({
      "bridge": "runs/fmnist_prior",
      "pixelcnn": "runs/fmnist_pixelcnn",
      "vq_diffusion": "runs/fmnist_vq_diffusion",
      "maskgit": "runs/fmnist_maskgit",
  })
  c.batch_size = 32  # sampling batch (and the batch of the s/sample timing)
  c.evals = evals(num_kl=1000, nll_examples=100, mask_size=4)
  c.evals.classifier_fd.path = "runs/fmnist_classifier"
  return c
