#!/usr/bin/env bash
# Shows the state of the TPU VM, queued resource or GPU VM, and with --training what each worker is doing.
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

USAGE="Usage: $SCRIPT --name NAME --zone ZONE [--gpu | --queued] [--training] [--dry-run]

gcloud ... describe of the resource (a queued resource: ACCEPTED/WAITING_FOR_RESOURCES/PROVISIONING, then
ACTIVE once the TPU exists).
  --training   also, on every worker: is training running, and the last line of its log"

TRAINING=0

script_flag() {
  case $1 in
    --training) TRAINING=1; CONSUMED=1 ;;
  esac
}

parse_args "$@"
no_positional
no_passthrough
require_target

if ((GPU)); then
  run gcloud compute instances describe "$NAME" --zone "$ZONE" "${PROJECT_FLAGS[@]}" --format "value(status)"
elif ((QUEUED)); then
  run gcloud compute tpus queued-resources describe "$NAME" --zone "$ZONE" "${PROJECT_FLAGS[@]}"
else
  run gcloud compute tpus tpu-vm describe "$NAME" --zone "$ZONE" "${PROJECT_FLAGS[@]}" \
    --format "value(state,acceleratorType,runtimeVersion)"
fi

if ((TRAINING)); then
  command="cd $(shquote "$REMOTE_DIR") && if [ -f logs/train.pid ] && kill -0 \"\$(cat logs/train.pid)\" 2>/dev/null;"
  command+=" then echo \"\$(hostname): training (pid \$(cat logs/train.pid)): \$(tail -n 1 logs/latest.log)\";"
  command+=" else echo \"\$(hostname): not training\"; fi"
  remote "$command"
fi
