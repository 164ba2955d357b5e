#!/usr/bin/env bash
# Multi-node GPU training with SLURM: one process per node, all GPUs of a node in it; jax.distributed
# reads the cluster from SLURM's environment (--distributed without addresses).
#
#   bash launch/slurm_gpu.sh --nodes=4 --gpus_per_node=8 --config=configs/prior.py:data=cifar10 --workdir=/shared/runs/cifar10_prior \
#     [--partition=gpu] [--time=48:00:00] [--venv=/shared/venvs/dbvq] [--dry-run] [-- --config.x=y ...]
#
# Writes the batch script to WORKDIR/slurm_job.sh and submits it with sbatch (--dry-run prints it instead).
# WORKDIR must be on a filesystem every node sees; rerunning resumes from its checkpoints.
set -euo pipefail

NODES="" GPUS="" CONFIG="" WORKDIR="" PARTITION="" TIME="24:00:00" VENV="" DRY=0 EXTRA=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --nodes=*) NODES="${1#*=}" ;; --gpus_per_node=*) GPUS="${1#*=}" ;; --config=*) CONFIG="${1#*=}" ;;
    --workdir=*) WORKDIR="${1#*=}" ;; --partition=*) PARTITION="${1#*=}" ;; --time=*) TIME="${1#*=}" ;;
    --venv=*) VENV="${1#*=}" ;; --dry-run) DRY=1 ;; --) shift; EXTRA=("$@"); break ;;
    *) echo "unknown argument: $1 (see the header of $0)" >&2; exit 2 ;;
  esac
  shift
done
for v in NODES GPUS CONFIG WORKDIR; do
  [[ -n "${!v}" ]] || { echo "missing --$(echo "$v" | tr 'A-Z' 'a-z' | sed 's/gpus/gpus_per_node/')=..." >&2; exit 2; }
done
[[ "$NODES" =~ ^[0-9]+$ && "$GPUS" =~ ^[0-9]+$ ]] || { echo "--nodes and --gpus_per_node must be integers" >&2; exit 2; }
REPO="$(cd "$(dirname "$0")/.." && pwd)"
[[ -f "$REPO/${CONFIG%%:*}" ]] || { echo "config file ${CONFIG%%:*} not found in $REPO" >&2; exit 2; }

JOB="#!/usr/bin/env bash
#SBATCH --job-name=dbvq
#SBATCH --nodes=$NODES
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=$GPUS
#SBATCH --time=$TIME
#SBATCH --output=$WORKDIR/slurm-%j.out
${PARTITION:+#SBATCH --partition=$PARTITION}
set -euo pipefail
${VENV:+source $VENV/bin/activate}
cd $REPO
srun python -m dbvq_jax.main --distributed --config=$CONFIG --workdir=$WORKDIR ${EXTRA[*]:-}"
echo "SLURM job: $NODES node(s) x $GPUS GPU(s), workdir $WORKDIR. Batch script:"
echo "$JOB" | sed 's/^/  /'
[[ $DRY -eq 1 ]] && exit 0
mkdir -p "$WORKDIR"
echo "$JOB" > "$WORKDIR/slurm_job.sh"
sbatch "$WORKDIR/slurm_job.sh"
