{{/* Common labels of every object of the release. */}}
{{- define "connectors.labels" -}}
app.kubernetes.io/name: connectors
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* Selector labels of a component: (dict "root" $ "component" "gateway"). */}}
{{- define "connectors.selector" -}}
app.kubernetes.io/name: connectors
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Labels of a component's objects. */}}
{{- define "connectors.componentLabels" -}}
{{ include "connectors.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The image of every component. */}}
{{- define "connectors.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* Names of the Secrets. */}}
{{- define "connectors.caSecret" -}}
{{ .Values.gateway.ca.existingSecret | default "connectors-gateway-ca" }}
{{- end }}
{{- define "connectors.sharedKeySecret" -}}
{{ .Values.gateway.sharedKey.existingSecret | default "connectors-shared-key" }}
{{- end }}

{{/* The flags every component shares. */}}
{{- define "connectors.logFlags" -}}
- --zap-log-level={{ .Values.logLevel }}
- --zap-encoder=json
- --zap-time-encoding=rfc3339nano
{{- end }}

{{/* The container securityContext of the unprivileged components. */}}
{{- define "connectors.restricted" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The pod securityContext of the unprivileged components. */}}
{{- define "connectors.podSecurity" -}}
runAsNonRoot: true
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* POD_NAMESPACE, from which every component takes its install namespace. */}}
{{- define "connectors.podNamespaceEnv" -}}
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- end }}

{{/* The gateway CA certificate only (not its key), for the controller and the driver. */}}
{{- define "connectors.caCertVolume" -}}
- name: gateway-ca
  secret:
    secretName: {{ include "connectors.caSecret" . }}
    items:
      - key: tls.crt
        path: tls.crt
{{- end }}

{{/* The bundled Redis's address and whether it is used. */}}
{{- define "connectors.bundledRedis" -}}
{{- if and (not .Values.redis.url) (not .Values.redis.existingSecret) .Values.redis.bundled.enabled }}true{{ end }}
{{- end }}

{{/*
A file of the chart as an object with the release's labels added
(dict "root" $ "file" "rbac/role.yaml").
*/}}
{{- define "connectors.fileObject" -}}
{{- $obj := .root.Files.Get .file | fromYaml }}
{{- if not $obj.kind }}{{ fail (printf "the chart file %s is missing or not one object" .file) }}{{ end }}
{{- $_ := set $obj.metadata "labels" (merge (default (dict) $obj.metadata.labels) (include "connectors.labels" .root | fromYaml)) }}
{{- toYaml $obj }}
{{- end }}
