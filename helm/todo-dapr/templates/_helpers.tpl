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
Whether an environment variable or Dapr component field holds a secret. Such fields may only be
filled from a Secret reference, never from a literal in values. Names ending in `_SECRET` (other
than `JWT_SECRET`) hold the NAME of a secret in the Dapr secret store, not a secret, and
`SECRET_STORE` names the store. Prints "true" or nothing.
*/}}
{{- define "todo-dapr.isSecretName" -}}
{{- $n := upper . -}}
{{- if or (has $n (list "DATABASE_URL" "JWT_SECRET" "SMTP_USERNAME")) (regexMatch "(?i)(password|passwd|token|dsn|connection.?string|(client|tls|private|api).?key|credentials?$)" .) -}}
true
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
