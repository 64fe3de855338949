#!/usr/bin/env bash
# Installs flaxgpt on every TPU worker (or the GPU VM): Python venv, the code, the pinned dependencies, JAX
# for the accelerator.
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

USAGE="Usage: $SCRIPT --name NAME --zone ZONE [--gpu] [--ref REF | --repo-url URL [--ref REF]]
          [--python PY] [--sync-only] [--dry-run]

Copies the code to every worker, then on each at once (in the checkout DIR, default ~/flaxgpt):
  PY -m venv .venv (PY default python3.11, installed with apt when missing),
  pip install -r requirements.lock, pip install \"jax[tpu]==V\" (\"jax[cuda12]==V\" with --gpu; V is the jax
  version requirements.lock pins), pip install --no-deps -e .
Run it again after changing code: the venv is kept and pip has little to do (--sync-only skips pip).

  (default)        this checkout: git archive of HEAD (or --ref REF), copied with scp to every worker.
                   Uncommitted changes are not in it: commit them, or copy files with tpu_setup/copy.sh.
  --repo-url URL   git clone URL on every worker instead (then git fetch + checkout --ref REF, or pull)
  --python PY      the Python to build the venv with (3.11 or 3.12)
  --sync-only      copy (or pull) the code only"

REF=""
REPO_URL=""
PY=python3.11
SYNC_ONLY=0

script_flag() {
  case $1 in
    --ref) need_value "$@"; REF=$2; CONSUMED=2 ;;
    --repo-url) need_value "$@"; REPO_URL=$2; CONSUMED=2 ;;
    --python) need_value "$@"; PY=$2; CONSUMED=2 ;;
    --sync-only) SYNC_ONLY=1; CONSUMED=1 ;;
  esac
}

parse_args "$@"
no_positional
no_passthrough
require_target
[[ $PY =~ ^python3\.1[12]$ ]] || die "--python must be python3.11 or python3.12 (pyproject.toml: >=3.11,<3.13)"

D=$(shquote "$REMOTE_DIR")
steps=()
if [[ -n $REPO_URL ]]; then
  steps+=("{ test -d $D/.git || git clone -q $(shquote "$REPO_URL") $D; }")
  if [[ -n $REF ]]; then
    steps+=("git -C $D fetch -q origin" "git -C $D checkout -q $(shquote "$REF")")
  else
    steps+=("git -C $D pull -q --ff-only")
  fi
else
  REF=${REF:-HEAD}
  tarball=${TMPDIR:-/tmp}/flaxgpt-src-$NAME.tar.gz
  if ((!DRY_RUN)) && [[ $REF == HEAD ]] &&
    [[ -n $(git -C "$REPO_ROOT" --no-optional-locks status --porcelain --untracked-files=no) ]]; then
    note "uncommitted changes are not copied (git archive HEAD): commit them or use tpu_setup/copy.sh"
  fi
  run git -C "$REPO_ROOT" archive --format=tar.gz -o "$tarball" "$REF"
  upload "$tarball" flaxgpt-src.tar.gz
  steps+=("mkdir -p $D" "tar -xzf flaxgpt-src.tar.gz -C $D" "rm flaxgpt-src.tar.gz")
fi

if ((!SYNC_ONLY)); then
  if ((GPU)); then extra=cuda12; else extra=tpu; fi
  jax="jax[$extra]==$(jax_version)"
  apt="sudo DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -y -qq"
  steps+=(
    "{ command -v $PY >/dev/null || { sudo apt-get -qq update && $apt install $PY $PY-venv; }; }"
    "cd $D"
    "{ test -x .venv/bin/python || $PY -m venv .venv; }"
    ".venv/bin/pip install -q --upgrade pip"
    ".venv/bin/pip install -q -r requirements.lock"
    ".venv/bin/pip install -q \"$jax\""
    ".venv/bin/pip install -q --no-deps -e ."
    ".venv/bin/python -c \"import flaxgpt, jax\""
    "echo \"\$(hostname): flaxgpt ready\""
  )
fi

command=$(printf ' && %s' "${steps[@]}")
remote "${command# && }"
