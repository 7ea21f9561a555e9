{{- define "conclave.labels" -}}
app.kubernetes.io/name: conclave-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "conclave.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}
