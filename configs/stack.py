"""A whole experiment in one command: the VQ-VAE, then its prior(s), then (prior=all) the comparison, each stage
trained in a sub-folder of WORKDIR, resumable, and skipped when done (dbvq_jax/train/stack.py).

  python -m dbvq_jax.main --config=configs/fashion_mnist.py --workdir=runs/fmnist
  python -m dbvq_jax.main --config=configs/stack.py:data=cifar10,prior=all --workdir=runs/cifar10

configs/fashion_mnist.py, cifar10.py and miniimagenet.py are this file with their dataset. The stack's `data`
section is the one the stages read (--config.data.dir=DIR); every stage's own settings stay reachable as
--config.stages.<stage>.<key>=VALUE. With --config.vqvae_workdir=DIR, that trained VQ-VAE is used instead (and
with --config.classifier_workdir=DIR, that trained classifier).

Variants: data=fashion_mnist | cifar10 | miniimagenet; prior=bridge | pixelcnn | vq_diffusion | maskgit | all (the
built-in priors) | the module path of a prior of your own, or several joined by '+' (prior=all+my_pkg.my_prior):
with more than one, a classifier for the Fréchet distance and the comparison of them all; image_size, channels
(configs/common.py: images of your own, every size derived from them); tiny.
"""

import ml_collections

from configs import classifier, common, compare, prior, vqvae
from dbvq_jax import priors


def prior_types(chosen: str) -> list[str]:
  """The prior types of the `prior` variant: '+'-joined types, where 'all' stands for every built-in prior."""
  return [kind for part in chosen.split("+") for kind in (priors.names() if part == "all" else (part,))]


def stage_name(kind: str) -> str:
  """The stage (and sub-folder) of prior type `kind`: its last dotted part (my_pkg.my_prior -> my_prior)."""
  return kind.rsplit(".", 1)[-1]


def stages(v: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The stage configs of the variants `v` by name (run in the order vqvae, classifier, priors, compare; see
  train/stack.py); a prior's stage is named by the last part of its type."""
  data = common.data_arg(v) + (",tiny" if v.tiny else "")
  s = ml_collections.ConfigDict()
  s.vqvae = vqvae.get_config(data)
  kinds = prior_types(v.prior)
  for kind in kinds:
    s[stage_name(kind)] = prior.get_config(f"prior={kind},{data}")
  if len(kinds) > 1:
    s.classifier = classifier.get_config(data)
    s.compare = compare.get_config(data)
  return s


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  v = common.parse(arg, prior="bridge", **common.DATA_VARIANTS)
  c = ml_collections.ConfigDict()
  c.experiment = "stack"
  c.data = common.image_data(v)  # given to every stage that reads images
  c.vqvae_workdir = ""  # a trained VQ-VAE run to build on; empty: train one in WORKDIR/vqvae
  c.classifier_workdir = ""  # a trained feature classifier for the comparison; empty: train one (several priors)
  c.stages = stages(v)
  c.needs_accelerator = any(stage.get("needs_accelerator", False) for stage in c.stages.values())
  return c
