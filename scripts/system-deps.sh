#!/bin/sh
# Install the Debian packages the tests and features need, when their commands are missing.
# Run by `make` (the venv stamp); needs root for apt-get, else says what to install.
#   node, npm  - validating the AsyncAPI document (@asyncapi/parser), Azurite (Azure Blob tests)
#   buildah    - building OCI images of environments (daemonless)
#   rclone, fusermount3 (fuse3) - read-only FUSE mounts of S3/Azure datastores in mount mode
set -eu
missing=""
need() { command -v "$1" >/dev/null 2>&1 || missing="$missing $2"; }
need node nodejs
need npm npm
need buildah buildah
need rclone rclone
need fusermount3 fuse3
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "headrace needs these Debian packages:$missing (run: sudo apt-get install$missing)" >&2
  exit 1
fi
echo "installing Debian packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 - the list is ours, one word per package
apt-get install -y -qq --no-install-recommends $missing >/dev/null
