"""The bridge prior's training options, each measured on the validation maps (the last
config.validation_size training maps, which the priors do not train on), never on the test split.

  python benchmarks/bridge_ablation.py --workdirs=runs/ablation/base,runs/ablation/codes_skip [--steps=100]
      [--num_kl=1000] [--examples=200] [--mask_size=4] [--decoder_ts=1]

For each trained bridge run: the variational bound (nats per position, whole map and a masked centre,
likelihood.py with 50 strata of t) on `examples` validation maps, and the per-position KL of num_kl
samples (strided sampler with `steps` steps, ending with the decoder) against num_kl validation maps,
beside the floor (the next num_kl validation maps against the first); one row per decoder time t0 in
--decoder_ts (the same network ending its chain at t0: a model choice made on validation maps).
Prints a markdown table.
"""

import argparse
import os
import sys

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import prior as prior_config  # noqa: E402
from dbvq_jax import latents  # noqa: E402
from dbvq_jax import masks as inpaint_masks  # noqa: E402
from dbvq_jax.core import checkpoint, loop  # noqa: E402
from dbvq_jax.evaluate import base as evaluation  # noqa: E402
from dbvq_jax.evaluate import codes as code_metrics  # noqa: E402
from dbvq_jax.evaluate import evaluators  # noqa: E402
from dbvq_jax.priors import trained as trained_priors  # noqa: E402


def _changes(config, base) -> str:
  """The config fields (prior, bridge, training) where a run differs from configs/prior.py."""
  out = []
  for section in ("prior", "bridge", "training"):
    for k, v in config[section].items():
      if base[section].get(k) != v and not isinstance(v, dict):
        out.append(f"{section}.{k}={v}")
  return ", ".join(out) or "defaults"


def load_run(workdir: str, args, model) -> dict:
  """A trained bridge run, loaded once: its config, prior, parameters and validation maps."""
  trained = trained_priors.load_prior(workdir, model)
  val = latents.split_validation(trained.stats, trained.config.validation_size)[1]
  if len(val["codes"]) < 2 * args.num_kl:
    raise SystemExit(f"{workdir}: {len(val['codes'])} validation maps; --num_kl needs twice as many")
  prior = trained.prior.with_estimators(nll_t_samples=50, iwae_samples=0, paper_mc_samples=0)
  prior = prior.with_sample_steps(args.steps)
  return {"workdir": workdir, "trained": trained.config, "prior": prior, "params": trained.params, "val": val}


def evaluate(run: dict, args, num_codes: int, decoder_t: int) -> dict:
  """Bounds and KL (with the floor) on the validation maps of a loaded run ending its chain at decoder_t."""
  prior, params, val = run["prior"].with_decoder_t(decoder_t), run["params"], run["val"]
  maps = {"codes": val["codes"][: args.examples], "z0": val["z0"][: args.examples]}
  mask = np.broadcast_to(inpaint_masks.centred_square(maps["codes"].shape[1], args.mask_size), maps["codes"].shape)
  nll = jax.jit(lambda p, k, b, m: prior.nll(p, k, b, m))
  bound = {
    name: evaluation.likelihoods(nll, prior.NLL_KINDS, params, jax.random.PRNGKey(0), maps, m, 100)["bound"]
    for name, m in (("whole", None), ("masked", mask))
  }
  sample = jax.jit(lambda p, k: prior.sample(p, k, (100,) + val["z0"].shape[1:]))
  codes = evaluation.draw(sample, params, jax.random.PRNGKey(1), args.num_kl, 100)
  data = val["codes"][: args.num_kl]
  kl = code_metrics.mean_kl_interval(data, codes, num_codes, 1.0, np.random.default_rng(0))
  floor = code_metrics.mean_kl_interval(
    data, val["codes"][args.num_kl : 2 * args.num_kl], num_codes, 1.0, np.random.default_rng(0)
  )
  return {"bound": bound, "kl": kl, "floor": floor}


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--workdirs", required=True, help="comma-separated bridge prior runs on one VQ-VAE")
  parser.add_argument("--steps", type=int, default=100)
  parser.add_argument("--num_kl", type=int, default=1000)
  parser.add_argument("--examples", type=int, default=200)
  parser.add_argument("--mask_size", type=int, default=4)
  parser.add_argument("--decoder_ts", default="1", help="comma-separated decoder times t0 to evaluate each run at")
  args = parser.parse_args()
  workdirs = args.workdirs.split(",")
  model = latents.load_vqvae(checkpoint.run_config(workdirs[0], "image_prior").vqvae_workdir)
  base = prior_config.get_config()
  fmt = lambda v: f"{v['nats']:.3f} ± {v['se']:.3f}"  # noqa: E731
  head = [
    "run",
    "t0",
    "changes",
    "train s",
    "bound, whole map (nats/pos)",
    "bound, masked centre",
    f"KL ({args.steps} steps) [95%]",
    "floor [95%]",
  ]
  print("| " + " | ".join(head) + " |\n|" + "---|" * len(head), flush=True)
  for w in workdirs:
    run = load_run(w, args, model)
    for t0 in (int(v) for v in args.decoder_ts.split(",")):
      r = evaluate(run, args, model.codebook.shape[0], t0)
      cells = [
        os.path.basename(w),
        t0,
        _changes(run["trained"], base),
        f"{loop.train_seconds(w):.0f}",
        fmt(r["bound"]["whole"]),
        fmt(r["bound"]["masked"]),
        evaluators.interval(r["kl"]),
        evaluators.interval(r["floor"]),
      ]
      print(
        "| " + " | ".join(map(str, cells)) + " |",
        flush=True,
      )


if __name__ == "__main__":
  main()
