#!/usr/bin/env bash
# Train on a Cloud TPU VM (single host or pod slice): create it, install, run the same command on all
# workers. The workdir is gs://BUCKET/WORKDIR, written directly by the run (orbax checkpoints there, so
# they survive the VM and a rerun resumes); --data_dir, if given, is copied from the bucket to each
# worker's disk before the run.
#
#   bash launch/tpu_vm.sh --name=dbvq --zone=us-central2-b --accelerator=v4-32 --bucket=my-bucket \
#     --repo=https://github.com/YOU/dbvq_jax --config=configs/vqvae.py:data=miniimagenet --workdir=runs/mini_vqvae \
#     --data_dir=data/miniimagenet [--python=3.12] [--version=RUNTIME] [--steps=create,setup,run] [--dry-run]
#   bash launch/tpu_vm.sh ... --steps=run --config=configs/prior.py:data=miniimagenet --workdir=runs/mini_prior \
#     -- --config.vqvae_workdir=gs://my-bucket/runs/mini_vqvae
#
# --workdir and --data_dir (VQ-VAE configs only) are paths inside the bucket; --repo is the git URL
# the workers clone. Extra --config.x=y flags go after `--`.
#
# The runtime (--version) follows the chip family, as Cloud TPU's docs list them: v6e-* v2-alpha-tpuv6e,
# v5p-* v2-alpha-tpuv5, v5litepod-*/v5e-* v2-alpha-tpuv5-lite, v4-* (and v2/v3) tpu-ubuntu2204-base. All
# four are Ubuntu 22.04 images whose python3 is 3.10, below our requires-python (3.11), so setup
# installs uv with the system pip, makes ~/dbvq_venv on Python --python (3.11 or 3.12, default 3.12:
# the newest jax needs 3.12; uv fetches that Python when the image lacks it) and installs
# `pip install -e ".[tpu,gcs]"` there (jax[tpu] with its libtpu; gcsfs for gs:// paths).
set -euo pipefail

NAME="" ZONE="" ACCEL="" BUCKET="" CONFIG="" WORKDIR="" DATA_DIR="" VERSION="" PY="3.12"
REPO="" STEPS="create,setup,run" DRY=0 EXTRA=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --name=*) NAME="${1#*=}" ;; --zone=*) ZONE="${1#*=}" ;; --accelerator=*) ACCEL="${1#*=}" ;;
    --bucket=*) BUCKET="${1#*=}" ;; --config=*) CONFIG="${1#*=}" ;; --workdir=*) WORKDIR="${1#*=}" ;;
    --data_dir=*) DATA_DIR="${1#*=}" ;; --version=*) VERSION="${1#*=}" ;; --repo=*) REPO="${1#*=}" ;;
    --python=*) PY="${1#*=}" ;; --steps=*) STEPS="${1#*=}" ;; --dry-run) DRY=1 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) echo "unknown argument: $1 (see the header of $0)" >&2; exit 2 ;;
  esac
  shift
done
for v in NAME ZONE ACCEL BUCKET REPO CONFIG WORKDIR; do
  [[ -n "${!v}" ]] || { echo "missing --$(echo "$v" | tr 'A-Z' 'a-z' | sed 's/accel/accelerator/')=..." >&2; exit 2; }
done
[[ -f "$(dirname "$0")/../${CONFIG%%:*}" ]] || { echo "config file ${CONFIG%%:*} not found in this checkout" >&2; exit 2; }
[[ "$PY" =~ ^3\.(1[1-9]|[2-9][0-9])$ ]] || { echo "--python=$PY: dbvq_jax needs Python 3.11 or newer" >&2; exit 2; }
WORKDIR="${WORKDIR#/}" DATA_DIR="${DATA_DIR#/}"

# Runtime per chip family (system Python of each: 3.10, hence the uv venv below).
case "$ACCEL" in
  v6e-*) RUNTIME="v2-alpha-tpuv6e" ;;
  v5p-*) RUNTIME="v2-alpha-tpuv5" ;;
  v5litepod-* | v5e-*) RUNTIME="v2-alpha-tpuv5-lite" ;;
  v4-* | v3-* | v2-*) RUNTIME="tpu-ubuntu2204-base" ;;
  *) RUNTIME="" ;;
esac
[[ -n "$VERSION" ]] && RUNTIME="$VERSION"
[[ -n "$RUNTIME" ]] || { echo "no default runtime for --accelerator=$ACCEL: pass --version=RUNTIME" >&2; exit 2; }

# Remote commands hold no single quote, so the plan prints them '...'-quoted exactly as they are sent.
VENV="~/dbvq_venv"
SETUP="set -e; (git clone $REPO ~/dbvq_jax || git -C ~/dbvq_jax pull); python3 -m pip install --user -q -U uv; \
[ -x $VENV/bin/python ] || python3 -m uv venv --seed --python $PY $VENV; \
cd ~/dbvq_jax && $VENV/bin/python -m pip install -U -e \".[tpu,gcs]\""
RUN="set -e; "
if [[ -n "$DATA_DIR" ]]; then
  RUN+="mkdir -p ~/dbvq_data/$DATA_DIR && gcloud storage rsync --recursive gs://$BUCKET/$DATA_DIR ~/dbvq_data/$DATA_DIR; "
fi
RUN+="cd ~/dbvq_jax && $VENV/bin/python -m dbvq_jax.main --distributed --config=$CONFIG --workdir=gs://$BUCKET/$WORKDIR"
[[ -n "$DATA_DIR" ]] && RUN+=" --config.data.dir=\$HOME/dbvq_data/$DATA_DIR"
[[ ${#EXTRA[@]} -gt 0 ]] && RUN+="$(printf ' %q' "${EXTRA[@]}")"  # quoted for the remote shell
for c in "$SETUP" "$RUN"; do
  [[ "$c" != *"'"* ]] || { echo "arguments must not contain a single quote: $c" >&2; exit 2; }
done

CREATE=(gcloud compute tpus tpu-vm create "$NAME" --zone="$ZONE" --accelerator-type="$ACCEL" --version="$RUNTIME")
SSH=(gcloud compute tpus tpu-vm ssh "$NAME" --zone="$ZONE" --worker=all)
declare -a PLAN=() KIND=()
[[ ",$STEPS," == *,create,* ]] && PLAN+=("${CREATE[*]}") && KIND+=(create)
[[ ",$STEPS," == *,setup,* ]] && PLAN+=("${SSH[*]} --command='$SETUP'") && KIND+=(setup)
[[ ",$STEPS," == *,run,* ]] && PLAN+=("${SSH[*]} --command='$RUN'") && KIND+=(run)
IMAGE_PY="Ubuntu 22.04, python3 3.10"
[[ -n "$VERSION" ]] && IMAGE_PY="its python3 whatever it is"
echo "TPU VM $NAME ($ACCEL, $ZONE), runtime $RUNTIME ($IMAGE_PY): setup makes a Python $PY venv with uv at" \
  "$VENV; workdir gs://$BUCKET/$WORKDIR. Will run:"
printf '  %s\n' "${PLAN[@]}"
[[ $DRY -eq 1 ]] && exit 0
for i in "${!PLAN[@]}"; do
  echo "+ ${PLAN[$i]}"
  case "${KIND[$i]}" in
    create) "${CREATE[@]}" ;;
    setup) "${SSH[@]}" --command="$SETUP" ;;
    run) "${SSH[@]}" --command="$RUN" ;;
  esac
done
