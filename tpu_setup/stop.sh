#!/usr/bin/env bash
# Stops training on every TPU worker (or the GPU VM): SIGTERM first, on which flaxgpt saves a checkpoint and
# exits; SIGKILL only with --kill, after the wait.
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

USAGE="Usage: $SCRIPT --name NAME --zone ZONE [--gpu] [--timeout S] [--kill] [--dry-run]

On every worker at once: SIGTERM to the process in DIR/logs/train.pid (flaxgpt saves a checkpoint, then
exits; on a slice all workers must get it, as they save together), then waits up to --timeout seconds
(default 600) for it to exit.
  --kill   if it is still running after the wait, SIGKILL its process group (steps since the last
           checkpoint are lost)"

TIMEOUT=600
KILL=0

script_flag() {
  case $1 in
    --timeout) need_value "$@"; TIMEOUT=$2; CONSUMED=2 ;;
    --kill) KILL=1; CONSUMED=1 ;;
  esac
}

parse_args "$@"
no_positional
no_passthrough
require_target
[[ $TIMEOUT =~ ^[0-9]+$ ]] || die "--timeout takes whole seconds, not '$TIMEOUT'"

# shellcheck disable=SC2016  # $pid and $(hostname) expand on the worker
if ((KILL)); then
  late='kill -KILL -- "-$pid" && echo "$(hostname): SIGKILL sent to process group $pid"'
else
  # shellcheck disable=SC2016
  late='echo "$(hostname): still running after '"$TIMEOUT"' s (pid $pid); wait, or rerun with --kill" >&2; exit 1'
fi
command="cd $(shquote "$REMOTE_DIR") && if [ -f logs/train.pid ] && pid=\$(cat logs/train.pid) && kill -0 \"\$pid\" 2>/dev/null; then"
command+=" kill -TERM \"\$pid\" && echo \"\$(hostname): SIGTERM sent to \$pid, waiting for its checkpoint\""
command+=" && i=0 && while kill -0 \"\$pid\" 2>/dev/null && [ \$i -lt $((TIMEOUT * 2)) ]; do sleep 0.5; i=\$((i + 1)); done"
command+=" && if kill -0 \"\$pid\" 2>/dev/null; then $late; else echo \"\$(hostname): stopped\"; fi;"
command+=" else echo \"\$(hostname): no training running\"; fi"
remote "$command"
