"""Runs the tiny toy training in a fresh process, for the multi-device and multi-process tests.

  python tests/experiments/parallel_worker.py train WORKDIR OUT.npz [COORDINATOR NUM_PROCESSES PROCESS_ID]
  python tests/experiments/parallel_worker.py load WORKDIR OUT.npz
  python tests/experiments/parallel_worker.py eval WORKDIR OUT.json [COORDINATOR NUM_PROCESSES PROCESS_ID]

`train` fits the tiny toy config and saves the final params; `load` restores WORKDIR's latest
checkpoint onto however many devices this process has and saves its params; `eval` runs the toy
experiment's evaluation of WORKDIR and saves its metrics with the files this process wrote in WORKDIR.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/, for helpers
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # the repository


def main(mode, workdir, out, *cluster):
  from dbvq_jax import parallel

  if cluster:
    parallel.initialize(cluster[0], int(cluster[1]), int(cluster[2]))
  import jax
  import numpy as np

  from dbvq_jax.core import loop
  from dbvq_jax.data import toy as toy_data
  from dbvq_jax.train import toy as toy_task

  import helpers

  config = helpers.load_config("toy:tiny")
  if mode == "eval":
    return evaluate(config, workdir, out)
  prior = toy_task.build_prior(config)
  init = toy_task.init_fn(prior, config)
  if mode == "train":
    d, t = config.data, config.training
    local = parallel.local_batch_size(t.batch_size)
    stream = iter(
      toy_data.batches(config.seed, local, t.steps_per_call, d.length, d.num_codes, d.noise_std, jax.process_index())
    )
    state = loop.fit(config, workdir, init_variables=init, loss_fn=toy_task.loss_fn(prior, config), data_iter=stream)
  else:
    state = loop.load(config, workdir, init)
  flat = {jax.tree_util.keystr(k): v for k, v in jax.tree_util.tree_leaves_with_path(parallel.local_copy(state.params))}
  np.savez(out, devices=len(jax.devices()), **flat)


def evaluate(config, workdir, out):
  """--mode=eval of the toy experiment in WORKDIR, counting the files this process opens there for writing."""
  import builtins
  import json

  from dbvq_jax import train

  real_open, written = builtins.open, []

  def counting_open(file, mode="r", *args, **kwargs):
    if any(c in mode for c in "wax") and os.path.abspath(str(file)).startswith(os.path.abspath(workdir)):
      written.append(str(file))
    return real_open(file, mode, *args, **kwargs)

  builtins.open = counting_open
  try:
    metrics = train.run(config, workdir, "eval")
  finally:
    builtins.open = real_open
  with open(out, "w") as f:
    json.dump({"metrics": metrics, "written": written}, f)


if __name__ == "__main__":
  main(*sys.argv[1:])
