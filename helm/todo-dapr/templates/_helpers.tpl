{{/*
Helpers shared by every template.

Chart-wide helpers take the root context (`.`). Per-service helpers take a dict:
  root      the root context (`$`)
  name      the service's key in `.Values.services`, which is also its Dapr app-id
  svc       that service's values
*/}}

{{/*
The chart name, or `nameOverride`.
*/}}
{{- define "todo-dapr.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release-qualified name every object name starts with. Kubernetes names are DNS labels, so
63 characters at most; a release name that already contains the chart name is used as is.
*/}}
{{- define "todo-dapr.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
`<chart>-<version>` for the `helm.sh/chart` label.
*/}}
{{- define "todo-dapr.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The namespace every object goes to.
*/}}
{{- define "todo-dapr.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride }}
{{- end }}

{{/*
The name of one service's objects: `<fullname>-<service>`. Takes the per-service dict.
*/}}
{{- define "todo-dapr.serviceFullname" -}}
{{- printf "%s-%s" (include "todo-dapr.fullname" .root) .name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: the labels a Deployment, Service or PDB selects pods by. They must never change
after the first install (selectors are immutable), so no version and no `helm.sh/chart` here.
Takes a dict with `root` and, for one service's objects, `name`.
*/}}
{{- define "todo-dapr.selectorLabels" -}}
app.kubernetes.io/name: {{ include "todo-dapr.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .name }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{/*
Every label an object carries: the selector labels, the chart and version, and `commonLabels`.
Takes the same dict as `todo-dapr.selectorLabels`.
*/}}
{{- define "todo-dapr.labels" -}}
helm.sh/chart: {{ include "todo-dapr.chart" .root }}
{{ include "todo-dapr.selectorLabels" . }}
{{- with .root.Chart.AppVersion }}
app.kubernetes.io/version: {{ . | quote }}
{{- end }}
app.kubernetes.io/part-of: todo-dapr
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
A service's image reference: `[registry/]repository(:tag|@digest)`. The registry is the
chart-wide `image.registry`; tag and digest fall back to the chart-wide `image` values, the tag
then to the chart's appVersion. A digest wins over a tag. Takes the per-service dict.
*/}}
{{- define "todo-dapr.image" -}}
{{- $global := .root.Values.image }}
{{- $own := .svc.image | default dict }}
{{- $registry := $global.registry }}
{{- $repository := required (printf "services.%s.image.repository is required" .name) $own.repository }}
{{- $digest := $own.digest | default $global.digest }}
{{- $tag := $own.tag | default $global.tag | default .root.Chart.AppVersion | toString }}
{{- $ref := $repository }}
{{- if $registry }}
{{- $ref = printf "%s/%s" (trimSuffix "/" $registry) $repository }}
{{- end }}
{{- if $digest }}
{{- printf "%s@%s" $ref $digest }}
{{- else }}
{{- printf "%s:%s" $ref $tag }}
{{- end }}
{{- end }}

{{/*
The ServiceAccount a service's pods run as. Takes the per-service dict.
*/}}
{{- define "todo-dapr.serviceAccountName" -}}
{{- if .root.Values.serviceAccount.create }}
{{- include "todo-dapr.serviceFullname" . }}
{{- else }}
{{- default "default" .root.Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Name of the Dapr Configuration the sidecars load.
*/}}
{{- define "todo-dapr.daprConfigName" -}}
{{- include "todo-dapr.fullname" . }}
{{- end }}

{{/*
A scalar as text. Helm reads numbers in values as floats, which print as `1.048576e+06`; whole
numbers print as integers here.
*/}}
{{- define "todo-dapr.str" -}}
{{- if and (kindIs "float64" .) (eq (floor .) .) -}}
{{- int64 . -}}
{{- else -}}
{{- toString . -}}
{{- end -}}
{{- end }}

{{/*
The environment variable prefix of a service: `email-delivery` -> `EMAIL_DELIVERY`.
*/}}
{{- define "todo-dapr.envPrefix" -}}
{{- .name | upper | replace "-" "_" }}
{{- end }}

{{/*
The words of a name, lower case: `schemaRegistryAPISecret` -> ["schema","registry","api","secret"],
`DB_PASS` -> ["db","pass"]. camelCase, acronyms and any non-alphanumeric separator split words.
Prints JSON (a list).
*/}}
{{- define "todo-dapr.nameWords" -}}
{{- $s := regexReplaceAll "([a-z0-9])([A-Z])" . "${1}_${2}" -}}
{{- $s = regexReplaceAll "([A-Z]+)([A-Z][a-z])" $s "${1}_${2}" -}}
{{- regexSplit "[^a-z0-9]+" (lower $s) -1 | compact | toJson -}}
{{- end }}

