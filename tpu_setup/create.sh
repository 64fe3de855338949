#!/usr/bin/env bash
# Creates a Cloud TPU VM (or queued resource) or a GPU VM to train flaxgpt on.
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

USAGE="Usage:
  $SCRIPT --name NAME --zone ZONE --accelerator TYPE [--version RUNTIME] [--spot | --preemptible]
          [--queued [--valid-until DURATION]] [--dry-run] [-- EXTRA_GCLOUD_FLAGS...]
  $SCRIPT --gpu --name NAME --zone ZONE --gpus N [--gpu-type TYPE] [--machine-type MT]
          [--image-family FAMILY] [--disk-size SIZE] [--spot] [--dry-run] [-- EXTRA_GCLOUD_FLAGS...]

TPU: gcloud compute tpus tpu-vm create (or, with --queued, gcloud compute tpus queued-resources create
with --node-id NAME: the request waits for capacity; watch it with tpu_setup/status.sh --queued).
  --accelerator TYPE   v4-8, v4-32, v5p-8, v5p-16, v5litepod-8 (or v5e-8), v6e-8, ...   [FLAXGPT_ACCELERATOR]
  --version RUNTIME    default by generation: v4 tpu-ubuntu2204-base, v5p v2-alpha-tpuv5,
                       v5e v2-alpha-tpuv5-lite, v6e v2-alpha-tpuv6e
  --spot, --preemptible  cheaper capacity that can be taken back (a queued resource takes --spot only)
  --valid-until DURATION  queued resources: give up if not provisioned within DURATION (e.g. 6h)

GPU (--gpu): gcloud compute instances create with a Deep Learning VM image (NVIDIA driver included).
  --gpus N             1, 2, 4 or 8 GPUs on the one VM
  --gpu-type TYPE      h100 (a3-highgpu-Ng, default), a100 (a2-highgpu-Ng), a100-80gb (a2-ultragpu-Ng),
                       l4 (g2-standard-8/24/48/96)
  --machine-type MT    override the machine type derived from --gpus and --gpu-type
  --image-family F     default common-cu128-ubuntu-2204-nvidia-570 (project deeplearning-platform-release)
  --disk-size SIZE     boot disk, default 200GB

Words after -- are added to the gcloud command as they are (e.g. --network, --service-account, --data-disk)."

ACCELERATOR=${FLAXGPT_ACCELERATOR:-}
VERSION=""
CAPACITY=""          # spot | preemptible
VALID_UNTIL=""
GPUS=""
GPU_TYPE=h100
MACHINE_TYPE=""
IMAGE_FAMILY=common-cu128-ubuntu-2204-nvidia-570
DISK_SIZE=200GB

script_flag() {
  case $1 in
    --accelerator | --accelerator-type) need_value "$@"; ACCELERATOR=$2; CONSUMED=2 ;;
    --version | --runtime-version) need_value "$@"; VERSION=$2; CONSUMED=2 ;;
    --spot) CAPACITY=spot; CONSUMED=1 ;;
    --preemptible) CAPACITY=preemptible; CONSUMED=1 ;;
    --valid-until) need_value "$@"; VALID_UNTIL=$2; CONSUMED=2 ;;
    --gpus) need_value "$@"; GPUS=$2; GPU=1; CONSUMED=2 ;;
    --gpu-type) need_value "$@"; GPU_TYPE=$2; GPU=1; CONSUMED=2 ;;
    --machine-type) need_value "$@"; MACHINE_TYPE=$2; CONSUMED=2 ;;
    --image-family) need_value "$@"; IMAGE_FAMILY=$2; CONSUMED=2 ;;
    --disk-size) need_value "$@"; DISK_SIZE=$2; CONSUMED=2 ;;
  esac
}

parse_args "$@"
no_positional
require_target

if ((GPU)); then
  require GPUS --gpus FLAXGPT_GPUS
  shape=$(gpu_machine "$GPU_TYPE" "$GPUS")   # "MACHINE_TYPE ACCELERATOR_TYPE"
  MACHINE_TYPE=${MACHINE_TYPE:-${shape% *}}
  accelerator=${shape#* }
  capacity=()
  case $CAPACITY in
    spot) capacity=(--provisioning-model SPOT --instance-termination-action STOP) ;;
    preemptible) capacity=(--preemptible) ;;
  esac
  if [[ $GPU_TYPE == h100 && $GPUS != 8 && $CAPACITY != spot ]]; then
    note "a3-highgpu-1g/2g/4g are offered as Spot or Flex-start VMs only; add --spot if creation is refused"
  fi
  note "$NAME: $GPUS x $GPU_TYPE on $MACHINE_TYPE"
  run gcloud compute instances create "$NAME" --zone "$ZONE" "${PROJECT_FLAGS[@]}" \
    --machine-type "$MACHINE_TYPE" --accelerator "type=$accelerator,count=$GPUS" \
    --image-family "$IMAGE_FAMILY" --image-project deeplearning-platform-release \
    --maintenance-policy TERMINATE --boot-disk-size "$DISK_SIZE" --metadata install-nvidia-driver=True \
    "${capacity[@]}" "${PASSTHROUGH[@]}"
  exit 0
fi

require ACCELERATOR --accelerator FLAXGPT_ACCELERATOR
ACCELERATOR=$(tpu_type "$ACCELERATOR")
VERSION=${VERSION:-$(tpu_runtime "$ACCELERATOR")}
note "$NAME: $ACCELERATOR ($(tpu_chips "$ACCELERATOR") chips), runtime $VERSION"

if ((QUEUED)); then
  if [[ $CAPACITY == preemptible ]]; then die "a queued resource takes --spot, not --preemptible"; fi
  extra=()
  if [[ $CAPACITY == spot ]]; then extra+=(--spot); fi
  if [[ -n $VALID_UNTIL ]]; then extra+=(--valid-until-duration "$VALID_UNTIL"); fi
  run gcloud compute tpus queued-resources create "$NAME" --zone "$ZONE" "${PROJECT_FLAGS[@]}" \
    --accelerator-type "$ACCELERATOR" --runtime-version "$VERSION" --node-id "$NAME" \
    "${extra[@]}" "${PASSTHROUGH[@]}"
  note "queued: the node exists once the state is ACTIVE ($(dirname "$SCRIPT")/status.sh --queued --name $NAME --zone $ZONE)"
else
  if [[ -n $VALID_UNTIL ]]; then die "--valid-until is for queued resources (add --queued)"; fi
  extra=()
  if [[ -n $CAPACITY ]]; then extra+=("--$CAPACITY"); fi
  run gcloud compute tpus tpu-vm create "$NAME" --zone "$ZONE" "${PROJECT_FLAGS[@]}" \
    --accelerator-type "$ACCELERATOR" --version "$VERSION" "${extra[@]}" "${PASSTHROUGH[@]}"
fi
