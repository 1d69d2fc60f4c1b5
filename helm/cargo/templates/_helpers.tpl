{{/*
Shared helpers. Every name the chart defines starts with "cargo.".
*/}}

{{/* The chart name (nameOverride wins). */}}
{{- define "cargo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The resource name prefix: <release>-<chart>, or <release> when it contains the chart name. */}}
{{- define "cargo.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A component's object name: cargo.componentName (dict "root" $ "component" "gateway"). */}}
{{- define "cargo.componentName" -}}
{{- printf "%s-%s" (include "cargo.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "cargo.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "cargo.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: cargo
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The labels that select the release's pods. */}}
{{- define "cargo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cargo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of one component: cargo.componentLabels (dict "root" $ "component" "worker"). */}}
{{- define "cargo.componentLabels" -}}
{{ include "cargo.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Selector labels of one component. */}}
{{- define "cargo.componentSelectorLabels" -}}
{{ include "cargo.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The image reference: repository@digest when a digest is set, else repository:tag. */}}
{{- define "cargo.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The application pods' ServiceAccount name. */}}
{{- define "cargo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "cargo.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The settings ConfigMap's name. */}}
{{- define "cargo.configMapName" -}}
{{- include "cargo.componentName" (dict "root" . "component" "config") -}}
{{- end -}}

{{/* The gateway Service's name and in-cluster URL. */}}
{{- define "cargo.gatewayServiceName" -}}
{{- include "cargo.componentName" (dict "root" . "component" "gateway") -}}
{{- end -}}
{{- define "cargo.gatewayUrl" -}}
{{- printf "http://%s.%s.svc:%v" (include "cargo.gatewayServiceName" .) .Release.Namespace .Values.gateway.port -}}
{{- end -}}

{{/* The RabbitmqCluster's name (mode cluster). */}}
{{- define "cargo.rabbitmqClusterName" -}}
{{- default (include "cargo.componentName" (dict "root" . "component" "rabbitmq")) .Values.rabbitmq.cluster.name -}}
{{- end -}}

{{/* The RabbitmqCluster's client Service host (the operator names the Service after the cluster). */}}
{{- define "cargo.rabbitmqClusterHost" -}}
{{- printf "%s.%s.svc" (include "cargo.rabbitmqClusterName" .) .Release.Namespace -}}
{{- end -}}

{{/* The Secret the operator keeps the default user's credentials in. */}}
{{- define "cargo.rabbitmqClusterSecret" -}}
{{- printf "%s-default-user" (include "cargo.rabbitmqClusterName" .) -}}
{{- end -}}

{{/*
The broker's environment: RABBITMQ_URL (and CARGO_MANAGEMENT_URL for an external broker),
from Secrets only. With mode cluster the URL is put together from the operator's
default-user Secret by Kubernetes' $(VAR) expansion (its generated credentials are URL-safe).
*/}}
{{- define "cargo.brokerEnv" -}}
{{- if eq .Values.rabbitmq.mode "external" }}
- name: RABBITMQ_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.rabbitmq.external.existingSecret }}
      key: {{ .Values.rabbitmq.external.urlKey }}
- name: CARGO_MANAGEMENT_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.rabbitmq.external.existingSecret }}
      key: {{ .Values.rabbitmq.external.managementUrlKey }}
{{- else }}
- name: RABBITMQ_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ include "cargo.rabbitmqClusterSecret" . }}
      key: username
- name: RABBITMQ_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "cargo.rabbitmqClusterSecret" . }}
      key: password
- name: RABBITMQ_URL
  value: {{ printf "amqp://$(RABBITMQ_USERNAME):$(RABBITMQ_PASSWORD)@%s:5672/%s" (include "cargo.rabbitmqClusterHost" .) (urlquery .Values.rabbitmq.vhost) | quote }}
{{- end }}
{{- end -}}

{{/* The Secret holding the API token (auth.existingSecret, default <fullname>-auth). */}}
{{- define "cargo.authSecret" -}}
{{- .Values.auth.existingSecret | default (printf "%s-auth" (include "cargo.fullname" .)) -}}
{{- end -}}

{{/* CARGO_AUTH_TOKEN from its Secret, unless auth.enabled is false. */}}
{{- define "cargo.authEnv" -}}
{{- if .Values.auth.enabled }}
- name: CARGO_AUTH_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "cargo.authSecret" . }}
      key: {{ .Values.auth.tokenKey }}
{{- end }}
{{- end -}}

{{/* Pod annotations that roll the pods when the settings change. */}}
{{- define "cargo.checksumAnnotations" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end -}}

{{/*
checkov skips that hold for every Cargo workload, as the annotations checkov reads
(checkov.io/skipN: <check>=<reason>). cargo.checkovSkips (dict "root" $ "extra" (list ...)).
*/}}
{{- define "cargo.checkovSkips" -}}
{{- $skips := list
  "CKV_K8S_35=Cargo reads its configuration from the environment by design (RABBITMQ_URL, CARGO_AUTH_TOKEN, as the README documents); the values come from Secrets through secretKeyRef, never from the chart" -}}
{{- if not .root.Values.image.digest -}}
{{- $skips = append $skips "CKV_K8S_43=the image digest is release-specific: set image.digest (the chart then pulls by digest); the default chart cannot know it" -}}
{{- end -}}
{{- range .extra -}}
{{- $skips = append $skips . -}}
{{- end -}}
{{- range $i, $skip := $skips }}
checkov.io/skip{{ add1 $i }}: {{ $skip | quote }}
{{- end }}
{{- end -}}

{{/* The pod-level security context. */}}
{{- define "cargo.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext -}}
{{- end -}}

{{/* The container-level security context. */}}
{{- define "cargo.containerSecurityContext" -}}
{{- toYaml .Values.containerSecurityContext -}}
{{- end -}}

{{/* The /tmp emptyDir every Cargo container writes to (the root filesystem is read-only). */}}
{{- define "cargo.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end -}}
{{- define "cargo.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{/* The image, pull policy and pull secrets' lines of a container / pod. */}}
{{- define "cargo.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
The longest hard time limit any task can have: the catalog's, CARGO_TIME_LIMIT and every
CARGO_TASK_LIMITS time_limit. The worker's grace period must exceed it.
*/}}
{{- define "cargo.longestTimeLimit" -}}
{{- $longest := max (int .Values.worker.longestCatalogTimeLimit) (int (ceil .Values.config.timeLimit)) -}}
{{- range $task, $limits := .Values.config.taskLimits -}}
{{- if hasKey $limits "time_limit" -}}
{{- $longest = max $longest (int (ceil (index $limits "time_limit"))) -}}
{{- end -}}
{{- end -}}
{{- $longest -}}
{{- end -}}

{{/* Checks across values that a JSON schema cannot express; each fails the render with why. */}}
{{- define "cargo.validate" -}}
{{- if and (not .Values.auth.enabled) .Values.auth.existingSecret -}}
{{- fail "auth.enabled is false but auth.existingSecret is set: remove auth.existingSecret to run the API without auth, or drop auth.enabled=false to use the token" -}}
{{- end -}}
{{- if and (eq .Values.rabbitmq.mode "external") (not .Values.rabbitmq.external.existingSecret) -}}
{{- fail "rabbitmq.mode external needs rabbitmq.external.existingSecret: the name of a Secret with the broker's URL and management URL" -}}
{{- end -}}
{{- if and (eq .Values.rabbitmq.mode "cluster") (ne .Values.rabbitmq.vhost "/") -}}
{{- fail "rabbitmq.mode cluster uses the operator's default vhost \"/\": set rabbitmq.vhost to \"/\" (or create the vhost yourself and use mode external)" -}}
{{- end -}}
{{- $longest := include "cargo.longestTimeLimit" . | int -}}
{{- if le (int .Values.worker.terminationGracePeriodSeconds) $longest -}}
{{- fail (printf "worker.terminationGracePeriodSeconds (%v) must exceed the longest hard time limit (%v s), or a scale-down kills running tasks" .Values.worker.terminationGracePeriodSeconds $longest) -}}
{{- end -}}
{{- if .Values.gateway.pdb.enabled -}}
{{- $fewest := ternary .Values.gateway.autoscaling.minReplicas .Values.gateway.replicas .Values.gateway.autoscaling.enabled -}}
{{- if ge (int .Values.gateway.pdb.minAvailable) (int $fewest) -}}
{{- fail (printf "gateway.pdb.minAvailable (%v) must be below the gateway's fewest replicas (%v), or no node could be drained" .Values.gateway.pdb.minAvailable $fewest) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.keda.enabled (gt (int .Values.keda.minReplicaCount) (int .Values.keda.maxReplicaCount)) -}}
{{- fail "keda.minReplicaCount must not exceed keda.maxReplicaCount" -}}
{{- end -}}
{{- if and .Values.gateway.autoscaling.enabled (gt (int .Values.gateway.autoscaling.minReplicas) (int .Values.gateway.autoscaling.maxReplicas)) -}}
{{- fail "gateway.autoscaling.minReplicas must not exceed gateway.autoscaling.maxReplicas" -}}
{{- end -}}
{{- end -}}

{{/*
A value as an environment variable's text. Helm reads every number as a float, which would
print 1000000000 as 1e+09: whole numbers are printed as integers, maps and lists as JSON.
*/}}
{{- define "cargo.envValue" -}}
{{- $v := . -}}
{{- if kindIs "float64" $v -}}
{{- if eq $v (float64 (int64 $v)) -}}{{ int64 $v }}{{- else -}}{{ $v }}{{- end -}}
{{- else if or (kindIs "map" $v) (kindIs "slice" $v) -}}
{{- toJson $v -}}
{{- else -}}
{{- $v -}}
{{- end -}}
{{- end -}}

{{/* A component's selector labels as a label selector string (k=v,k=v). */}}
{{- define "cargo.selectorString" -}}
{{- $pairs := list -}}
{{- range $k, $v := (include "cargo.componentSelectorLabels" . | fromYaml) -}}
{{- $pairs = append $pairs (printf "%s=%s" $k $v) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/* The pull policy: image.pullPolicy, else IfNotPresent for a digest and Always for a tag. */}}
{{- define "cargo.imagePullPolicy" -}}
{{- if .Values.image.pullPolicy -}}
{{- .Values.image.pullPolicy -}}
{{- else -}}
{{- ternary "IfNotPresent" "Always" (ne .Values.image.digest "") -}}
{{- end -}}
{{- end -}}
