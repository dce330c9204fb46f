{{/* Labels of every object; component is the program. */}}
{{- define "shop.labels" -}}
app.kubernetes.io/name: {{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/part-of: shop
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end }}

{{- define "shop.selector" -}}
app.kubernetes.io/name: {{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end }}

{{/* The Secret holding NATS_USER and NATS_PASSWORD of a user. */}}
{{- define "shop.secretName" -}}
{{ .root.Values.nats.credentials.secretPrefix }}-{{ .user }}
{{- end }}
