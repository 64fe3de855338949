#!/usr/bin/env bash
# Copies configs and data (files or folders of this checkout, or gs:// folders) to every TPU worker (or the
# GPU VM), at the same path under the remote checkout, so a config's relative paths work there unchanged.
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

USAGE="Usage: $SCRIPT --name NAME --zone ZONE [--gpu] [--dry-run] PATH... [gs://BUCKET/FOLDER=DEST...]

  PATH                   a file or folder inside this checkout (e.g. experiments/my_run.py data/personal);
                         all PATHs go in one tar, copied with scp to every worker and unpacked in the
                         remote checkout at the same relative path
  gs://BUCKET/FOLDER=DEST  each worker runs gcloud storage rsync -r gs://BUCKET/FOLDER DIR/DEST itself (the
                         VM's service account needs read access). flaxgpt reads token shards from local
                         paths only (memmap), never from gs:// directly: copy them, or mount the bucket with
                         Cloud Storage FUSE at the same path on every worker."

parse_args "$@"
no_passthrough
require_target
((${#POSITIONAL[@]})) || die "name at least one PATH or gs://...=DEST to copy (see $SCRIPT --help)"

D=$(shquote "$REMOTE_DIR")
local_paths=()
for arg in "${POSITIONAL[@]}"; do
  if [[ $arg == gs://* ]]; then
    [[ $arg == *=* && -n ${arg#*=} ]] ||
      die "$arg: say where it goes, gs://BUCKET/FOLDER=DEST (DEST as the config names it, e.g. data/general)"
    src=${arg%%=*} dest=${arg#*=}
    [[ $dest != /* && $dest != *..* ]] || die "$arg: DEST must be relative to the checkout, without '..'"
    remote "mkdir -p $D/$(shquote "$dest") && gcloud storage rsync -r $(shquote "$src") $D/$(shquote "$dest")"
    continue
  fi
  path=$arg
  if [[ $path == /* ]]; then
    [[ $path == "$REPO_ROOT"/* ]] || die "$path is outside this checkout ($REPO_ROOT): copy it in, or use gs://"
    path=${path#"$REPO_ROOT"/}
  fi
  path=${path#./}
  path=${path%/}
  [[ $path != *..* ]] || die "$arg: give the path inside this checkout without '..'"
  [[ -e $REPO_ROOT/$path ]] || die "$arg: no such file or folder in $REPO_ROOT"
  local_paths+=("$path")
done

if ((${#local_paths[@]})); then
  tarball=${TMPDIR:-/tmp}/flaxgpt-copy-$NAME.tar
  run tar -cf "$tarball" -C "$REPO_ROOT" "${local_paths[@]}"
  upload "$tarball" flaxgpt-copy.tar
  remote "mkdir -p $D && tar -xf flaxgpt-copy.tar -C $D && rm flaxgpt-copy.tar"
fi
