#!/usr/bin/env bash
# Deletes the TPU VM (or the queued resource and its TPU, or the GPU VM), and everything on its disks.
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

USAGE="Usage: $SCRIPT --name NAME --zone ZONE [--gpu | --queued] [--yes] [--dry-run]

gcloud compute tpus tpu-vm delete, gcloud compute tpus queued-resources delete --force (the queued
resource and its node), or gcloud compute instances delete. Run directories on the VM's own disks go with
it: stop training (tpu_setup/stop.sh) and fetch them first (tpu_setup/fetch.sh).
  --yes   no confirmation prompt (gcloud --quiet)"

YES=0

script_flag() {
  case $1 in
    --yes) YES=1; CONSUMED=1 ;;
  esac
}

parse_args "$@"
no_positional
no_passthrough
require_target

quiet=()
if ((YES)); then quiet=(--quiet); fi
if ((GPU)); then
  run gcloud compute instances delete "$NAME" --zone "$ZONE" "${PROJECT_FLAGS[@]}" "${quiet[@]}"
elif ((QUEUED)); then
  run gcloud compute tpus queued-resources delete "$NAME" --zone "$ZONE" "${PROJECT_FLAGS[@]}" --force "${quiet[@]}"
else
  run gcloud compute tpus tpu-vm delete "$NAME" --zone "$ZONE" "${PROJECT_FLAGS[@]}" "${quiet[@]}"
fi
