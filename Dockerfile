# syntax=docker/dockerfile:1
#
# openplane: one image, every role.
#
#   docker build -t openplane .
#   docker run --rm -p 8000:8000 openplane                    # serve: API + workers, embedded PostgreSQL
#   docker run --rm openplane migrate                         # apply migrations (needs POSTGRES_URI*)
#   docker run --rm openplane worker --host 0.0.0.0 --port 8000   # queue workers (needs REDIS_URI*)
#   docker run --rm -p 8000:8000 openplane up --host 0.0.0.0 --port 8000
#
# Graphs: the image serves /deps/app/langgraph.json (the repository's example graphs
# until you replace them). Mount yours read-only at /deps/app, or build a derived image:
#
#   FROM openplane
#   COPY --chown=root:root . /deps/app
#   # only if your graphs have a package.json of their own:
#   # RUN cd /deps/app && npm ci --omit=dev
#
# and pass `--config /deps/app/langgraph.json` (the working directory is /deps/app, so
# the default ./langgraph.json points there too). Imports such as @langchain/langgraph
# resolve from /deps/app/node_modules first, then from openplane's own copy through the
# /deps/node_modules link. See docs/operations.md.

ARG NODE_IMAGE=node:20-bookworm-slim

# ------------------------------------------------------------------ base: toolchain for the build stages
FROM ${NODE_IMAGE} AS base
# The lockfile and package.json `allowScripts` are written for npm 11; node:20 ships npm 10.
ARG NPM_VERSION=11.19.1
RUN npm install --global --no-audit --no-fund "npm@${NPM_VERSION}" \
 && npm cache clean --force
WORKDIR /src
COPY package.json package-lock.json ./

# Both install steps below run `npm ci` with one narrow fallback (the rule .ci/run uses):
# the lockfile lacks entries for some other platforms' optional native packages, which
# `npm ci` reports as "Missing: NAME@ from lock file" (no version). Only when every
# complaint is of that kind do we run `npm install --no-save`, which installs the same
# locked versions. Drop the fallback once the lockfile has every platform's entries.

# ------------------------------------------------------------------ build: compile TypeScript to dist/
FROM base AS build
RUN --mount=type=cache,target=/root/.npm \
    if ! npm ci --no-audit --no-fund >/tmp/npm-ci.log 2>&1; then \
      cat /tmp/npm-ci.log; \
      { grep -Eq '^npm error Missing: @?[^@ ]+@ from lock file$' /tmp/npm-ci.log \
        && ! grep -Eq '^npm error (Missing: @?[^@ ]+@[^ ]+ from lock file|Invalid: )' /tmp/npm-ci.log; } || exit 1; \
      echo "npm ci refused the lockfile only for unfetchable optional packages: npm install --no-save"; \
      npm install --no-audit --no-fund --no-save; \
    fi
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# `npm run build` (tsc) does not copy the SQL migrations; the runtime reads them from
# dist/storage/migrations. Copying here is harmless if the build script learns to do it.
RUN npm run build \
 && mkdir -p dist/storage/migrations \
 && cp src/storage/migrations/*.sql dist/storage/migrations/ \
 && ls dist/bin/openplane.js dist/storage/migrations/*.sql

# ------------------------------------------------------------------ prod-deps: runtime node_modules only
FROM base AS prod-deps
RUN --mount=type=cache,target=/root/.npm \
    if ! npm ci --omit=dev --no-audit --no-fund >/tmp/npm-ci.log 2>&1; then \
      cat /tmp/npm-ci.log; \
      { grep -Eq '^npm error Missing: @?[^@ ]+@ from lock file$' /tmp/npm-ci.log \
        && ! grep -Eq '^npm error (Missing: @?[^@ ]+@[^ ]+ from lock file|Invalid: )' /tmp/npm-ci.log; } || exit 1; \
      echo "npm ci refused the lockfile only for unfetchable optional packages: npm install --no-save"; \
      npm install --omit=dev --no-audit --no-fund --no-save; \
    fi

# ------------------------------------------------------------------ runtime
FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="openplane" \
      org.opencontainers.image.description="Self-hosted data plane for LangGraph agents: the LangGraph Server API on Postgres and Redis" \
      org.opencontainers.image.licenses="MIT"

# tini is PID 1: it forwards SIGTERM to node (which drains, see BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS)
# and reaps orphaned children (embedded PostgreSQL, the listener's process driver).
# Debian stable revisions are fixed within a release; the base image tag pins the release.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*

# NODE_OPTIONS: the Node flags of src/lib/node-flags.ts (a larger young generation). A
# NODE_OPTIONS set at run time replaces this one: keep --max-semi-space-size=<MiB> in it.
ENV NODE_ENV=production \
    NODE_OPTIONS="--max-semi-space-size=64" \
    OPENPLANE_DATA_DIR=/var/lib/openplane

WORKDIR /opt/openplane
# Application files belong to root and are read-only for the runtime user (uid 1000, "node").
COPY --from=prod-deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY langgraph.json /deps/app/langgraph.json
COPY examples /deps/app/examples

# /deps/node_modules lets graphs under /deps/app import openplane's copies of
# @langchain/langgraph, @langchain/core, ... without installing anything.
# /var/lib/openplane is the only path the runtime writes to (embedded PostgreSQL data,
# when no POSTGRES_URI* is set); tsx's transform cache goes to /tmp.
RUN ln -s /opt/openplane/node_modules /deps/node_modules \
 && ln -s /opt/openplane/bin/openplane.mjs /usr/local/bin/openplane \
 && mkdir -p /var/lib/openplane \
 && chown 1000:1000 /var/lib/openplane \
 && node /opt/openplane/bin/openplane.mjs --version

USER 1000:1000
WORKDIR /deps/app
EXPOSE 8000

# `serve`, `up` and `worker` answer GET /ok (under MOUNT_PREFIX, if set) on the port the
# default CMD uses when started with `--port 8000`. `migrate` serves no HTTP: run it with
# --no-healthcheck (compose disables it).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "const p = (process.env.MOUNT_PREFIX || '').replace(/^\\/+|\\/+$/g, ''); fetch('http://127.0.0.1:8000' + (p ? '/' + p : '') + '/ok').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

ENTRYPOINT ["/usr/bin/tini", "--", "node", "/opt/openplane/bin/openplane.mjs"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
