"""Training curves: one prior trained on the codes of a VQ-VAE run in segments, each ending at a budget of
training wall-clock, and scored on the test split after each segment; the rows go to a JSON file that grows as
the run goes (keep it in the repository), so a killed run resumes where it stopped.

  python benchmarks/curves.py --prior=pixelcnn --minutes=15,30,60,90,120 --out=docs/curves/pixelcnn.json
  python benchmarks/curves.py --prior=bridge --name=bridge_ct --out=docs/curves/bridge_ct.json \\
      --set=bridge.time=continuous --set=prior.loss=eq4

Each row: the budget, the steps it bought, the training seconds the run actually took, and the test metrics:
every likelihood of the prior by kind (nats per position, whole map), the per-position KL and the classifier
Fréchet distance, each beside its floor (held-out data against other held-out data, computed once). After each
row the script redraws curves.png beside the JSON from every curve there. --smoke trains the config's `tiny`
variant (a check of the pipeline; its numbers mean nothing).

Wall-clock. The budget converts to steps at the prior's steps per second measured alone on this machine (a
PROBE_STEPS probe, as benchmarks/compare_priors.py does), so the time axis does not depend on what else shared
the cores during a run of hours; `train_seconds` in each row is what the run took, shared or not. The learning
rate stays constant after warm-up (optimizer.end_lr_factor = 1), so extending a run does not change its past.
"""

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
import compare_priors  # noqa: E402
import jax  # noqa: E402

from configs import compare as compare_config  # noqa: E402
from dbvq_jax import latents  # noqa: E402
from dbvq_jax.core import loop  # noqa: E402
from dbvq_jax.evaluate import base as evaluation  # noqa: E402
from dbvq_jax.evaluate import evaluators  # noqa: E402
from dbvq_jax.priors import trained as trained_priors  # noqa: E402


def train_to(args, workdir: str, steps: int) -> None:
  """Trains the prior in WORKDIR (resuming) to `steps`, with a cheap end-of-run evaluation."""
  flags = [
    f"--config.vqvae_workdir={args.vqvae}",
    f"--config.training.num_steps={steps}",
    f"--config.training.checkpoint_every={args.checkpoint_every}",
    "--config.optimizer.end_lr_factor=1.0",
    *([] if args.smoke else compare_priors.CHEAP_EVAL),  # the tiny variant's evaluation is cheap already
    *(f"--config.{s}" for s in args.set),
  ]
  cmd = compare_priors.main_command(compare_priors.prior_config(args.prior), workdir, flags, args.smoke)
  print(" ".join(cmd), flush=True)
  subprocess.run(cmd, cwd=REPO, check=True)


def probe_rate(args) -> float:
  """Steps per second of the prior alone on this machine, after compilation (a PROBE_STEPS run)."""
  probe = os.path.join(args.root, "probes", args.name)
  if not os.path.exists(os.path.join(probe, "train_time.json")):
    train_to(args, probe, 4 if args.smoke else compare_priors.PROBE_STEPS)
  return loop.steps_per_second(probe)


def curve_evals(args):
  """The evaluators of a curve point: likelihoods of the whole map, KL and classifier FD of `num` samples."""
  e = compare_config.evals(num_kl=args.num, nll_examples=args.nll_examples, mask_size=4)
  e.nll.estimators.update({"iwae_samples": args.iwae_samples, "paper_mc_samples": 0, "nll_t_samples": args.nll_s})
  e.nll.mask_size = 0  # the whole map only
  e.classifier_fd.path = args.classifier
  for name in ("samples", "fid", "steps", "inpaint"):
    del e[name]
  return e


def score(args, workdir: str, cache: dict, model) -> tuple[dict, dict]:
  """(the test metrics of WORKDIR's latest checkpoint, the floors)."""
  trained = trained_priors.load_prior(workdir, model, cache["training"])
  if args.sample_steps and trained.config.prior.type == "bridge":  # the baselines sample as they are configured
    trained = dataclasses.replace(trained, prior=trained.prior.with_sample_steps(args.sample_steps))
  ctx = evaluators.PriorContext(trained.prior, model, trained.stats, 32, cache)
  built = evaluation.build(curve_evals(args), ctx)
  record, _, _ = evaluation.evaluate_all(built, trained.params, jax.random.PRNGKey(0))
  return record, evaluation.floors(built)


