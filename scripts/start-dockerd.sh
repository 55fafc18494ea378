#!/usr/bin/env bash
# Starts a Docker Engine on /var/run/docker.sock unless one already answers, then builds the
# local test image.
set -euo pipefail
if ! docker info >/dev/null 2>&1; then
  log=${TMPDIR:-/tmp}/gantry-dockerd.log
  nohup dockerd --host unix:///var/run/docker.sock >"$log" 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; its log:" >&2; tail -50 "$log" >&2; exit 1; }
fi
echo "Docker Engine $(docker version --format '{{.Server.Version}}') is up"
bash "$(dirname "$0")/test-image.sh"
