#!/usr/bin/env bash
# Train on a Cloud TPU VM (single host or pod slice): create it, install, run the same command on all
# workers. The workdir and data live on a GCS bucket mounted with gcsfuse at /mnt/$BUCKET on every
# worker, so checkpoints survive the VM and a rerun resumes.
#
#   bash launch/tpu_vm.sh --name=dbvq --zone=us-central2-b --accelerator=v4-32 --bucket=my-bucket \
#     --repo=https://github.com/YOU/dbvq_jax --config=configs/vqvae.py:data=miniimagenet --workdir=runs/mini_vqvae \
#     --data_dir=data/miniimagenet [--version=tpu-ubuntu2204-base] [--steps=create,setup,run] [--dry-run]
#   bash launch/tpu_vm.sh ... --steps=run --config=configs/prior.py:data=miniimagenet --workdir=runs/mini_prior \
#     -- --config.vqvae_workdir=/mnt/my-bucket/runs/mini_vqvae
#
# --workdir and --data_dir (VQ-VAE configs only) are paths inside the bucket; --repo is the git URL
# the workers clone. Extra --config.x=y flags go after `--`.
set -euo pipefail

NAME="" ZONE="" ACCEL="" BUCKET="" CONFIG="" WORKDIR="" DATA_DIR="" VERSION="tpu-ubuntu2204-base"
REPO="" STEPS="create,setup,run" DRY=0 EXTRA=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --name=*) NAME="${1#*=}" ;; --zone=*) ZONE="${1#*=}" ;; --accelerator=*) ACCEL="${1#*=}" ;;
    --bucket=*) BUCKET="${1#*=}" ;; --config=*) CONFIG="${1#*=}" ;; --workdir=*) WORKDIR="${1#*=}" ;;
    --data_dir=*) DATA_DIR="${1#*=}" ;; --version=*) VERSION="${1#*=}" ;; --repo=*) REPO="${1#*=}" ;;
    --steps=*) STEPS="${1#*=}" ;; --dry-run) DRY=1 ;; --) shift; EXTRA=("$@"); break ;;
    *) echo "unknown argument: $1 (see the header of $0)" >&2; exit 2 ;;
  esac
  shift
done
for v in NAME ZONE ACCEL BUCKET REPO CONFIG WORKDIR; do
  [[ -n "${!v}" ]] || { echo "missing --$(echo "$v" | tr 'A-Z' 'a-z' | sed 's/accel/accelerator/')=..." >&2; exit 2; }
done
[[ -f "$(dirname "$0")/../${CONFIG%%:*}" ]] || { echo "config file ${CONFIG%%:*} not found in this checkout" >&2; exit 2; }

MNT="/mnt/$BUCKET"
RUN="cd ~/dbvq_jax && python3 -m dbvq_jax.main --distributed --config=$CONFIG --workdir=$MNT/$WORKDIR"
[[ -n "$DATA_DIR" ]] && RUN+=" --config.data.dir=$MNT/$DATA_DIR"
[[ ${#EXTRA[@]} -gt 0 ]] && RUN+=" ${EXTRA[*]}"
SETUP="set -e; (git clone $REPO ~/dbvq_jax || git -C ~/dbvq_jax pull); pip install -U 'jax[tpu]' -e ~/dbvq_jax; \
sudo mkdir -p $MNT && sudo chown \$USER $MNT && (mountpoint -q $MNT || gcsfuse --implicit-dirs $BUCKET $MNT)"
SSH=(gcloud compute tpus tpu-vm ssh "$NAME" --zone="$ZONE" --worker=all --command)

declare -a PLAN
[[ ",$STEPS," == *,create,* ]] && PLAN+=("gcloud compute tpus tpu-vm create $NAME --zone=$ZONE --accelerator-type=$ACCEL --version=$VERSION")
[[ ",$STEPS," == *,setup,* ]] && PLAN+=("${SSH[*]} \"$SETUP\"")
[[ ",$STEPS," == *,run,* ]] && PLAN+=("${SSH[*]} \"$RUN\"")
echo "TPU VM $NAME ($ACCEL, $ZONE); workdir gs://$BUCKET/$WORKDIR mounted at $MNT/$WORKDIR. Will run:"
printf '  %s\n' "${PLAN[@]}"
[[ $DRY -eq 1 ]] && exit 0
for cmd in "${PLAN[@]}"; do
  echo "+ $cmd"
  eval "$cmd"
done