def plot(directory: str) -> str:
  """DIRECTORY/curves.png from every curve JSON there: test NLL by estimator (kind), KL and classifier FD beside
  their floors, against training wall-clock (top) and steps (bottom)."""
  from matplotlib.figure import Figure

  curves = {}
  for name in sorted(os.listdir(directory)):
    if name.endswith(".json"):
      with open(os.path.join(directory, name)) as f:
        curves[name.removesuffix(".json")] = json.load(f)
  fig = Figure(figsize=(13, 7), layout="constrained")
  axes = fig.subplots(2, 3)
  for row, x_key, x_label in ((0, "minutes", "training minutes (probed steps/s alone)"), (1, "steps", "steps")):
    for name, curve in curves.items():
      rows = curve["rows"]
      x = [r[x_key] for r in rows]
      for est in rows[-1]["nll"]["unconditional"] if rows else ():
        nll = [r["nll"]["unconditional"][est] for r in rows]
        label = f"{name}: {est} ({nll[-1]['kind']}, ± 1 s.e.)"
        axes[row, 0].errorbar(x, [n["nats"] for n in nll], [n["se"] for n in nll], fmt="o-", capsize=3, label=label)
      kl = [r["kl"] for r in rows]
      axes[row, 1].errorbar(
        x,
        [k["mean"] for k in kl],
        [[k["mean"] - k["lo"] for k in kl], [k["hi"] - k["mean"] for k in kl]],
        fmt="o-",
        capsize=3,
        label=f"{name} (95% interval)",
      )
      axes[row, 2].plot(x, [r["classifier_fd"]["distance"] for r in rows], "o-", label=name)
    for col, (metric, title) in enumerate(
      (("nll", "test NLL, nats per position"), ("kl", "per-position KL"), ("classifier_fd", "classifier FD (not FID)"))
    ):
      ax = axes[row, col]
      floors = [c["floor"] for c in curves.values() if "floor" in c]
      if col and floors:
        value = floors[0][metric]["mean" if metric == "kl" else "distance"]
        ax.axhline(value, color="k", ls="--", label="floor (data against data)")
      ax.set(title=title, xlabel=x_label)
      ax.xaxis.set_major_formatter(lambda v, _, k=x_key: f"{v / 1000:g}k" if k == "steps" else f"{v:g}")
      ax.legend(fontsize=7)
  machines = sorted({f"{c['device']}, {c['cores']} cores" for c in curves.values()})
  fig.suptitle(f"test split of Fashion-MNIST codes; trained on {' and '.join(machines)}")
  path = os.path.join(directory, "curves.png")
  fig.savefig(path, dpi=90)
  return path


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument(
    "--prior", required=True, help="a prior type: a built-in name or a module path (configs/prior.py:prior=...)"
  )
  parser.add_argument("--name", default="", help="the run's name (default: the prior)")
  parser.add_argument("--minutes", default="15,30,60,90,120", help="budgets of training wall-clock")
  parser.add_argument("--out", required=True, help="the JSON file of the curve (rows are appended)")
  parser.add_argument("--root", default="runs/curves")
  parser.add_argument("--vqvae", default="runs/fmnist_vqvae")
  parser.add_argument("--classifier", default="runs/fmnist_classifier")
  parser.add_argument("--set", action="append", default=[], help="a config override KEY=VALUE (repeatable)")
  parser.add_argument("--checkpoint_every", type=int, default=500)
  parser.add_argument("--num", type=int, default=1000, help="samples (and test maps) of the KL and the FD")
  parser.add_argument("--nll_examples", type=int, default=200, help="test maps of the likelihoods")
  parser.add_argument("--nll_s", type=int, default=50, help="bridge: strata of t (or s) in the bound")
  parser.add_argument("--iwae_samples", type=int, default=0, help="bridge: IWAE paths (0: none)")
  parser.add_argument("--sample_steps", type=int, default=100, help="bridge: sampler steps of the KL and FD")
  parser.add_argument("--smoke", action="store_true", help="the config's tiny variant: check the pipeline only")
  args = parser.parse_args()
  args.name = args.name or args.prior
  args.root, args.vqvae, args.classifier = map(os.path.abspath, (args.root, args.vqvae, args.classifier))
  curve = json.load(open(args.out)) if os.path.exists(args.out) else {"rows": []}
  curve.update(
    {"prior": args.prior, "overrides": args.set, "cores": os.cpu_count(), "device": jax.devices()[0].device_kind}
  )
  curve.setdefault("steps_per_second", probe_rate(args))
  workdir = os.path.join(args.root, args.name)
  model = latents.load_vqvae(args.vqvae)
  cache = {"training": latents.training_latents(model, 32)}
  done = {row["minutes"] for row in curve["rows"]}
  for minutes in (float(m) for m in args.minutes.split(",")):
    if minutes in done:
      continue
    steps = max(1, round(minutes * 60 * curve["steps_per_second"]))
    train_to(args, workdir, steps)
    t0 = time.perf_counter()
    record, floor = score(args, workdir, cache, model)
    curve.setdefault("floor", floor)
    about = {"minutes": minutes, "steps": steps, "train_seconds": loop.train_seconds(workdir)}
    row = evaluation.with_results(about, record)
    row["eval_seconds"] = time.perf_counter() - t0
    curve["rows"].append(row)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
      json.dump(curve, f, indent=1)
    print(json.dumps(evaluation.scalars(row)), flush=True)
    print("drew", plot(os.path.dirname(os.path.abspath(args.out))), flush=True)


if __name__ == "__main__":
  main()
