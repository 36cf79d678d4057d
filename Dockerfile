# sts-vending container image.
#
# BASE_IMAGE must be a Debian-based Node 24 image with node and npm on PATH
# (the official node image layout). CI builds against a local stand-in built
# by scripts/test-image.sh; nothing in this file knows about that network.
#
# Signals: node runs as PID 1 in exec form. PID 1 gets no default signal
# dispositions from the kernel, but src/server.ts installs SIGTERM/SIGINT
# handlers, so SIGTERM starts the graceful shutdown (readyz 503, drain, exit 0)
# and a second signal forces exit. No init (tini/dumb-init) is needed: the
# service spawns no children, so there are no zombies to reap. Use
# `docker run --init` if that ever changes.
ARG BASE_IMAGE=node:24-bookworm-slim

# --- build: dev dependencies, tsc, then the server bundled into dist/server.js --
FROM ${BASE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no dependency needs an install script on Node 24
# (@alicloud/openapi-core's postinstall is a no-op there).
RUN --mount=type=cache,target=/root/.npm,sharing=locked \
    npm ci --ignore-scripts --no-audit --no-fund
# Only src/ is compiled (tsconfig.json's rootDir and include): devkit/, bench/ and
# test/ are not in the build context at all (.dockerignore). The bundling step
# (scripts/bundle-server.mjs) makes the start-up read one file, not hundreds.
COPY tsconfig.json ./
COPY scripts/bundle-server.mjs ./scripts/
COPY src ./src
RUN npm run build

# --- deps: production dependencies only --------------------------------------
# --omit=optional leaves out what only CLI commands load on demand (ali-oss for
# verify, the RAM SDK for provision): the server and the sidecar never need them,
# and a command whose package is absent says so.
FROM ${BASE_IMAGE} AS deps
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm,sharing=locked \
    npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund

# --- runtime ------------------------------------------------------------------
# No RUN in this stage: files stay root-owned and read-only to the service
# user, and no npm cache or build tooling lands in the final layers.
FROM ${BASE_IMAGE} AS runtime
ENV NODE_ENV=production \
    PORT=3000 \
    HOST=0.0.0.0 \
    STS_VENDING_CONFIG=/etc/sts-vending/config.yaml
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json openapi.yaml ./
# uid/gid 1000 is the official image's "node" user; numeric so that
# Kubernetes runAsNonRoot can verify it without reading /etc/passwd.
USER 1000:1000
EXPOSE 3000
# The config file is mounted at STS_VENDING_CONFIG; credentials come from the
# environment (AccessKey from a Secret, or RRSA). Nothing secret is baked in.
ENTRYPOINT ["node", "dist/server.js"]
