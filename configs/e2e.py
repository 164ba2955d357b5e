"""End-to-end training (Algorithm 1): encoder, decoder, codebook and bridge prior together, from a VQ-VAE run
(configs/vqvae.py) and optionally from a bridge prior trained on its z_e (configs/prior.py with
--config.prior.diffuse=z_e) or, with --config.prior.diffuse=codes, on its code embeddings (configs/prior.py).

  python -m dbvq_jax.main --config=configs/e2e.py --workdir=runs/fmnist_e2e
  python -m dbvq_jax.main --config=configs/e2e.py --workdir=runs/fmnist_e2e_codes --config.prior.diffuse=codes \
    --config.prior_workdir=runs/fmnist_prior

Variants: data=fashion_mnist | cifar10 | miniimagenet (the bridge of configs/prior.py for that data);
image_size, channels (configs/common.py); tiny.
"""

import ml_collections

from configs import common, prior


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  v = common.parse(arg, **common.DATA_VARIANTS)
  c = prior.get_config(f"prior=bridge,{common.data_arg(v)}" + (",tiny" if v.tiny else ""))
  small = common.small(v.data)
  c.experiment = "image_e2e"
  c.prior_workdir = f"{prior.RUNS[v.data]}_prior_ze" if small else ""  # start the denoiser from this run ("": scratch)
  c.prior.diffuse = "z_e"  # z_e: Algorithm 1 | codes: the drawn code's embedding; a prior_workdir run must match
  c.eval_images = 2_000 if small else 10_000  # test images for the before/after reconstruction metrics
  if small:
    c.sampling.steps = 100  # the strided sampler for every evaluation (1,000 steps take ~10x longer)
    c.training.num_steps = 1_000
    c.optimizer.learning_rate = 2e-4
  # The classifier Fréchet distance (not FID) of `num` samples against as many test images, before and after,
  # with its floor; path: a configs/classifier.py run ("" skips it).
  c.evals.fd = common.entry(
    "frechet", features="classifier", path="runs/fmnist_classifier" if small else "", num=1_000, reference="images"
  )
  c.quantize = ml_collections.ConfigDict()
  c.quantize.learn_codebook = True  # the codebook is a parameter of the prior (dbvq_jax/priors/bridge.py build)
  c.quantize.tau = 0.1  # q_phi(z_q | z_e) temperature on normalised latents (App. C uses 1)
  c.quantize.tau_0 = 0.01  # tau_t at t = 0 ...
  c.quantize.tau_T = 1.0  # ... and t = T
  c.quantize.reg_weight = 1.0 / prior.latent_side(v) ** 2  # KL summed over positions, per position
  c.quantize.reg_form = "kl"  # kl | surrogate
  c.quantize.rec_weight = 10.0  # on the per-pixel MSE
  c.quantize.scale_weight = 100.0  # latent-scale guard: scale_weight * (log std(z))^2
  # True: the prior's loss reaches the encoder (Algorithm 1); False: it stops there (stop_gradient), which keeps the
  # samples from degrading (docs/images.md, "Why end to end degrades")
  c.quantize.prior_to_encoder = False
  if v.tiny:
    common.tiny_training(c)  # again, after the schedule above
    c.prior_workdir, c.eval_images, c.sampling.steps = "", 16, 0
    c.evals.fd.update({"path": "", "num": 8})
  return c
