#!/usr/bin/env bash
# System packages the checks need beyond Node (Debian 12): Chromium for the browser
# test, redis-server for the fleet tests (each test starts its own on a free loopback
# port) and openssl for their throwaway TLS certificates; with no argument also buildah and debootstrap for the image check,
# Go and Sprig for the chart renderer.
#
#   scripts/install-system-deps.sh          everything .ci/run needs
#   scripts/install-system-deps.sh --test   what `npm test` needs (`npm run setup`)
#
# Idempotent: installs only what is missing, and says so before it does.
set -euo pipefail
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v redis-server >/dev/null || need+=(redis-server)
command -v openssl >/dev/null || need+=(openssl)
if [ "${1:-}" != "--test" ]; then
  command -v buildah >/dev/null || need+=(buildah)
  command -v debootstrap >/dev/null || need+=(debootstrap)
  command -v go >/dev/null || need+=(golang-go)
  [ -d /usr/share/gocode/src/github.com/Masterminds/sprig ] || need+=(golang-github-masterminds-sprig-dev)
  [ -d /usr/share/gocode/src/gopkg.in/yaml.v3 ] || need+=(golang-gopkg-yaml.v3-dev)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "missing Debian packages; install them as root: apt-get install ${need[*]}" >&2; exit 1; fi
  echo "installing Debian packages: ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
