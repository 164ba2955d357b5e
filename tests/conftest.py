"""Suite-wide settings, read by JAX at import and inherited by the subprocesses and notebook kernels
that tests start. The tests are bound by compile time on CPU (tiny networks, a few steps), so:
XLA's LLVM backend optimisations are off (about 3x faster compiles), and compiled programs go to a
persistent cache in a fresh directory per session, shared by the workers and the processes that compile the same
program (the same toy run from the README, the notebooks and the launcher). The benchmarks, which
time compiled code, run without either outside the tests.

The tests follow the code's layers: pure/ (the math, against closed forms and float64 references), data/,
models/, priors/, experiments/ (the loop, checkpoints, the toy, multi-process) and end_to_end/ (the image
pipeline as a user runs it, every README command, the launchers and notebooks)."""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # helpers.py, for the tests in every layer below

if "PYTEST_XDIST_WORKER" not in os.environ:  # set once, by the controller: xdist's workers inherit it (one cache)
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()
  os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="dbvq_jax_test_cache_")
  os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0.2"
