{{/*
Names, labels, store wiring and value checks shared by every template.
*/}}

{{- define "openplane.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Resource name prefix, at most 46 characters so "-listener-headless"-style suffixes stay under 63. */}}
{{- define "openplane.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 46 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 46 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 46 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "openplane.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels. Call with (dict "ctx" $ "component" "api"). Never change these: selectors are immutable. */}}
{{- define "openplane.selectorLabels" -}}
app.kubernetes.io/name: {{ include "openplane.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Labels on every object. Call with (dict "ctx" $ "component" "api"). */}}
{{- define "openplane.labels" -}}
{{ include "openplane.selectorLabels" . }}
helm.sh/chart: {{ include "openplane.chart" .ctx }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: openplane
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* metadata.annotations block content for every object (commonAnnotations), or nothing. */}}
{{- define "openplane.commonAnnotations" -}}
{{- with .Values.commonAnnotations }}
{{- toYaml . }}
{{- end }}
{{- end -}}

{{- define "openplane.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "openplane.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "openplane.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "openplane.configMapName" -}}
{{- printf "%s-config" (include "openplane.fullname" .) -}}
{{- end -}}

{{/* ------------------------------------------------------------------ PostgreSQL */}}

{{- define "openplane.postgres.host" -}}
{{- printf "%s-postgres.%s.svc.%s" (include "openplane.fullname" .) .Release.Namespace .Values.clusterDomain -}}
{{- end -}}

{{/* Secret of the bundled PostgreSQL's password, or of the external URI when given inline. */}}
{{- define "openplane.postgres.secretName" -}}
{{- if .Values.postgres.enabled -}}
{{- default (printf "%s-postgres" (include "openplane.fullname" .)) .Values.postgres.auth.existingSecret -}}
{{- else -}}
{{- default (printf "%s-postgres" (include "openplane.fullname" .)) .Values.postgres.external.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "openplane.postgres.secretKey" -}}
{{- if .Values.postgres.enabled -}}
{{- if .Values.postgres.auth.existingSecret }}{{ .Values.postgres.auth.existingSecretPasswordKey }}{{ else }}password{{ end -}}
{{- else -}}
{{- if .Values.postgres.external.existingSecret }}{{ .Values.postgres.external.existingSecretKey }}{{ else }}uri{{ end -}}
{{- end -}}
{{- end -}}

{{/*
The bundled PostgreSQL's password: the value given, else the one already stored in the
release's Secret (so upgrades keep it), else a new random one. `helm template` cannot
look up, so it shows a random value: that is why checksum/secrets is computed from the
values (openplane.secretInputs), never from this.
*/}}
{{- define "openplane.postgres.password" -}}
{{- if .Values.postgres.auth.password -}}
{{- .Values.postgres.auth.password -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (printf "%s-postgres" (include "openplane.fullname" .)) -}}
{{- if and $existing $existing.data (hasKey $existing.data "password") -}}
{{- index $existing.data "password" | b64dec -}}
{{- else -}}
{{- randAlphaNum 32 -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* ------------------------------------------------------------------ Redis */}}

{{- define "openplane.redis.host" -}}
{{- printf "%s-redis.%s.svc.%s" (include "openplane.fullname" .) .Release.Namespace .Values.clusterDomain -}}
{{- end -}}

{{- define "openplane.redis.secretName" -}}
{{- if .Values.redis.enabled -}}
{{- default (printf "%s-redis" (include "openplane.fullname" .)) .Values.redis.auth.existingSecret -}}
{{- else -}}
{{- default (printf "%s-redis" (include "openplane.fullname" .)) .Values.redis.external.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "openplane.redis.secretKey" -}}
{{- if .Values.redis.enabled -}}
{{- if .Values.redis.auth.existingSecret }}{{ .Values.redis.auth.existingSecretPasswordKey }}{{ else }}password{{ end -}}
{{- else -}}
{{- if .Values.redis.external.existingSecret }}{{ .Values.redis.external.existingSecretKey }}{{ else }}uri{{ end -}}
{{- end -}}
{{- end -}}

{{- define "openplane.redis.password" -}}
{{- if .Values.redis.auth.password -}}
{{- .Values.redis.auth.password -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (printf "%s-redis" (include "openplane.fullname" .)) -}}
{{- if and $existing $existing.data (hasKey $existing.data "password") -}}
{{- index $existing.data "password" | b64dec -}}
{{- else -}}
{{- randAlphaNum 32 -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* ------------------------------------------------------------------ environment */}}

{{/*
PostgreSQL env. Bundled: the password comes from its Secret and the kubelet builds the
URI ($(VAR) expansion), so no password is ever rendered into a Deployment. External:
POSTGRES_URI_CUSTOM from a Secret. Call with (dict "ctx" $ "hook" false); with hook=true
an inline external URI is read from the migration hook's own Secret, because the release's
Secrets do not exist yet at pre-install.
*/}}
{{- define "openplane.postgresEnv" -}}
{{- $ := .ctx -}}
{{- if $.Values.postgres.enabled }}
- name: BUNDLED_POSTGRES_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "openplane.postgres.secretName" $ }}
      key: {{ include "openplane.postgres.secretKey" $ }}
- name: POSTGRES_URI
  value: {{ printf "postgres://%s:$(BUNDLED_POSTGRES_PASSWORD)@%s:5432/%s?sslmode=disable" $.Values.postgres.auth.username (include "openplane.postgres.host" $) $.Values.postgres.auth.database | quote }}
{{- else }}
- name: POSTGRES_URI_CUSTOM
  valueFrom:
    secretKeyRef:
      {{- if and .hook (not $.Values.postgres.external.existingSecret) }}
      name: {{ printf "%s-migrate" (include "openplane.fullname" $) }}
      key: uri
      {{- else }}
      name: {{ include "openplane.postgres.secretName" $ }}
      key: {{ include "openplane.postgres.secretKey" $ }}
      {{- end }}
{{- end }}
{{- end -}}

{{- define "openplane.redisEnv" -}}
{{- if .Values.redis.enabled }}
{{- if .Values.redis.auth.enabled }}
- name: BUNDLED_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "openplane.redis.secretName" . }}
      key: {{ include "openplane.redis.secretKey" . }}
- name: REDIS_URI
  value: {{ printf "redis://:$(BUNDLED_REDIS_PASSWORD)@%s:6379/0" (include "openplane.redis.host" .) | quote }}
{{- else }}
- name: REDIS_URI
  value: {{ printf "redis://%s:6379/0" (include "openplane.redis.host" .) | quote }}
{{- end }}
{{- else }}
- name: REDIS_URI_CUSTOM
  valueFrom:
    secretKeyRef:
      name: {{ include "openplane.redis.secretName" . }}
      key: {{ include "openplane.redis.secretKey" . }}
{{- end }}
{{- end -}}

{{- define "openplane.langsmithEnv" -}}
{{- $ls := .Values.tracing.langsmith -}}
{{- if $ls.enabled }}
{{- if $ls.existingSecret }}
- name: LANGSMITH_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $ls.existingSecret }}
      key: {{ $ls.existingSecretApiKeyKey }}
      optional: true
