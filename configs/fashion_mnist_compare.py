"""The prior comparison (Tables 1-3, Figure 4) on Fashion-MNIST codes: every prior trained on the
latents of one VQ-VAE run, evaluated alike (see dbvq_jax/train/compare.py).

  python -m dbvq_jax.main --config=configs/fashion_mnist_compare.py --workdir=runs/fmnist_compare

benchmarks/compare_priors.py trains whatever is missing first.
"""

import ml_collections


def eval_section(num_kl: int, nll_examples: int, mask_size: int) -> ml_collections.ConfigDict:
  e = ml_collections.ConfigDict()
  e.num_kl = num_kl  # M test code maps and M samples for the per-position KL
  e.kl_alpha = 1.0  # add-alpha smoothing of the code histograms
  e.nll_examples = nll_examples  # test code maps scored by the masked NLL
  e.mask_size = mask_size  # side of the masked centred square
  e.nll_samples = 4  # S, bridge only: inpainted samples per example in the Monte Carlo NLL
  e.nll_tau = 1.0  # bridge only: p(z_q | z_e^0) = softmax(-||z_e^0 - e_k||^2 / tau) on normalised latents
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
  c.eval = eval_section(num_kl=500, nll_examples=100, mask_size=4)
  c.eval.classifier_workdir = "runs/fmnist_classifier"
  return c