{{/*
Whether an environment variable or Dapr component field holds a secret. Such fields may only be
filled from a Secret reference, never from a literal in values. A name holds a secret when one
of its words says so (secret, key, pass, password, token, credentials, dsn, …; `oidcClientSecret`,
`awsSecretKey`, `DB_PASS`, `JWT_SIGNING_KEY`), or it is `DATABASE_URL`/`SMTP_USERNAME`, or it
names a connection string. Not secrets: a name whose last word says it is a locator or a kind
(`oidcTokenEndpoint`, `keyPrefix`, `authType`, `SECRET_STORE`), and the variables whose value is
the NAME of an entry in the Dapr secret store (`DATABASE_URL_SECRET`, `JWT_SECRET_SECRET`,
`SMTP_CREDENTIALS_SECRET`). helm/tests/render_check.py mirrors this rule. Prints "true" or nothing.
*/}}
{{- define "todo-dapr.isSecretName" -}}
{{- $upper := upper . -}}
{{- $names := list "DATABASE_URL_SECRET" "JWT_SECRET_SECRET" "SMTP_CREDENTIALS_SECRET" -}}
{{- $words := include "todo-dapr.nameWords" . | fromJsonArray -}}
{{- $secretWords := list "secret" "secrets" "key" "keys" "apikey" "pass" "passwd" "password" "passphrase" "pwd" "token" "credential" "credentials" "dsn" -}}
{{- $locators := list "endpoint" "url" "uri" "host" "type" "mechanism" "prefix" "path" "file" "store" "name" "ttl" -}}
{{- if has $upper (list "DATABASE_URL" "SMTP_USERNAME") -}}
true
{{- else if or (has $upper $names) (not $words) (has (last $words) $locators) -}}
{{- else if regexMatch "connection_string" (join "_" $words) -}}
true
{{- else -}}
{{- range $words -}}
{{- if has . $secretWords -}}true{{- break -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- end }}

{{/*
The enabled service names, sorted.
*/}}
{{- define "todo-dapr.enabledServices" -}}
{{- $names := list }}
{{- range $name, $svc := .Values.services }}
{{- if $svc.enabled }}
{{- $names = append $names $name }}
{{- end }}
{{- end }}
{{- toJson (sortAlpha $names) }}
{{- end }}

{{/*
A Kubernetes Secret reference for a Dapr component field: `secretKeyRef: {name, key}`.
Takes a dict with `ref` ({name, key}) and `what` (for the error message).
*/}}
{{- define "todo-dapr.secretKeyRef" -}}
secretKeyRef:
  name: {{ required (printf "%s: a Secret name is required" .what) .ref.name | quote }}
  key: {{ required (printf "%s: a Secret key is required" .what) .ref.key | quote }}
{{- end }}

{{/*
Joins two comma-separated lists of `<name><sep><rest>` entries (`dapr.io/env`'s `K=V`,
`dapr.io/volume-mounts`' `volume:path`): every entry of `base`, then those of `over`; an entry
of `over` replaces the one of `base` with the same name, in place. Takes a dict: `base`, `over`,
`sep`.
*/}}
{{- define "todo-dapr.joinEntries" -}}
{{- $order := list }}
{{- $byName := dict }}
{{- range $list := list .base .over }}
{{- range $entry := splitList "," $list }}
{{- $entry = trim $entry }}
{{- if $entry }}
{{- $entryName := index (splitList $.sep $entry) 0 | trim }}
{{- if not (hasKey $byName $entryName) }}
{{- $order = append $order $entryName }}
{{- end }}
{{- $_ := set $byName $entryName $entry }}
{{- end }}
{{- end }}
{{- end }}
{{- $out := list }}
{{- range $order }}
{{- $out = append $out (get $byName .) }}
{{- end }}
{{- join "," $out }}
{{- end }}

