# Shared by the tpu_setup/ scripts (sourced, never run): flags and their environment defaults, `run` (print
# the command in a dry run, else run it), and the gcloud commands that reach the TPU workers or the GPU VM.
# shellcheck shell=bash
# shellcheck disable=SC2034  # variables read by the scripts that source this file

if ! ((BASH_VERSINFO[0] > 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] >= 4))); then
  echo "error: tpu_setup needs bash >= 4.4 (this is $BASH_VERSION; on macOS: brew install bash)" >&2
  exit 2
fi

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRIPT=tpu_setup/$(basename "$0")

# Defaults: flags override these environment variables.
NAME=${FLAXGPT_NAME:-}            # TPU VM / queued resource / GPU VM name
ZONE=${FLAXGPT_ZONE:-}
PROJECT=${FLAXGPT_PROJECT:-}      # '' means gcloud's configured project
REMOTE_DIR=${FLAXGPT_REMOTE_DIR:-flaxgpt}  # the checkout on each VM, relative to the remote home
GPU=${FLAXGPT_GPU:-0}             # 1: a GPU VM (gcloud compute ...) instead of a TPU VM
QUEUED=${FLAXGPT_QUEUED:-0}       # 1: the TPU was requested as a queued resource of the same name
DRY_RUN=0
POSITIONAL=()                     # words that are not flags
PASSTHROUGH=()                    # everything after `--`
PROJECT_FLAGS=()                  # --project PROJECT for every gcloud command, when given

die() { echo "error: $*" >&2; exit 2; }
note() { echo "# $*" >&2; }

