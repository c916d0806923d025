{{/*
Checks on the values as a whole that values.schema.json cannot express. Helm validates the
schema first (install, upgrade, template, lint); these run when the templates render.
*/}}

{{/*
Collects every string value, at any depth, that still holds an unreplaced `<placeholder>` (a
word in angle brackets such as `<region>`, as values-oke.yaml ships them) into `found`
(path -> the placeholders). E-mail addresses like `Name <user@example.com>` are not words, so
they are not placeholders. Takes a dict: `value`, `path` (dotted, "" at the root), `found`.
*/}}
{{- define "todo-dapr.placeholders" -}}
{{- $v := .value }}
{{- if kindIs "map" $v }}
{{- range $key, $item := $v }}
{{- $path := ternary $key (printf "%s.%s" $.path $key) (eq $.path "") }}
{{- include "todo-dapr.placeholders" (dict "value" $item "path" $path "found" $.found) }}
{{- end }}
{{- else if kindIs "slice" $v }}
{{- range $i, $item := $v }}
{{- include "todo-dapr.placeholders" (dict "value" $item "path" (printf "%s[%d]" $.path $i) "found" $.found) }}
{{- end }}
{{- else if kindIs "string" $v }}
{{- with regexFindAll "<[A-Za-z][A-Za-z0-9_-]*>" $v -1 }}
{{- $_ := set $.found $.path (uniq . | join " ") }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Fails, naming every value concerned, while a `<placeholder>` is left in the values: it would
otherwise end up in image references, broker addresses or mail headers and only fail once pods
start (or never, for a mail header).
*/}}
{{- define "todo-dapr.validateValues" -}}
{{- $found := dict }}
{{- include "todo-dapr.placeholders" (dict "value" .Values "path" "" "found" $found) }}
{{- if $found }}
{{- $each := list }}
{{- range $path := keys $found | sortAlpha }}
{{- $each = append $each (printf "%s (%s)" $path (get $found $path)) }}
{{- end }}
{{- fail (printf "values still hold unreplaced <placeholders>; replace them (see values-oke.yaml): %s" (join ", " $each)) }}
{{- end }}
{{- end }}
