{{/* Chart name, overridable. */}}
{{- define "sts-vending.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart, unless the release name already contains the chart name. */}}
{{- define "sts-vending.fullname" -}}
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

{{- define "sts-vending.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sts-vending.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sts-vending.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "sts-vending.labels" -}}
helm.sh/chart: {{ include "sts-vending.chart" . }}
{{ include "sts-vending.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "sts-vending.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sts-vending.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Secret holding the AccessKey: existingSecret, else <fullname>-accesskey. */}}
{{- define "sts-vending.accessKeySecretName" -}}
{{- default (printf "%s-accesskey" (include "sts-vending.fullname" .)) .Values.accessKey.existingSecret }}
{{- end }}

{{/* True ("true") when the chart itself must create the AccessKey Secret. */}}
{{- define "sts-vending.createAccessKeySecret" -}}
{{- if and (not .Values.rrsa.enabled) (not .Values.accessKey.existingSecret) .Values.accessKey.id -}}
true
{{- end }}
{{- end }}

{{- define "sts-vending.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Metrics port of the service config (0 = served on the main port). */}}
{{- define "sts-vending.metricsPort" -}}
{{- $m := .Values.config.metrics | default dict }}
{{- if hasKey $m "port" }}{{ int $m.port }}{{ else }}0{{ end }}
{{- end }}

{{/* Shutdown grace in whole seconds, rounded up; the service default is 25000 ms. */}}
{{- define "sts-vending.shutdownGraceSeconds" -}}
{{- $s := .Values.config.server | default dict }}
{{- $ms := 25000 }}
{{- if hasKey $s "shutdownGraceMs" }}{{ $ms = int $s.shutdownGraceMs }}{{ end }}
{{- div (add $ms 999) 1000 }}
{{- end }}

{{/* preStop sleep + shutdown grace + margin: the kubelet's SIGKILL must come
     after the service has had its whole grace period. */}}
{{- define "sts-vending.terminationGracePeriodSeconds" -}}
{{- add (int .Values.lifecycle.preStopSleepSeconds) (int (include "sts-vending.shutdownGraceSeconds" .)) (int .Values.lifecycle.terminationMarginSeconds) }}
{{- end }}