# quote_cmd WORD...: the words as one shell line, each single-quoted only when it has to be, so printed
# commands paste back exactly as they were run. shquote WORD: one word (use as $(shquote "$x")).
quote_cmd() {
  local words=() w q="'\\''"
  for w in "$@"; do
    if [[ $w =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then words+=("$w"); else words+=("'${w//\'/$q}'"); fi
  done
  printf '%s\n' "${words[*]}"
}

shquote() { quote_cmd "$1"; }

# run CMD...: a dry run prints CMD (shell-quoted, one line on stdout); otherwise CMD is echoed to stderr and run.
run() {
  if ((DRY_RUN)); then
    quote_cmd "$@"
  else
    echo "+ $(quote_cmd "$@")" >&2
    "$@"
  fi
}

usage() {
  printf '%s\n' "$USAGE"
  cat <<'EOF'

Common flags (environment defaults in brackets):
  --name NAME      the TPU VM, queued resource or GPU VM   [FLAXGPT_NAME]
  --zone ZONE      e.g. us-central2-b (v4), us-east5-a (v5p), us-west4-a (v5e), us-east5-b (v6e),
                   us-central1-a (GPUs)  [FLAXGPT_ZONE]
  --project ID     Google Cloud project (default: gcloud's configured one)  [FLAXGPT_PROJECT]
  --gpu            a GPU VM (gcloud compute instances/ssh/scp) instead of a TPU VM  [FLAXGPT_GPU=1]
  --queued         the TPU is a queued resource named NAME (its node is NAME too)  [FLAXGPT_QUEUED=1]
  --dir DIR        the flaxgpt checkout on each VM, relative to the remote home (default flaxgpt)  [FLAXGPT_REMOTE_DIR]
  --dry-run        print the exact commands (one per line, shell-quoted) instead of running them
  -h, --help       this help
EOF
}

# parse_args "$@": common flags here; a script's own flags go to its `script_flag` function, which sets
# CONSUMED to the number of words it took (0: not its flag). `--flag=value` is the same as `--flag value`.
CONSUMED=0
parse_args() {
  local words=()
  while (($#)); do
    case $1 in
      --) words+=("$@"); break ;;
      --*=*) words+=("${1%%=*}" "${1#*=}"); shift ;;
      *) words+=("$1"); shift ;;
    esac
  done
  set -- "${words[@]}"
  while (($#)); do
    case $1 in
      --name) need_value "$@"; NAME=$2; shift 2 ;;
      --zone) need_value "$@"; ZONE=$2; shift 2 ;;
      --project) need_value "$@"; PROJECT=$2; shift 2 ;;
      --dir) need_value "$@"; REMOTE_DIR=$2; shift 2 ;;
      --gpu) GPU=1; shift ;;
      --queued) QUEUED=1; shift ;;
      --dry-run) DRY_RUN=1; shift ;;
      -h | --help) usage; exit 0 ;;
      --) shift; PASSTHROUGH=("$@"); break ;;
      *)
        CONSUMED=0
        if declare -F script_flag >/dev/null; then script_flag "$@"; fi
        if ((CONSUMED > 0)); then
          shift "$CONSUMED"
        elif [[ $1 == -* ]]; then
          die "unknown flag $1 (see $SCRIPT --help)"
        else
          POSITIONAL+=("$1"); shift
        fi
        ;;
    esac
  done
  [[ $GPU =~ ^[01]$ && $QUEUED =~ ^[01]$ ]] || die "FLAXGPT_GPU and FLAXGPT_QUEUED take 0 or 1"
  if ((GPU && QUEUED)); then die "--queued is for TPUs; a GPU VM has no queued resource"; fi
  PROJECT_FLAGS=()
  if [[ -n $PROJECT ]]; then PROJECT_FLAGS=(--project "$PROJECT"); fi
  if [[ ! $REMOTE_DIR =~ ^[A-Za-z0-9_./-]+$ || $REMOTE_DIR == /* || $REMOTE_DIR == *..* ]]; then
    die "--dir must be a plain path relative to the remote home, not '$REMOTE_DIR'"
  fi
}

need_value() {
  if (($# < 2)) || [[ -z $2 || $2 == --* ]]; then die "$1 needs a value (see $SCRIPT --help)"; fi
}

# require VAR FLAG ENV: stop with a clear message when a required setting is empty.
require() {
  if [[ -z ${!1} ]]; then die "$2 is required (or set $3); see $SCRIPT --help"; fi
}

require_target() {
  require NAME --name FLAXGPT_NAME
  require ZONE --zone FLAXGPT_ZONE
}

no_positional() {
  if ((${#POSITIONAL[@]})); then die "unexpected argument '${POSITIONAL[0]}' (see $SCRIPT --help)"; fi
}

no_passthrough() {
  if ((${#PASSTHROUGH[@]})); then die "nothing is taken after -- here (see $SCRIPT --help)"; fi
}

# remote COMMAND [WORKER]: run one shell command line on every TPU worker at once (or worker WORKER),
# or on the GPU VM. Commands start in the remote home directory.
remote() {
  local worker=${2:-all}
  if ((GPU)); then
    run gcloud compute ssh "$NAME" --zone "$ZONE" "${PROJECT_FLAGS[@]}" --command "$1"
  else
    run gcloud compute tpus tpu-vm ssh "$NAME" --zone "$ZONE" "--worker=$worker" "${PROJECT_FLAGS[@]}" \
      --command "$1"
  fi
}

# upload LOCAL REMOTE_PATH: one file to every TPU worker (or the GPU VM), REMOTE_PATH relative to the home.
upload() {
  if ((GPU)); then
    run gcloud compute scp "$1" "$NAME:$2" --zone "$ZONE" "${PROJECT_FLAGS[@]}"
  else
    run gcloud compute tpus tpu-vm scp "$1" "$NAME:$2" --zone "$ZONE" --worker=all "${PROJECT_FLAGS[@]}"
  fi
}

# download REMOTE_PATH LOCAL_DIR WORKER: a folder from one TPU worker (or the GPU VM) into LOCAL_DIR.
download() {
  if ((GPU)); then
    run gcloud compute scp --recurse "$NAME:$1" "$2" --zone "$ZONE" "${PROJECT_FLAGS[@]}"
  else
    run gcloud compute tpus tpu-vm scp --recurse "$NAME:$1" "$2" --zone "$ZONE" "--worker=$3" \
      "${PROJECT_FLAGS[@]}"
  fi
}

# The jax version requirements.lock pins: setup installs jax[tpu] / jax[cuda12] of exactly this version.
jax_version() {
  local v
  v=$(sed -n 's/^jax==\([^ ;#]*\).*/\1/p' "$REPO_ROOT/requirements.lock")
  [[ -n $v ]] || die "requirements.lock pins no jax==VERSION"
  printf '%s\n' "$v"
}

# TPU accelerator types these scripts know, with the runtime (software) version each generation boots
# (https://cloud.google.com/tpu/docs/runtimes). v4/v5p sizes count TensorCores (2 per chip, 4 chips per
# host); v5e (v5litepod) and v6e sizes count chips. More than one host: v4-16+, v5p-16+, v5litepod-16+, v6e-16+.
KNOWN_TPUS="v4-8 v4-16 v4-32 v4-64 v4-128 v4-256 v4-512 v4-1024 v4-2048 v4-4096
v5p-8 v5p-16 v5p-32 v5p-64 v5p-128 v5p-256 v5p-512 v5p-1024 v5p-2048 v5p-4096 v5p-8192 v5p-12288
v5litepod-1 v5litepod-4 v5litepod-8 v5litepod-16 v5litepod-32 v5litepod-64 v5litepod-128 v5litepod-256
v6e-1 v6e-4 v6e-8 v6e-16 v6e-32 v6e-64 v6e-128 v6e-256"

# tpu_type TYPE: the gcloud accelerator type (v5e-N is accepted for v5litepod-N), or a clear error.
tpu_type() {
  local t=$1
  if [[ $t == v5e-* ]]; then t=v5litepod-${t#v5e-}; fi
  if [[ " ${KNOWN_TPUS//$'\n'/ } " != *" $t "* ]]; then
    die "unknown TPU accelerator type '$1'. Known types (v5e-N means v5litepod-N):
$KNOWN_TPUS"
  fi
  printf '%s\n' "$t"
}

# tpu_runtime TYPE: the default runtime version for a known accelerator type.
tpu_runtime() {
  case $1 in
    v4-*) echo tpu-ubuntu2204-base ;;
    v5p-*) echo v2-alpha-tpuv5 ;;
    v5litepod-*) echo v2-alpha-tpuv5-lite ;;
    v6e-*) echo v2-alpha-tpuv6e ;;
    *) die "no runtime version known for '$1'" ;;
  esac
}

