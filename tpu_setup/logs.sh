#!/usr/bin/env bash
# Shows the training log of one TPU worker (or all of them, or the GPU VM's).
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

USAGE="Usage: $SCRIPT --name NAME --zone ZONE [--gpu] [--worker N|all] [--lines N] [--no-follow] [--log NAME]
          [--dry-run]

tail -F of DIR/logs/latest.log (the last tpu_setup/train.sh run) on worker N (default 0; all: every worker,
their lines interleaved). Ctrl-C stops watching, not training.
  --lines N     start with the last N lines (default 100)
  --no-follow   print and return
  --log NAME    logs/NAME.log instead of the latest"

WORKER=0
LINES=100
FOLLOW=1
LOG=latest

script_flag() {
  case $1 in
    --worker) need_value "$@"; WORKER=$2; CONSUMED=2 ;;
    --lines) need_value "$@"; LINES=$2; CONSUMED=2 ;;
    --no-follow) FOLLOW=0; CONSUMED=1 ;;
    --log) need_value "$@"; LOG=$2; CONSUMED=2 ;;
  esac
}

parse_args "$@"
no_positional
no_passthrough
require_target
[[ $WORKER =~ ^([0-9]+|all)$ ]] || die "--worker takes a worker number or all, not '$WORKER'"
[[ $LINES =~ ^[0-9]+$ ]] || die "--lines takes a number, not '$LINES'"
[[ $LOG =~ ^[A-Za-z0-9_.-]+$ ]] || die "--log takes a plain log name, not '$LOG'"
if ((GPU)) && [[ $WORKER != 0 ]]; then die "--worker is for TPU slices; a GPU VM has one worker"; fi

if ((FOLLOW)); then follow=" -F"; else follow=""; fi
remote "tail -n $LINES$follow $(shquote "$REMOTE_DIR/logs/$LOG.log")" "$WORKER"