{{/*
A service's pod annotations as one map, so no key appears twice: the chart's Dapr annotations,
then `dapr.extraAnnotations` (chart-wide merged with the service's), then `podAnnotations`. A
later value replaces an earlier one, except for the list-valued `dapr.io/env` and
`dapr.io/volume-mounts(-rw)`, whose entries are joined (a user's `dapr.io/env` keeps the chart's
`GOMEMLIMIT`; the same variable set twice keeps the user's value). The keys that tie a pod to its
Dapr app (`dapr.io/enabled`, `dapr.io/app-id`, `dapr.io/app-port`) are the chart's: setting them
fails. Takes a dict: `root`, `name`, `svc`, `dapr` (the merged Dapr values), `ca` (caSecret).
*/}}
{{- define "todo-dapr.podAnnotations" -}}
{{- $dapr := .dapr }}
{{- $svc := .svc }}
{{- $a := dict
  "dapr.io/enabled" "true"
  "dapr.io/app-id" .name
  "dapr.io/app-port" (include "todo-dapr.str" $svc.port)
  "dapr.io/app-protocol" "http"
  "dapr.io/config" (include "todo-dapr.daprConfigName" .root)
  "dapr.io/log-level" (toString $dapr.logLevel)
  "dapr.io/log-as-json" (toString $dapr.logAsJson)
  "dapr.io/enable-metrics" (toString $dapr.enableMetrics)
  "dapr.io/metrics-port" (include "todo-dapr.str" $dapr.metricsPort)
  "dapr.io/graceful-shutdown-seconds" (include "todo-dapr.str" $dapr.gracefulShutdownSeconds)
}}
{{- with $dapr.sidecar }}
{{- range $key, $annotation := dict "cpuRequest" "sidecar-cpu-request" "cpuLimit" "sidecar-cpu-limit" "memoryRequest" "sidecar-memory-request" "memoryLimit" "sidecar-memory-limit" }}
{{- with index $.dapr.sidecar $key }}
{{- $_ := set $a (printf "dapr.io/%s" $annotation) (toString .) }}
{{- end }}
{{- end }}
{{- with .goMemLimit }}
{{- $_ := set $a "dapr.io/env" (printf "GOMEMLIMIT=%s" .) }}
{{- end }}
{{- end }}
{{- with $dapr.appToken.secretName }}
{{- $_ := set $a "dapr.io/app-token-secret" . }}
{{- end }}
{{- with $dapr.apiToken.secretName }}
{{- $_ := set $a "dapr.io/api-token-secret" . }}
{{- end }}
{{- if and $dapr.blockShutdownSeconds $dapr.appHealthCheck.enabled }}
{{- $_ := set $a "dapr.io/block-shutdown-duration" (printf "%ds" (int $dapr.blockShutdownSeconds)) }}
{{- end }}
{{- with $dapr.appHealthCheck }}
{{- if .enabled }}
{{- $_ := set $a "dapr.io/enable-app-health-check" "true" }}
{{- $_ := set $a "dapr.io/app-health-check-path" (toString .path) }}
{{- $_ := set $a "dapr.io/app-health-probe-interval" (include "todo-dapr.str" .probeIntervalSeconds) }}
{{- $_ := set $a "dapr.io/app-health-probe-timeout" (include "todo-dapr.str" .probeTimeoutMilliseconds) }}
{{- $_ := set $a "dapr.io/app-health-threshold" (include "todo-dapr.str" .threshold) }}
{{- end }}
{{- end }}
{{- if .ca.name }}
{{- /* The same CA for the sidecar: the state store reaches the same PostgreSQL. */}}
{{- $_ := set $a "dapr.io/volume-mounts" "ca:/etc/todo-dapr/ca" }}
{{- end }}
{{- $lists := dict "dapr.io/env" "=" "dapr.io/volume-mounts" ":" "dapr.io/volume-mounts-rw" ":" }}
{{- $owned := list "dapr.io/enabled" "dapr.io/app-id" "dapr.io/app-port" }}
{{- range $source := list (list "dapr.extraAnnotations" $dapr.extraAnnotations) (list "podAnnotations" .root.Values.podAnnotations) }}
{{- range $key, $value := index $source 1 }}
{{- if has $key $owned }}
{{- fail (printf "%s sets %s for services.%s: the chart sets it (the service's key is its app-id and `port` its app port); remove it" (index $source 0) $key $.name) }}
{{- end }}
{{- $text := include "todo-dapr.str" $value }}
{{- if and (hasKey $lists $key) (hasKey $a $key) }}
{{- $_ := set $a $key (include "todo-dapr.joinEntries" (dict "base" (get $a $key) "over" $text "sep" (get $lists $key))) }}
{{- else }}
{{- $_ := set $a $key $text }}
{{- end }}
{{- end }}
{{- end }}
{{- toYaml $a }}
{{- end }}

{{/*
The node selector of every service pod, as YAML: `nodeSelector` plus `kubernetes.io/arch` from
`nodeArchitecture`. Fails when the two name different architectures.
*/}}
{{- define "todo-dapr.nodeSelector" -}}
{{- $selector := deepCopy (.Values.nodeSelector | default dict) }}
{{- with .Values.nodeArchitecture }}
{{- $given := get $selector "kubernetes.io/arch" }}
{{- if and $given (ne $given .) }}
{{- fail (printf "nodeSelector kubernetes.io/arch is %q but nodeArchitecture is %q: set the architecture once, in nodeArchitecture" $given .) }}
{{- end }}
{{- $_ := set $selector "kubernetes.io/arch" . }}
{{- end }}
{{- if $selector }}
{{- toYaml $selector }}
{{- end }}
{{- end }}
