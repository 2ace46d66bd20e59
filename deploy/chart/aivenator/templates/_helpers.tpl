{{/* Chart name, truncated to the 63 characters a label value may hold. */}}
{{- define "aivenator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's resources. */}}
{{- define "aivenator.fullname" -}}
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

{{- define "aivenator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: stable across upgrades (a Deployment selector is immutable). */}}
{{- define "aivenator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "aivenator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "aivenator.labels" -}}
helm.sh/chart: {{ include "aivenator.chart" . }}
{{ include "aivenator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: aivenator
{{- end }}

{{- define "aivenator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "aivenator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "aivenator.leaseName" -}}
{{- default (printf "%s-leader" (include "aivenator.fullname" .)) .Values.leaderElection.leaseName }}
{{- end }}

{{- define "aivenator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Path where the token Secret is mounted. */}}
{{- define "aivenator.tokenDir" -}}/var/run/secrets/aiven{{- end }}

{{/*
Refuse configurations that would put the Aiven token into the pod spec, and other
combinations that cannot work. Rendered (empty) from the Deployment template.
*/}}
{{- define "aivenator.validate" -}}
{{- range .Values.extraArgs }}
{{- if regexMatch "^--?aiven-token(-file)?([= ]|$)" (toString .) }}
{{- fail "extraArgs must not set --aiven-token or --aiven-token-file: the token comes from aiven.tokenSecret" }}
{{- end }}
{{- end }}
{{- range .Values.extraEnv }}
{{- if regexMatch "^AIVENATOR_AIVEN_TOKEN" (toString .name) }}
{{- fail "extraEnv must not set AIVENATOR_AIVEN_TOKEN*: the token comes from aiven.tokenSecret" }}
{{- end }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicaCount > 1 needs leaderElection.enabled=true (two active replicas would race)" }}
{{- end }}
{{- if not .Values.aiven.projects }}
{{- fail "aiven.projects must name at least one Aiven project" }}
{{- end }}
{{- end }}

{{/* The conversion webhook: Service, Certificate and TLS Secret names. */}}
{{- define "aivenator.webhookName" -}}{{ include "aivenator.fullname" . }}-webhook{{- end }}
{{- define "aivenator.webhookSecret" -}}{{ .Values.webhook.tlsSecretName | default (printf "%s-webhook-tls" (include "aivenator.fullname" .)) }}{{- end }}
{{- define "aivenator.webhookDir" -}}/var/run/secrets/webhook{{- end }}
