#!/usr/bin/env bash
# Starts `flaxgpt train CONFIG [key=value ...]` on every TPU worker at once (or on the GPU VM), detached,
# each logging to a file on its own disk. This interface (flags, then -- and the flaxgpt arguments) is
# stable: sweep runners call it once per run.
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

USAGE="Usage: $SCRIPT --name NAME --zone ZONE [--gpu] [--env KEY=VALUE]... [--log NAME] [--check-after S]
          [--dry-run] -- CONFIG [key=value ...]

Every worker runs, in its checkout (DIR, default ~/flaxgpt), detached with nohup + setsid:
  .venv/bin/flaxgpt train CONFIG [key=value ...]  >  logs/<time or --log NAME>.log  (logs/latest.log points to it)
and writes its pid to logs/train.pid. A worker refuses to start while its last training is still running.
On a TPU slice every worker runs the same command and jax.distributed finds the others by itself; on a GPU
VM the one process uses all its GPUs.

  --env KEY=VALUE   extra environment for flaxgpt (repeatable), e.g. XLA_FLAGS=... LIBTPU_INIT_ARGS=...
                    (PYTHONUNBUFFERED=1 is always set, so the log is current)
  --log NAME        log to logs/NAME.log instead of logs/train-<date-time>.log
  --check-after S   seconds to wait before checking each worker's process is still alive (default 5;
                    0 skips the check); a worker whose process died prints the end of its log and fails

Run directories: pass run.dir=... on a path every worker sees for multi-host runs (see tpu_setup/README.md)."

ENVS=(PYTHONUNBUFFERED=1)
LOG=""
CHECK_AFTER=5

script_flag() {
  case $1 in
    --env)
      need_value "$@"
      [[ $2 =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "--env takes KEY=VALUE, not '$2'"
      ENVS+=("$2"); CONSUMED=2 ;;
    --log) need_value "$@"; LOG=$2; CONSUMED=2 ;;
    --check-after) need_value "$@"; CHECK_AFTER=$2; CONSUMED=2 ;;
  esac
}

parse_args "$@"
no_positional
require_target
((${#PASSTHROUGH[@]})) || die "give the flaxgpt arguments after --: $SCRIPT ... -- experiments/CONFIG.py [key=value ...]"
[[ $CHECK_AFTER =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--check-after takes seconds, not '$CHECK_AFTER'"
if [[ -n $LOG ]]; then
  [[ $LOG =~ ^[A-Za-z0-9_.-]+$ ]] || die "--log takes a plain file name (letters, digits, _ . -), not '$LOG'"
  log="logs/$LOG.log"
else
  # shellcheck disable=SC2016  # the date is the worker's
  log='logs/train-$(date +%Y%m%d-%H%M%S).log'
fi
config=${PASSTHROUGH[0]}
if [[ $config != *=* && ! -e $REPO_ROOT/$config ]]; then
  note "$config is not in this checkout: it must exist on the workers (tpu_setup/copy.sh)"
fi

D=$(shquote "$REMOTE_DIR")
flaxgpt=$(quote_cmd nohup env "${ENVS[@]}" setsid .venv/bin/flaxgpt train "${PASSTHROUGH[@]}")
# shellcheck disable=SC2016  # expands on the worker
alive='kill -0 "$(cat logs/train.pid)" 2>/dev/null'
steps=(
  "cd $D"
  "mkdir -p logs"
  "if [ -f logs/train.pid ] && $alive; then echo \"\$(hostname): training is still running (pid \$(cat logs/train.pid)); stop it first\" >&2; exit 1; fi"
  "log=$log"
  "ln -sfn \"\${log#logs/}\" logs/latest.log"
  "{ $flaxgpt > \"\$log\" 2>&1 < /dev/null & echo \$! > logs/train.pid; }"
)
if [[ ! $CHECK_AFTER =~ ^0*([.]0*)?$ ]]; then
  steps+=(
    "sleep $CHECK_AFTER"
    "if $alive; then echo \"\$(hostname): training, pid \$(cat logs/train.pid), log $REMOTE_DIR/\$log\"; else echo \"\$(hostname): flaxgpt train exited; the end of $REMOTE_DIR/\$log:\" >&2; tail -n 30 \"\$log\" >&2; exit 1; fi"
  )
fi
command=$(printf ' && %s' "${steps[@]}")
remote "${command# && }"
