"""Runs the multi-host path on one machine: N local CPU processes joined by jax.distributed (gloo).

  python launch/local.py --num_processes=2 [--dry-run] -- --config=configs/toy.py --workdir=runs/toy_mp

Everything after `--` goes to `python -m dbvq_jax.main` in every process, which gets
--distributed --coordinator_address=127.0.0.1:PORT --num_processes=N --process_id=i added. Output lines
are prefixed with [pI]; the exit status is non-zero when any process fails.
"""

import argparse
import os
import socket
import subprocess
import sys
import threading

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def commands(num_processes: int, port: int, main_args: list[str]) -> list[list[str]]:
  base = [
    sys.executable,
    "-m",
    "dbvq_jax.main",
    "--distributed",
    f"--coordinator_address=127.0.0.1:{port}",
    f"--num_processes={num_processes}",
  ]
  return [[*base, f"--process_id={i}", *main_args] for i in range(num_processes)]


def check(main_args: list[str]) -> None:
  """Fails early on a missing --config/--workdir or a config file that does not exist."""
  config = next((a.split("=", 1)[1] for a in main_args if a.startswith("--config=")), None)
  if config is None or not any(a.startswith("--workdir=") for a in main_args):
    sys.exit("pass the main command's --config=... and --workdir=... after `--`")
  path = config.split(":", 1)[0]
  if not os.path.exists(os.path.join(REPO, path)) and not os.path.exists(path):
    sys.exit(f"config file {path!r} not found")


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--num_processes", type=int, default=2)
  parser.add_argument("--dry-run", action="store_true", help="print the commands and exit")
  args, rest = parser.parse_known_args()
  main_args = rest[1:] if rest[:1] == ["--"] else rest
  check(main_args)
  cmds = commands(args.num_processes, free_port(), main_args)
  print(f"starting {args.num_processes} CPU processes (gloo collectives) in {REPO}:", flush=True)
  for c in cmds:
    print("  " + " ".join(c), flush=True)
  if args.dry_run:
    return
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  procs = [
    subprocess.Popen(c, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for c in cmds
  ]

  def relay(i, proc):
    for line in proc.stdout:
      print(f"[p{i}] {line}", end="", flush=True)

  threads = [threading.Thread(target=relay, args=(i, p)) for i, p in enumerate(procs)]
  for t in threads:
    t.start()
  codes = [p.wait() for p in procs]
  for t in threads:
    t.join()
  if any(codes):
    sys.exit(f"process exit codes {codes}")
  print("all processes finished", flush=True)


if __name__ == "__main__":
  main()
