{{/* The Secret holding the users file: the existing one, or the one rendered from inline users. */}}
{{- define "barycenter-user-sync.usersSecret" -}}
{{- .Values.userSync.existingSecret | default (printf "%s-users" .Release.Name) -}}
{{- end }}

{{/* The name of Barycenter's Deployment and ConfigMap: the release's. */}}
{{- define "barycenter-user-sync.name" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end }}

{{/* The database URL from a Secret, under the name Barycenter reads (it wins over config.toml). */}}
{{- define "barycenter-user-sync.databaseUrlEnv" -}}
{{- if .Values.userSync.databaseUrl.existingSecret }}
- name: BARYCENTER__DATABASE__URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.userSync.databaseUrl.existingSecret | quote }}
      key: {{ .Values.userSync.databaseUrl.secretKey | quote }}
{{- end }}
{{- end }}

{{/*
  One user-sync container: Barycenter's own sync-users arguments, run by this image's entrypoint.
  Called with (dict "root" $ "name" NAME "extraArgs" LIST "sidecar" BOOL).
*/}}
{{- define "barycenter-user-sync.container" -}}
{{- $v := .root.Values.userSync -}}
- name: {{ .name }}
  image: "{{ $v.image.repository }}:{{ $v.image.tag }}"
  imagePullPolicy: {{ $v.image.pullPolicy }}
  {{- if .sidecar }}
  restartPolicy: Always
  {{- end }}
  args:
    {{- $args := list "-c" "/app/config/config.toml" "sync-users" "--file" (printf "/secrets/%s" $v.secretKey) "--wait" (toString $v.wait) }}
    {{- concat $args .extraArgs | toYaml | nindent 4 }}
  {{- with concat (include "barycenter-user-sync.databaseUrlEnv" .root | fromYamlArray) $v.env }}
  env:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  resources:
    {{- toYaml $v.resources | nindent 4 }}
  securityContext:
    runAsUser: 1000
    runAsNonRoot: true
    readOnlyRootFilesystem: true
    allowPrivilegeEscalation: false
    capabilities:
      drop: ["ALL"]
  volumeMounts:
    - name: user-sync-secret
      mountPath: /secrets
      readOnly: true
    - name: config
      mountPath: /app/config
      readOnly: true
    - name: data
      mountPath: /app/data
{{- end }}

{{/*
  The pod's user-sync init containers: the one-shot sync, then (sidecar.enabled) the watcher.
  Include under a pod spec's initContainers:
    {{- include "barycenter-user-sync.initContainers" . | nindent 8 }}
*/}}
{{- define "barycenter-user-sync.initContainers" -}}
{{- if .Values.userSync.enabled }}
{{- include "barycenter-user-sync.container" (dict "root" . "name" "user-sync" "extraArgs" list "sidecar" false) }}
{{- if .Values.userSync.sidecar.enabled }}
{{ include "barycenter-user-sync.container" (dict "root" . "name" "user-sync-watch" "sidecar" true
    "extraArgs" (list "--watch" "--resync-interval" (toString .Values.userSync.sidecar.resyncInterval))) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The users Secret as the volume the containers mount at /secrets. Include under volumes. */}}
{{- define "barycenter-user-sync.volumes" -}}
{{- if .Values.userSync.enabled }}
- name: user-sync-secret
  secret:
    secretName: {{ include "barycenter-user-sync.usersSecret" . | quote }}
{{- end }}
{{- end }}
