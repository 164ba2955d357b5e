"""Bridge prior on the frozen latents of configs/fashion_mnist_vqvae.py (CPU-sized U-Net, T = 1000).

  python -m dbvq_jax.main --config=configs/fashion_mnist_vqvae.py --workdir=runs/fmnist_vqvae
  python -m dbvq_jax.main --config=configs/fashion_mnist.py --workdir=runs/fmnist_prior
"""

import ml_collections

from configs import common
import numpy as np


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.experiment = "image_prior"
  c.seed = 0
  c.dataset = "fashion_mnist"  # checked against the VQ-VAE run's data.name
  c.vqvae_workdir = "runs/fmnist_vqvae"  # a trained VQ-VAE run on that dataset
  c.use_ema = True  # sample and evaluate with the EMA of the parameters
  c.validation_size = 2000  # the last N training maps, held out (not trained on) for choosing settings

  c.bridge = ml_collections.ConfigDict()
  c.bridge.num_steps = 1000  # T
  c.bridge.theta = 1.0
  c.bridge.eta = float(np.sqrt(2.0))  # sigma = 1, matching the normalised latents
  c.bridge.z_star = 0.0
  c.bridge.schedule = "ddpm_linear"  # constant | ddpm_linear | cosine | shifted_cosine
  c.bridge.delta = 0.0  # only for "constant"
  c.bridge.logsnr_shift = 0.0  # only for "shifted_cosine": added to the cosine log-SNR (< 0: noisier)

  c.model = ml_collections.ConfigDict()
  c.model.channels = 36  # 918k parameters, about the PixelCNN's 901k (configs/fashion_mnist_pixelcnn.py)
  c.model.channel_mult = (1, 2)
  c.model.num_res_blocks = 1
  c.model.attn_resolutions = (4,)
  c.model.dropout = 0.1

  c.prior = common.prior("bridge")
  c.prior.parameterization = "codes"  # codes | eps (the paper's; far slower to train here, see README)
  c.prior.loss = "simple"  # simple (cross-entropy, uniform t) | eq4 (the bound itself, likelihood.py; "codes" needs diffuse="codes")
  c.prior.data_std = 1.0  # latents are normalised to unit scale
  c.prior.cond_prob = 0.5  # fraction of examples trained with a conditioning mask (for inpainting)
  c.prior.diffuse = "codes"  # codes: diffuse the normalised embedding of each code (CDCD, Plaid) | z_e: the normalised z_e
  c.prior.self_condition = False  # the denoiser also sees its own z^0 estimate at the same t (two passes)
  c.prior.bayes_skip = True  # codes only: add the closed-form log q(z^t_i | e_k) to the network's logits
  c.prior.decoder_t = 1  # t0 of the decoder p(z_q | z^t0) that ends the chain (dbvq_jax/likelihood.py)
  c.prior.iwae_samples = 4  # likelihoods (dbvq_jax/likelihood.py): S paths of the IWAE estimate ...
  c.prior.nll_t_samples = 50  # ... strata of t in the bound (0: all T) ...
  c.prior.paper_mc_samples = 4  # ... and the paper's Monte Carlo estimate: S inpainted samples, tau
  c.prior.paper_mc_tau = 1.0

  c.training = common.training(3_000, batch_size=64, steps_per_call=1, log_every=250, checkpoint_every=1_000)
  c.optimizer = common.optimizer(1e-3, warmup_steps=200, end_lr_factor=0.1)

  c.sampling = ml_collections.ConfigDict()
  c.sampling.batch_size = 32
  c.sampling.variance = "posterior"  # posterior | beta (the ancestral chain)
  c.sampling.steps = 0  # 0: all steps (bridge: ancestral, VQ-Diffusion: all T, MaskGIT: num_iterations); else this many
  c.sampling.end = "decoder"  # decoder: draw the codes from p(z_q | z^t0) | nearest: nearest codes of z^0
  c.sampling.ddim_eta = 1.0  # strided: 1 = exact bridge posteriors, 0 = deterministic
  c.sampling.guidance = 1.0  # class-conditional priors: 0 unconditional, 1 conditional, > 1 guided
  c.evals = common.prior_evals(num_samples=256, mask_size=4)  # mask_size: 4 of 8 latents
  return c
