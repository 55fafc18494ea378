#!/usr/bin/env bash
# Debian packages Gantry's tests talk to for real: Docker Engine (and busybox-static, from
# which the test image is made without a registry).
set -euo pipefail
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v busybox >/dev/null || need+=(busybox-static)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
echo "dependencies present: $(dockerd --version)"