- name: LANGSMITH_RUNS_ENDPOINTS
  valueFrom:
    secretKeyRef:
      name: {{ $ls.existingSecret }}
      key: {{ $ls.existingSecretRunsEndpointsKey }}
      optional: true
{{- else }}
{{- if $ls.apiKey }}
- name: LANGSMITH_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ printf "%s-langsmith" (include "openplane.fullname" .) }}
      key: api_key
{{- end }}
{{- if $ls.runsEndpoints }}
- name: LANGSMITH_RUNS_ENDPOINTS
  valueFrom:
    secretKeyRef:
      name: {{ printf "%s-langsmith" (include "openplane.fullname" .) }}
      key: runs_endpoints
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* ------------------------------------------------------------------ built-in auth */}}

{{- define "openplane.auth.enabled" -}}
{{- if eq .Values.auth.type "api_key" }}true{{ end -}}
{{- end -}}

{{- define "openplane.auth.secretName" -}}
{{- default (printf "%s-auth" (include "openplane.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}

{{- define "openplane.auth.secretKey" -}}
{{- if .Values.auth.existingSecret }}{{ .Values.auth.existingSecretKey }}{{ else }}api_keys{{ end -}}
{{- end -}}

{{/* Where `auth.mountAs: file` puts the keys (OPENPLANE_API_KEYS_FILE). */}}
{{- define "openplane.auth.keysFile" -}}
/etc/openplane/auth/api_keys
{{- end -}}

{{/*
LANGGRAPH_AUTH_TYPE and the keys (a file from the Secret, or OPENPLANE_API_KEYS from it).
Nothing with auth.type=noop, openplane's default: an explicit noop would override a
LANGGRAPH_AUTH_TYPE the operator sets through config.extraEnvFrom or langgraph.json `env`.
*/}}
{{- define "openplane.authEnv" -}}
{{- if include "openplane.auth.enabled" . }}
- name: LANGGRAPH_AUTH_TYPE
  value: "api_key"
{{- if eq .Values.auth.mountAs "env" }}
- name: OPENPLANE_API_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ include "openplane.auth.secretName" . }}
      key: {{ include "openplane.auth.secretKey" . }}
{{- else }}
- name: OPENPLANE_API_KEYS_FILE
  value: {{ include "openplane.auth.keysFile" . | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The keys file's volumeMount and volume (auth.mountAs=file), or nothing. */}}
{{- define "openplane.authVolumeMount" -}}
{{- if and (include "openplane.auth.enabled" .) (eq .Values.auth.mountAs "file") }}
- name: api-keys
  mountPath: {{ include "openplane.auth.keysFile" . | dir }}
  readOnly: true
{{- end }}
{{- end -}}

{{- define "openplane.authVolume" -}}
{{- if and (include "openplane.auth.enabled" .) (eq .Values.auth.mountAs "file") }}
- name: api-keys
  secret:
    secretName: {{ include "openplane.auth.secretName" . }}
    items:
      - key: {{ include "openplane.auth.secretKey" . }}
        path: {{ include "openplane.auth.keysFile" . | base }}
    defaultMode: 288 # 0440: the pods' fsGroup reads it
{{- end }}
{{- end -}}

{{/* ------------------------------------------------------------------ listener */}}

{{/* "true" when the listener runs its default deployment (langgraph.json): no control plane, no manifest. */}}
{{- define "openplane.listener.servesDefault" -}}
{{- if and (not .Values.listener.controlPlane.url) (not .Values.listener.manifest.enabled) }}true{{ end -}}
{{- end -}}

{{/* Where listener.manifest is mounted (OPENPLANE_MANIFEST). */}}
{{- define "openplane.listener.manifestFile" -}}
/etc/openplane/manifest/deployments.yaml
{{- end -}}

{{- define "openplane.listener.manifestConfigMapName" -}}
{{- default (printf "%s-manifest" (include "openplane.fullname" .)) .Values.listener.manifest.existingConfigMap -}}
{{- end -}}

{{/*
The listener's own settings (docs/listener.md): its source of deployments and the tuning of
the servers it runs. `openplane up` keeps the control-plane and manifest variables from the
servers it starts.
*/}}
{{- define "openplane.listenerEnv" -}}
{{- $l := .Values.listener -}}
- name: OPENPLANE_DATA_RETENTION_SECS
  value: {{ $l.dataRetentionSecs | int64 | quote }}
- name: OPENPLANE_GATEWAY_HOLD_SECS
  value: {{ $l.gatewayHoldSecs | int64 | quote }}
- name: OPENPLANE_RESTART_BACKOFF_MS
  value: {{ $l.restartBackoffMs | int64 | quote }}
- name: OPENPLANE_RESTART_MAX_FAILURES
  value: {{ $l.restartMaxFailures | int64 | quote }}
- name: OPENPLANE_HEALTH_TIMEOUT_SECS
  value: {{ $l.healthTimeoutSecs | int64 | quote }}
{{- with $l.controlPlane }}
{{- if .url }}
- name: OPENPLANE_CONTROL_PLANE_URL
  value: {{ .url | quote }}
- name: OPENPLANE_LISTENER_ID
  value: {{ .listenerId | quote }}
{{- with .tenantId }}
- name: OPENPLANE_TENANT_ID
  value: {{ . | quote }}
{{- end }}
{{- if .existingSecret }}
- name: OPENPLANE_CONTROL_PLANE_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret }}
      key: {{ .existingSecretKey }}
{{- end }}
- name: OPENPLANE_CONTROL_PLANE_POLL_SECS
  value: {{ .pollSecs | int64 | quote }}
{{- end }}
{{- end }}
{{- if $l.manifest.enabled }}
- name: OPENPLANE_MANIFEST
  value: {{ include "openplane.listener.manifestFile" . | quote }}
- name: OPENPLANE_MANIFEST_POLL_SECS
  value: {{ $l.manifest.pollSecs | int64 | quote }}
{{- end }}
{{- end -}}

{{/*
Full env of an openplane container. Call with
(dict "ctx" $ "jobs" <N_JOBS_PER_WORKER> "extraEnv" <component extraEnv> "auth" <bool>);
auth=true for the containers that serve the API (openplane.authEnv).
*/}}
{{- define "openplane.env" -}}
{{- $ := .ctx -}}
- name: N_JOBS_PER_WORKER
  value: {{ .jobs | int64 | quote }}
- name: LANGGRAPH_API_URL
  value: {{ include "openplane.apiUrl" $ | quote }}
{{- include "openplane.postgresEnv" (dict "ctx" $ "hook" false) }}
{{- include "openplane.redisEnv" $ }}
{{- include "openplane.langsmithEnv" $ }}
{{- if .auth }}
{{- include "openplane.authEnv" $ }}
{{- end }}
{{- with $.Values.config.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- with .extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "openplane.envFrom" -}}
- configMapRef:
    name: {{ include "openplane.configMapName" . }}
{{- with .Values.config.extraEnvFrom }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Base URL of the API inside the cluster (LANGGRAPH_API_URL), MOUNT_PREFIX included. */}}
{{- define "openplane.apiUrl" -}}
{{- if .Values.config.apiUrl -}}
{{- .Values.config.apiUrl -}}
{{- else -}}
{{- printf "http://%s-api.%s.svc.%s:%d%s" (include "openplane.fullname" .) .Release.Namespace .Values.clusterDomain (int .Values.api.service.port) (include "openplane.mountPrefix" .) -}}
{{- end -}}
{{- end -}}

{{/* MOUNT_PREFIX normalised to "/path" (or empty). */}}
{{- define "openplane.mountPrefix" -}}
{{- $p := trimAll "/" (default "" .Values.config.mountPrefix) -}}
{{- if $p }}/{{ $p }}{{ end -}}
{{- end -}}

{{/*
A probe from values, its HTTP path moved under MOUNT_PREFIX. Call with
(dict "ctx" $ "probe" $c.readinessProbe); renders nothing for an empty probe.
*/}}
{{- define "openplane.probe" -}}
{{- $probe := deepCopy (default (dict) .probe) -}}
{{- $prefix := include "openplane.mountPrefix" .ctx -}}
{{- if and $prefix $probe.httpGet $probe.httpGet.path -}}
{{- $_ := set $probe.httpGet "path" (printf "%s%s" $prefix $probe.httpGet.path) -}}
{{- end -}}
{{- if $probe }}{{ toYaml $probe }}{{ end -}}
{{- end -}}

{{/* N_JOBS_PER_WORKER of the API pods: 0 when separate workers run the queue. */}}
{{- define "openplane.apiJobs" -}}
{{- if .Values.worker.enabled }}0{{ else }}{{ .Values.config.jobsPerWorker | int64 }}{{ end -}}
{{- end -}}

{{/* ------------------------------------------------------------------ pod template pieces */}}

{{/* Values that end up in Secrets. Their hash rolls the pods when one changes (never a random value). */}}
{{- define "openplane.secretInputs" -}}
{{- $v := .Values -}}
{{- dict "pgAuth" $v.postgres.auth "pgExternal" $v.postgres.external "redisAuth" $v.redis.auth "redisExternal" $v.redis.external "langsmith" $v.tracing.langsmith | toJson -}}
{{- end -}}

{{/*
Pod annotations of every openplane workload: deterministic checksums plus the component's
own. Call with (dict "ctx" $ "extra" <podAnnotations> "checksums" <dict name -> input>);
each entry of checksums adds checksum/<name> (the API keys roll only the pods that use them).
*/}}
{{- define "openplane.podAnnotations" -}}
checksum/config: {{ include (print .ctx.Template.BasePath "/configmap.yaml") .ctx | sha256sum }}
checksum/secrets: {{ include "openplane.secretInputs" .ctx | sha256sum }}
{{- range $name, $input := .checksums }}
checksum/{{ $name }}: {{ $input | sha256sum }}
{{- end }}
{{- with .extra }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "openplane.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end -}}

{{/* ------------------------------------------------------------------ validation */}}

{{/*
Cross-field checks that values.schema.json cannot express. Every problem is collected
and reported in one failure, so a user fixes them all in one pass.
*/}}
{{- define "openplane.validateValues" -}}
{{- $msgs := list -}}
{{- $v := .Values -}}
{{- $grace := int $v.config.shutdownGracePeriodSecs -}}

{{- /* PostgreSQL */ -}}
{{- $pgx := $v.postgres.external -}}
{{- if $v.postgres.enabled -}}
  {{- if or $pgx.uri $pgx.existingSecret -}}
    {{- $msgs = append $msgs "postgres.external.uri/existingSecret are set but postgres.enabled=true: set postgres.enabled=false to use your own PostgreSQL" -}}
  {{- end -}}
  {{- if and $v.postgres.auth.password (not (regexMatch "^[A-Za-z0-9._~-]+$" $v.postgres.auth.password)) -}}
    {{- $msgs = append $msgs "postgres.auth.password: use URL-safe characters only (A-Z a-z 0-9 . _ ~ -): it is placed in a URI as is" -}}
  {{- end -}}
  {{- if and $v.postgres.auth.password $v.postgres.auth.existingSecret -}}
    {{- $msgs = append $msgs "postgres.auth: set password or existingSecret, not both" -}}
  {{- end -}}
{{- else -}}
  {{- if and (not $pgx.uri) (not $pgx.existingSecret) -}}
    {{- $msgs = append $msgs "postgres.enabled=false needs postgres.external.uri or postgres.external.existingSecret (passed as POSTGRES_URI_CUSTOM)" -}}
  {{- end -}}
  {{- if and $pgx.uri $pgx.existingSecret -}}
    {{- $msgs = append $msgs "postgres.external: set uri or existingSecret, not both" -}}
  {{- end -}}
  {{- if and $pgx.uri (not (regexMatch "^postgres(ql)?://" $pgx.uri)) -}}
    {{- $msgs = append $msgs "postgres.external.uri must start with postgres:// or postgresql://" -}}
  {{- end -}}
{{- end -}}

{{- /* Redis */ -}}
{{- $rx := $v.redis.external -}}
{{- if $v.redis.enabled -}}
  {{- if or $rx.uri $rx.existingSecret -}}
    {{- $msgs = append $msgs "redis.external.uri/existingSecret are set but redis.enabled=true: set redis.enabled=false to use your own Redis" -}}
  {{- end -}}
  {{- if and $v.redis.auth.password (not (regexMatch "^[A-Za-z0-9._~-]+$" $v.redis.auth.password)) -}}
    {{- $msgs = append $msgs "redis.auth.password: use URL-safe characters only (A-Z a-z 0-9 . _ ~ -): it is placed in a URI as is" -}}
  {{- end -}}
  {{- if and $v.redis.auth.password $v.redis.auth.existingSecret -}}
    {{- $msgs = append $msgs "redis.auth: set password or existingSecret, not both" -}}
  {{- end -}}
  {{- if and (not $v.redis.auth.enabled) (or $v.redis.auth.password $v.redis.auth.existingSecret) -}}
    {{- $msgs = append $msgs "redis.auth.password/existingSecret are set but redis.auth.enabled=false" -}}
  {{- end -}}
{{- else -}}
  {{- if and (not $rx.uri) (not $rx.existingSecret) -}}
    {{- $msgs = append $msgs "redis.enabled=false needs redis.external.uri or redis.external.existingSecret (passed as REDIS_URI_CUSTOM): API and workers run apart, so they need Redis" -}}
  {{- end -}}
  {{- if and $rx.uri $rx.existingSecret -}}
    {{- $msgs = append $msgs "redis.external: set uri or existingSecret, not both" -}}
  {{- end -}}
  {{- if and $rx.uri (not (regexMatch "^rediss?://" $rx.uri)) -}}
    {{- $msgs = append $msgs "redis.external.uri must start with redis:// or rediss://" -}}
  {{- end -}}
{{- end -}}

{{- /* Someone must execute runs. */ -}}
{{- if and (not $v.worker.enabled) (eq (int $v.config.jobsPerWorker) 0) -}}
  {{- $msgs = append $msgs "worker.enabled=false and config.jobsPerWorker=0: nothing would execute runs (enable the workers or give the API pods jobs)" -}}
{{- end -}}
{{- if and $v.worker.enabled (eq (int $v.config.jobsPerWorker) 0) -}}
  {{- $msgs = append $msgs "config.jobsPerWorker=0 with worker.enabled=true: the workers would execute nothing" -}}
{{- end -}}

{{- /* Drain: Kubernetes must not SIGKILL before openplane hands runs back (its own deadline is grace + 15 s). */ -}}
{{- $components := list (list "api" $v.api true) (list "worker" $v.worker $v.worker.enabled) (list "listener" $v.listener $v.listener.enabled) -}}
{{- range $components -}}
  {{- $name := index . 0 -}}{{- $c := index . 1 -}}{{- $on := index . 2 -}}
  {{- if $on -}}
    {{- $preStop := int (default 0 $c.preStopSleepSeconds) -}}
    {{- $need := add $grace 15 $preStop -}}
    {{- if lt (int $c.terminationGracePeriodSeconds) (int $need) -}}
      {{- $msgs = append $msgs (printf "%s.terminationGracePeriodSeconds=%d is too short: it must be at least config.shutdownGracePeriodSecs (%d) + 15 + preStopSleepSeconds (%d) = %d, or Kubernetes kills runs before they are handed back" $name (int $c.terminationGracePeriodSeconds) $grace $preStop (int $need)) -}}
    {{- end -}}
  {{- end -}}
{{- end -}}

{{- /* Autoscaling and disruption budgets. */ -}}
{{- range (list (list "api" $v.api true) (list "worker" $v.worker $v.worker.enabled)) -}}
  {{- $name := index . 0 -}}{{- $c := index . 1 -}}{{- $on := index . 2 -}}
  {{- if $on -}}
    {{- if and $c.autoscaling.enabled (gt (int $c.autoscaling.minReplicas) (int $c.autoscaling.maxReplicas)) -}}
      {{- $msgs = append $msgs (printf "%s.autoscaling: minReplicas (%d) is greater than maxReplicas (%d)" $name (int $c.autoscaling.minReplicas) (int $c.autoscaling.maxReplicas)) -}}
    {{- end -}}
    {{- if $c.pdb.enabled -}}
      {{- $hasMin := not (kindIs "invalid" $c.pdb.minAvailable) -}}
      {{- $hasMax := not (kindIs "invalid" $c.pdb.maxUnavailable) -}}
      {{- if and $hasMin $hasMax -}}
        {{- $msgs = append $msgs (printf "%s.pdb: set minAvailable or maxUnavailable, not both (set the other to null)" $name) -}}
      {{- else if and (not $hasMin) (not $hasMax) -}}
        {{- $msgs = append $msgs (printf "%s.pdb: set minAvailable or maxUnavailable" $name) -}}
      {{- end -}}
      {{- $replicas := ternary $c.autoscaling.minReplicas $c.replicaCount $c.autoscaling.enabled | int -}}
      {{- $minIsNumber := or (kindIs "float64" $c.pdb.minAvailable) (kindIs "int64" $c.pdb.minAvailable) (kindIs "int" $c.pdb.minAvailable) -}}
      {{- if and $hasMin (not $hasMax) $minIsNumber (ge (int $c.pdb.minAvailable) $replicas) -}}
        {{- $msgs = append $msgs (printf "%s.pdb.minAvailable=%d with %d replica(s) blocks every voluntary eviction (node drains hang): raise the replicas or lower minAvailable" $name (int $c.pdb.minAvailable) $replicas) -}}
      {{- end -}}
    {{- end -}}
  {{- end -}}
{{- end -}}

{{- /* Tracing. */ -}}
{{- $ls := $v.tracing.langsmith -}}
{{- if $ls.enabled -}}
  {{- if and $ls.existingSecret (or $ls.apiKey $ls.runsEndpoints) -}}
    {{- $msgs = append $msgs "tracing.langsmith: set existingSecret or apiKey/runsEndpoints, not both" -}}
  {{- end -}}
  {{- if and (not $ls.existingSecret) (not $ls.apiKey) (not $ls.runsEndpoints) -}}
    {{- $msgs = append $msgs "tracing.langsmith.enabled=true needs apiKey, runsEndpoints or existingSecret" -}}
  {{- end -}}
  {{- if and $ls.endpoint (hasPrefix "{" (trim $ls.runsEndpoints)) -}}
    {{- $msgs = append $msgs "tracing.langsmith: runsEndpoints in object form cannot be combined with endpoint (the LangSmith SDKs reject LANGSMITH_RUNS_ENDPOINTS {...} together with LANGSMITH_ENDPOINT): leave endpoint empty or use the array form" -}}
  {{- end -}}
  {{- if and $ls.runsEndpoints (not (or (hasPrefix "{" (trim $ls.runsEndpoints)) (hasPrefix "[" (trim $ls.runsEndpoints)))) -}}
    {{- $msgs = append $msgs "tracing.langsmith.runsEndpoints must be JSON: an object {\"<api url>\": \"<api key>\"} or an array [{\"api_url\": ..., \"api_key\": ...}]" -}}
  {{- end -}}
  {{- if and $ls.endpoint (not (regexMatch "^https?://[^/]+(/api/v1)?/?$" $ls.endpoint)) -}}
    {{- $msgs = append $msgs (printf "tracing.langsmith.endpoint=%q: use the API base, https://<host>/api/v1 for a self-hosted LangSmith" $ls.endpoint) -}}
  {{- end -}}
{{- end -}}

{{- /* Built-in auth (the API always runs). */ -}}
{{- $auth := $v.auth -}}
{{- if and (eq $auth.type "api_key") (not $auth.apiKeys) (not $auth.existingSecret) -}}
  {{- $msgs = append $msgs "auth.type=api_key needs auth.apiKeys or auth.existingSecret (openplane refuses to start without a key)" -}}
{{- end -}}
{{- if and (ne $auth.type "api_key") (or $auth.apiKeys $auth.existingSecret) -}}
  {{- $msgs = append $msgs (printf "auth.apiKeys/existingSecret are set but auth.type=%s: nothing would check the keys (openplane refuses this); set auth.type=api_key" $auth.type) -}}
{{- end -}}
{{- if and $auth.apiKeys $auth.existingSecret -}}
  {{- $msgs = append $msgs "auth: set apiKeys or existingSecret, not both" -}}
{{- end -}}

{{- /* Listener: one source of deployments, and what each needs. */ -}}
{{- $l := $v.listener -}}
{{- if $l.enabled -}}
  {{- $cp := $l.controlPlane -}}
  {{- $mf := $l.manifest -}}
  {{- if and $cp.url $mf.enabled -}}
    {{- $msgs = append $msgs "listener: set controlPlane.url or manifest.enabled, not both (one source of deployments)" -}}
  {{- end -}}
  {{- if and $cp.url (not $cp.listenerId) -}}
    {{- $msgs = append $msgs "listener.controlPlane.url needs listener.controlPlane.listenerId (OPENPLANE_LISTENER_ID: the listener record whose deployments to run)" -}}
  {{- end -}}
  {{- if and (not $cp.url) (or $cp.listenerId $cp.tenantId $cp.existingSecret) -}}
    {{- $msgs = append $msgs "listener.controlPlane.listenerId/tenantId/existingSecret are set but listener.controlPlane.url is empty" -}}
  {{- end -}}
  {{- $mfSources := 0 -}}
  {{- if $mf.deployments -}}{{- $mfSources = add1 $mfSources -}}{{- end -}}
  {{- if $mf.existingConfigMap -}}{{- $mfSources = add1 $mfSources -}}{{- end -}}
  {{- if $mf.existingSecret -}}{{- $mfSources = add1 $mfSources -}}{{- end -}}
  {{- if gt (int $mfSources) 1 -}}
    {{- $msgs = append $msgs "listener.manifest: set one of deployments, existingConfigMap or existingSecret" -}}
  {{- end -}}
  {{- if and (not $mf.enabled) (gt (int $mfSources) 0) -}}
    {{- $msgs = append $msgs "listener.manifest.deployments/existingConfigMap/existingSecret are set but listener.manifest.enabled=false" -}}
  {{- end -}}
  {{- range $i, $d := $mf.deployments -}}
    {{- if $d.secrets -}}
      {{- $msgs = append $msgs (printf "listener.manifest.deployments[%d] (%s) has secrets, which would be stored in a ConfigMap: put the manifest in a Secret (listener.manifest.existingSecret)" $i $d.name) -}}
    {{- end -}}
  {{- end -}}
  {{- if and (or $cp.url $mf.enabled) (gt (int $l.replicaCount) 1) -}}
    {{- $msgs = append $msgs (printf "listener.replicaCount=%d with a control plane or a manifest: at most 1, or several listeners would reconcile (create, drain, drop) the same deployments" (int $l.replicaCount)) -}}
  {{- end -}}
{{- end -}}

{{- if $msgs -}}
{{- fail (printf "\n\nopenplane: invalid values (%d problem(s)):\n  - %s\n" (len $msgs) (join "\n  - " $msgs)) -}}
{{- end -}}
{{- end -}}
