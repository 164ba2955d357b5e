"""The prior comparison (Tables 1-3, Figure 4) on Fashion-MNIST codes: every prior trained on the
latents of one VQ-VAE run, evaluated alike (see dbvq_jax/train/compare.py).

  python -m dbvq_jax.main --config=configs/fashion_mnist_compare.py --workdir=runs/fmnist_compare

benchmarks/compare_priors.py trains whatever is missing first.
"""

import ml_collections


def eval_section(num_kl: int, nll_examples: int, mask_size: int) -> ml_collections.ConfigDict:
  e = ml_collections.ConfigDict()
  e.num_kl = num_kl  # M test code maps and M samples for the per-position KL (the floor uses the next M)
  e.kl_alpha = 1.0  # add-alpha smoothing of the code histograms
  e.kl_bootstrap = 200  # resamples of the KL's bootstrap interval
  e.nll_examples = nll_examples  # test code maps scored by the likelihoods (whole map and masked centre)
  e.mask_size = mask_size  # side of the masked centred square
  e.estimators = ml_collections.ConfigDict({  # sample counts, applied to every prior with such a field
      "iwae_samples": 4,  # bridge: S forward paths of the IWAE estimate
      "nll_t_samples": 50,  # bridge: strata of t in the bound's diffusion term (0: all T)
      "paper_mc_samples": 4,  # bridge: S inpainted samples of the paper's Monte Carlo estimate ...
      "paper_mc_tau": 1.0,  # ... and its quantiser temperature on normalised latents
      "nll_m_samples": 16,  # maskgit: strata of the masking probability in MD4's bound
  })
  e.batch_size = 32  # sampling batch (and the batch of the s/sample timing)
  e.timing_repeats = 3
  e.bridge_steps = (1000, 250, 100, 50, 20)  # the strided sampler's quality-versus-steps sweep
  e.ddim_eta = 1.0
  e.classifier_workdir = ""  # a configs/*_classifier.py run: adds classifier_fd (not FID); "" skips it
  e.inception_weights = ""  # FID InceptionV3 weights converted by dbvq_jax.evaluate.inception: adds FID; "" skips it
  return e


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
  c.eval = eval_section(num_kl=1000, nll_examples=100, mask_size=4)
  c.eval.classifier_workdir = "runs/fmnist_classifier"
  return c
