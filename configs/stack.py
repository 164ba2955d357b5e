"""A whole experiment in one command: the VQ-VAE, then its prior(s), then (prior=all) the comparison, each stage
trained in a sub-folder of WORKDIR, resumable, and skipped when done (dbvq_jax/train/stack.py).

  python -m dbvq_jax.main --config=configs/fashion_mnist.py --workdir=runs/fmnist
  python -m dbvq_jax.main --config=configs/stack.py:data=cifar10,prior=all --workdir=runs/cifar10

configs/fashion_mnist.py, cifar10.py and miniimagenet.py are this file with their dataset. The stack's `data`
section is the one the stages read (--config.data.dir=DIR); every stage's own settings stay reachable as
--config.stages.<stage>.<key>=VALUE. With --config.vqvae_workdir=DIR, that trained VQ-VAE is used instead.

Variants: data=fashion_mnist | cifar10 | miniimagenet; prior=bridge | pixelcnn | vq_diffusion | maskgit | all
(the four priors, a classifier for the Fréchet distance, and the comparison); tiny.
"""

import ml_collections

from configs import classifier, common, compare, prior, vqvae

PRIORS = ("bridge", "pixelcnn", "vq_diffusion", "maskgit")


def stages(data: str, chosen: str, tiny: bool) -> ml_collections.ConfigDict:
  """The stage configs by name (run in the order vqvae, classifier, priors, compare; see train/stack.py)."""
  extra = ",tiny" if tiny else ""
  s = ml_collections.ConfigDict()
  s.vqvae = vqvae.get_config(f"data={data}{extra}")
  for name in PRIORS if chosen == "all" else (chosen,):
    s[name] = prior.get_config(f"prior={name},data={data}{extra}")
  if chosen == "all":
    s.classifier = classifier.get_config(f"data={data}{extra}")
    s.compare = compare.get_config(f"data={data}{extra}")
  return s


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  v = common.parse(arg, data="fashion_mnist", prior="bridge")
  if v.prior not in PRIORS + ("all",):
    raise ValueError(f"prior must be one of {PRIORS + ('all',)}, got {v.prior!r}")
  c = ml_collections.ConfigDict()
  c.experiment = "stack"
  c.data = common.image_data(v.data)  # given to every stage that reads images
  c.vqvae_workdir = ""  # a trained VQ-VAE run to build on; empty: train one in WORKDIR/vqvae
  c.stages = stages(v.data, v.prior, v.tiny)
  c.needs_accelerator = any(stage.get("needs_accelerator", False) for stage in c.stages.values())
  return c