tpu_chips() {
  local n=${1##*-}
  case $1 in
    v4-* | v5p-*) echo $((n / 2)) ;;
    *) echo "$n" ;;
  esac
}

# gpu_machine TYPE COUNT: "MACHINE_TYPE ACCELERATOR_TYPE" of the Compute Engine shape with COUNT GPUs of TYPE.
KNOWN_GPUS="h100 (a3-highgpu-Ng), a100 (a2-highgpu-Ng), a100-80gb (a2-ultragpu-Ng), l4 (g2-standard-*)"
gpu_machine() {
  local type=$1 n=$2
  case $n in
    1 | 2 | 4 | 8) ;;
    *) die "--gpus must be 1, 2, 4 or 8 (the GPU counts Compute Engine machine types come in), not '$n'" ;;
  esac
  case $type in
    h100) echo "a3-highgpu-${n}g nvidia-h100-80gb" ;;
    a100) echo "a2-highgpu-${n}g nvidia-tesla-a100" ;;
    a100-80gb) echo "a2-ultragpu-${n}g nvidia-a100-80gb" ;;
    l4)
      local l4=([1]=g2-standard-8 [2]=g2-standard-24 [4]=g2-standard-48 [8]=g2-standard-96)
      echo "${l4[$n]} nvidia-l4"
      ;;
    *) die "unknown --gpu-type '$type'; known: $KNOWN_GPUS" ;;
  esac
}
