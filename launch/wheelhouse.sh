#!/usr/bin/env bash
# Offline install for a cluster without internet: on a machine with internet, put a wheel of dbvq_jax and
# every wheel that dbvq_jax[EXTRA] needs on the target Python and platform into DIR; copy DIR over and
# install from it there, with no index:
#
#   bash launch/wheelhouse.sh --python=3.11 --extra=cuda12 --out=wheelhouse [--platform=manylinux_2_28_x86_64] [--dry-run]
#   # on the cluster, with the same Python version:
#   python3.11 -m venv .venv && .venv/bin/pip install --no-index --find-links=wheelhouse 'dbvq_jax[cuda12]'
#
# --extra: cpu (plain jax), cuda12, cuda13 or tpu, optionally with gcs for gs:// paths (--extra=tpu,gcs).
# --platform: the target's manylinux level and machine, manylinux_2_X_ARCH; wheels for glibc 2.X and every
# older level are taken. The default is manylinux_2_28_x86_64 (RHEL/Rocky 8 and newer), and
# manylinux_2_35_x86_64 with tpu (TPU VMs run Ubuntu 22.04; libtpu's wheels need glibc 2.31). Another
# platform tag is passed to pip as it is. PYTHON (default python3, 3.8+) runs pip here; it need not be the
# target's version. A requirement that PyPI has only as source (promise, from tensorflow-datasets) is built
# into a wheel here and the download repeated; such a wheel must be pure Python (py3-none-any).
set -euo pipefail

PY="" EXTRAS="" OUT="" PLATFORM="" DRY=0 PYTHON="${PYTHON:-python3}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --python=*) PY="${1#*=}" ;; --extra=*) EXTRAS="${1#*=}" ;; --out=*) OUT="${1#*=}" ;;
    --platform=*) PLATFORM="${1#*=}" ;; --dry-run) DRY=1 ;;
    *) echo "unknown argument: $1 (see the header of $0)" >&2; exit 2 ;;
  esac
  shift
done
for v in PY EXTRAS OUT; do
  [[ -n "${!v}" ]] || { echo "missing --$(echo "$v" | tr 'A-Z' 'a-z' | sed 's/^py$/python/; s/extras/extra/')=..." >&2; exit 2; }
done
[[ "$PY" =~ ^3\.(1[1-9]|[2-9][0-9])$ ]] || { echo "--python=$PY: dbvq_jax needs Python 3.11 or newer (3.11, 3.12, ...)" >&2; exit 2; }
declare -a KEEP=()
IFS=, read -r -a LIST <<< "$EXTRAS"
for e in "${LIST[@]}"; do
  case "$e" in
    cpu) ;;
    cuda12 | cuda13 | tpu | gcs) KEEP+=("$e") ;;
    *) echo "--extra=$EXTRAS: each of cpu, cuda12, cuda13, tpu, gcs" >&2; exit 2 ;;
  esac
done
REPO="$(cd "$(dirname "$0")/.." && pwd)"
VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$REPO/pyproject.toml" | head -n 1)"
SPEC="dbvq_jax==$VERSION"
[[ ${#KEEP[@]} -gt 0 ]] && SPEC="dbvq_jax[$(IFS=,; echo "${KEEP[*]}")]==$VERSION"
if [[ -z "$PLATFORM" ]]; then
  PLATFORM="manylinux_2_28_x86_64"
  [[ ",$EXTRAS," == *,tpu,* ]] && PLATFORM="manylinux_2_35_x86_64"
fi
declare -a PLATS=()
if [[ "$PLATFORM" =~ ^manylinux_2_([0-9]+)_(.+)$ ]]; then  # pip takes only the tags named: name each older one
  GLIBC="${BASH_REMATCH[1]}" ARCH="${BASH_REMATCH[2]}"
  for ((g = GLIBC; g >= 5; g--)); do PLATS+=("--platform=manylinux_2_${g}_$ARCH"); done
  ((GLIBC >= 17)) && PLATS+=("--platform=manylinux2014_$ARCH")
  ((GLIBC >= 12)) && PLATS+=("--platform=manylinux2010_$ARCH")
  PLATS+=("--platform=manylinux1_$ARCH")
else
  PLATS=("--platform=$PLATFORM")
fi

# The wheel is built from a fresh copy of what it holds: setuptools reuses REPO/build/, stale files and all.
SRC="TMP"
WHEEL=("$PYTHON" -m pip wheel --no-deps --ignore-requires-python --wheel-dir="$OUT" "$SRC")
DOWNLOAD=("$PYTHON" -m pip download --dest="$OUT" --find-links="$OUT" --only-binary=:all: --implementation=cp
  --python-version="$PY" "${PLATS[@]}" "$SPEC")
INSTALL="pip install --no-index --find-links=$OUT '${SPEC%==*}'"

show() {  # one command, quoted where the shell needs it
  local a out=()
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./:=,+@%-]+$ ]]; then out+=("$a"); else out+=("'$a'"); fi
  done
  echo "  ${out[*]}"
}
echo "Wheelhouse $OUT for $SPEC on CPython $PY, $PLATFORM. Will run:"
echo "  (copy $REPO/{pyproject.toml,README.md,dbvq_jax} to a new temporary folder $SRC)"
show "${WHEEL[@]}"
show "${DOWNLOAD[@]}"
echo "  (a requirement with no wheel on PyPI is built here: $PYTHON -m pip wheel --no-deps REQ, then the download is repeated)"
echo "Then on the target, in a Python $PY environment:"
echo "  $INSTALL"
[[ $DRY -eq 1 ]] && exit 0

mkdir -p "$OUT"
START=$SECONDS
LOG="$(mktemp)" BUILT="$(mktemp -d)" SRC="$(mktemp -d)"
trap 'rm -rf "$LOG" "$BUILT" "$SRC"' EXIT
cp -r "$REPO/pyproject.toml" "$REPO/README.md" "$REPO/dbvq_jax" "$SRC"/
WHEEL[${#WHEEL[@]} - 1]="$SRC"
"${WHEEL[@]}"
declare -A TRIED=()
while ! { "${DOWNLOAD[@]}" 2>&1 | tee "$LOG"; }; do
  # pip names it either way: "No matching distribution found for REQ" or "PKG VERSION depends on REQ" (a conflict)
  REQ="$(sed -n -e 's/.*No matching distribution found for \([^ ;]*\).*/\1/p' \
    -e 's/^ *[^ ]* [^ ]* depends on \([^ ;]*\).*/\1/p' "$LOG" | sort -u | head -n 1)"
  [[ -n "$REQ" && -z "${TRIED[$REQ]:-}" ]] || { echo "pip download failed (see above)" >&2; exit 1; }
  TRIED[$REQ]=1
  echo "+ no wheel of $REQ for the target: building one from its source"
  rm -rf "${BUILT:?}"/*
  "$PYTHON" -m pip wheel --no-deps --wheel-dir="$BUILT" "$REQ"
  for w in "$BUILT"/*.whl; do
    [[ "$w" == *-none-any.whl ]] || { echo "no wheel of $REQ for the target, and $(basename "$w") is not pure Python" >&2; exit 1; }
    mv "$w" "$OUT"/
  done
done
echo "Wheelhouse $OUT: $(find "$OUT" -maxdepth 1 -name '*.whl' | wc -l) wheels, $(du -sh "$OUT" | cut -f1)," \
  "$((SECONDS - START)) s. Install on the target with:"
echo "  $INSTALL"
