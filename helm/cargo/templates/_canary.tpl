{{/*
The canary's pod spec, shared by the CronJob and the `helm test` hook:
cargo.canaryPodSpec (dict "root" $ "restartUnhealthy" true|false).
*/}}
{{- define "cargo.canaryPodSpec" -}}
{{- $root := .root -}}
serviceAccountName: {{ include "cargo.componentName" (dict "root" $root "component" "canary") }}
automountServiceAccountToken: {{ .restartUnhealthy }}
restartPolicy: Never
{{- include "cargo.imagePullSecrets" $root | nindent 0 }}
securityContext:
  {{- include "cargo.podSecurityContext" $root | nindent 2 }}
containers:
  - name: canary
    image: {{ include "cargo.image" $root }}
    imagePullPolicy: {{ include "cargo.imagePullPolicy" $root }}
    args:
      - canary
      - --gateway
      - {{ include "cargo.gatewayUrl" $root }}
      - --timeout
      - {{ $root.Values.canary.timeout | quote }}
      {{- if .restartUnhealthy }}
      - --restart-unhealthy
      {{- end }}
    envFrom:
      - configMapRef:
          name: {{ include "cargo.configMapName" $root }}
    {{- with (include "cargo.authEnv" $root) }}
    env:
      {{- . | indent 6 }}
    {{- end }}
    resources:
      {{- toYaml $root.Values.canary.resources | nindent 6 }}
    securityContext:
      {{- include "cargo.containerSecurityContext" $root | nindent 6 }}
    volumeMounts:
      {{- include "cargo.tmpVolumeMount" $root | nindent 6 }}
volumes:
  {{- include "cargo.tmpVolume" $root | nindent 2 }}
{{- end -}}
