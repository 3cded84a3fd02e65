{{/* The release's full name, cut to 63 characters (a DNS label). */}}
{{- define "millrace.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "millrace.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "millrace.labels" -}}
{{ include "millrace.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "millrace.serviceAccountName" -}}
{{- default (include "millrace.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* Namespaces that get the step ServiceAccount: the release's, the watched one, the extra ones. */}}
{{- define "millrace.stepNamespaces" -}}
{{- $namespaces := list .Release.Namespace -}}
{{- with .Values.watchNamespace -}}
{{- $namespaces = append $namespaces . -}}
{{- end -}}
{{- $namespaces = concat $namespaces .Values.stepServiceAccount.extraNamespaces -}}
{{- $namespaces | uniq | toJson -}}
{{- end -}}
