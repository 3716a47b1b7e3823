{{/*
Names, labels and the pieces every Wardgate pod shares (gateway, sync, migrations).
Paths inside the pod are fixed here once; the image and docs/deploy.md use the same ones.
*/}}

{{- define "wardgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "wardgate.fullname" -}}
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

{{/* A name derived from the full name: (list $ "admin") -> <fullname>-admin */}}
{{- define "wardgate.componentName" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" (include "wardgate.fullname" $root | trunc 50 | trimSuffix "-") (index . 1) }}
{{- end }}

{{- define "wardgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "wardgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: wardgate
{{- end }}

{{/* Selector labels of one component: (list $ "gateway") */}}
{{- define "wardgate.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "wardgate.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "wardgate.componentLabels" -}}
{{ include "wardgate.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "wardgate.image" -}}
{{- $ref := .Values.image.tag | default .Chart.AppVersion | printf "%s:%s" .Values.image.repository }}
{{- if .Values.image.digest }}
{{- $ref = printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- end }}
{{- $ref }}
{{- end }}

{{- define "wardgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "wardgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "wardgate.secretName" -}}
{{- default (include "wardgate.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{- define "wardgate.policiesConfigMapName" -}}
{{- default (include "wardgate.componentName" (list . "policies")) .Values.policies.existingConfigMap }}
{{- end }}

{{/* Whether the sync Deployment runs: enabled and a directory source configured. */}}
{{- define "wardgate.syncRuns" -}}
{{- $source := dig "directory" "source" "none" .Values.config }}
{{- if and .Values.sync.enabled (ne $source "none") }}true{{ end }}
{{- end }}

{{/*
Whether the migration hook runs: enabled and a database URL source given. Without one it
could only wait for the hook timeout; the pods refuse to start and NOTES says why.
*/}}
{{- define "wardgate.migrationsRun" -}}
{{- if and .Values.migrations.enabled (or .Values.secrets.existingSecret .Values.secrets.databaseUrl) }}true{{ end }}
{{- end }}

{{/* Whether the gateway runs as a StatefulSet (one spool PVC per pod). */}}
{{- define "wardgate.gatewayKind" -}}
{{- if .Values.auditSpool.persistence.enabled }}StatefulSet{{ else }}Deployment{{ end }}
{{- end }}

{{/*
wardgate.yaml: the user's config plus the keys the pod layout decides. The admin listener
binds all interfaces inside the pod so its ClusterIP Service can reach it.
*/}}
{{- define "wardgate.config" -}}
{{- $cfg := deepCopy .Values.config }}
{{- $_ := set $cfg "listen" (dict "proxy_host" "0.0.0.0" "proxy_port" 8080 "admin_host" "0.0.0.0" "admin_port" 8081) }}
{{- $policy := deepCopy (dig "policy" (dict) .Values.config) }}
{{- $_ = set $policy "dir" "/etc/wardgate/policies" }}
{{- $_ = set $cfg "policy" $policy }}
{{- $audit := deepCopy (dig "audit" (dict) .Values.config) }}
{{- $_ = set $audit "spool_dir" "/var/lib/wardgate/spool" }}
{{- $_ = set $cfg "audit" $audit }}
{{- toYaml $cfg }}
{{- end }}

{{/* Secret variables the chart wires, and the `secrets` value that fills each. */}}
{{- define "wardgate.secretVariables" -}}
WARDGATE_DATABASE_URL: databaseUrl
WARDGATE_REDIS_URL: redisUrl
WARDGATE_FIELD_HASH_KEY: fieldHashKey
WARDGATE_HR_SECRET: hrSecret
WARDGATE_SCIM_TOKEN: scimToken
WARDGATE_AUDIT_SIGNING_KEY: auditSigningKey
WARDGATE_LDAP_PASSWORD: ldapPassword
{{- end }}

{{/* The Secret's data when the chart renders it: only the keys that have a value. */}}
{{- define "wardgate.secretData" -}}
{{- range $variable, $key := include "wardgate.secretVariables" . | fromYaml }}
{{- with index $.Values.secrets $key }}
{{ $variable }}: {{ . | b64enc | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Environment of every Wardgate container: (list $ secretName). The database URL is not
optional: without it the container does not start (fail closed, no per-pod SQLite).
*/}}
{{- define "wardgate.env" -}}
{{- $root := index . 0 -}}
{{- $secret := index . 1 -}}
{{- range $variable, $_ := include "wardgate.secretVariables" $root | fromYaml }}
- name: {{ $variable }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $variable }}
      {{- if ne $variable "WARDGATE_DATABASE_URL" }}
      optional: true
      {{- end }}
{{- end }}
{{- with $root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "wardgate.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.fsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "wardgate.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Volumes every Wardgate pod mounts: (list $ configMapName withPolicies). The migration hook
runs before the release's policies ConfigMap exists and does not read policies.
*/}}
{{- define "wardgate.volumes" -}}
{{- $root := index . 0 -}}
- name: config
  configMap:
    name: {{ index . 1 }}
{{- if index . 2 }}
- name: policies
  configMap:
    name: {{ include "wardgate.policiesConfigMapName" $root }}
{{- end }}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- with $root.Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Mounts matching wardgate.volumes: (list $ withPolicies). */}}
{{- define "wardgate.volumeMounts" -}}
{{- $root := index . 0 -}}
- name: config
  mountPath: /etc/wardgate/wardgate.yaml
  subPath: wardgate.yaml
  readOnly: true
{{- if index . 1 }}
- name: policies
  mountPath: /etc/wardgate/policies
  readOnly: true
{{- end }}
- name: tmp
  mountPath: /tmp
{{- with $root.Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Annotations that roll pods when their configuration changes. */}}
{{- define "wardgate.checksums" -}}
checksum/config: {{ include "wardgate.config" . | sha256sum }}
{{- if not .Values.secrets.existingSecret }}
checksum/secret: {{ include "wardgate.secretData" . | sha256sum }}
{{- end }}
{{- if not .Values.policies.existingConfigMap }}
checksum/policies: {{ toYaml .Values.policies.files | sha256sum }}
{{- end }}
{{- end }}

{{- define "wardgate.podCommon" -}}
# Kubernetes would otherwise inject WARDGATE_PORT, WARDGATE_SERVICE_HOST, ... for the
# release's own Services: variables in Wardgate's settings namespace.
enableServiceLinks: false
securityContext:
  {{- include "wardgate.podSecurityContext" . | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end }}
