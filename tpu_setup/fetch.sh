#!/usr/bin/env bash
# Copies a run directory back from one TPU worker (or the GPU VM) into this checkout.
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

USAGE="Usage: $SCRIPT --name NAME --zone ZONE [--gpu] [--worker N] [--dry-run] RUN_DIR

scp --recurse of DIR/RUN_DIR (e.g. runs/small_350m) from worker N (default 0) into the same relative path
here. On a multi-host slice whose run directory is on each worker's own disk, worker 0 holds only its part
of each checkpoint: keep multi-host runs on a shared filesystem (tpu_setup/README.md)."

WORKER=0

script_flag() {
  case $1 in
    --worker) need_value "$@"; WORKER=$2; CONSUMED=2 ;;
  esac
}

parse_args "$@"
no_passthrough
require_target
((${#POSITIONAL[@]} == 1)) || die "name one RUN_DIR, relative to the checkout (see $SCRIPT --help)"
[[ $WORKER =~ ^[0-9]+$ ]] || die "--worker takes a worker number, not '$WORKER'"
run_dir=${POSITIONAL[0]%/}
[[ -n $run_dir && $run_dir != /* && $run_dir != *..* ]] ||
  die "RUN_DIR must be relative to the checkout, without '..' (an absolute run.dir: use gcloud ... scp)"

parent=$(dirname "$run_dir")
run mkdir -p "$REPO_ROOT/$parent"
download "$REMOTE_DIR/$run_dir" "$REPO_ROOT/$parent" "$WORKER"
