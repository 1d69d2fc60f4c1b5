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
(checkov.io/skipN: <check>=<reason>). cargo.checkovSkips (dict "root" $ "extra" (list ...));
"digest" (a bool) overrides whether the image is pulled by digest (a worker pool's own image).
*/}}
{{- define "cargo.checkovSkips" -}}
{{- $skips := list
  "CKV_K8S_35=Cargo reads its configuration from the environment by design (RABBITMQ_URL, CARGO_AUTH_TOKEN, as the README documents); the values come from Secrets through secretKeyRef, never from the chart" -}}
{{- if not (ternary .digest .root.Values.image.digest (hasKey . "digest")) -}}
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
The longest hard time limit a task of one worker pool can have: the pool's longestTimeLimit
(its modules' longest, default worker.longestTimeLimit), CARGO_TIME_LIMIT and every
CARGO_TASK_LIMITS time_limit. The pool's grace period must exceed it.
cargo.longestTimeLimit (dict "root" $ "pool" $resolvedPool).
*/}}
{{- define "cargo.longestTimeLimit" -}}
{{- $longest := max (int .pool.longestTimeLimit) (int (ceil .root.Values.config.timeLimit)) -}}
{{- range $task, $limits := .root.Values.config.taskLimits -}}
{{- if hasKey $limits "time_limit" -}}
{{- $longest = max $longest (int (ceil (index $limits "time_limit"))) -}}
{{- end -}}
{{- end -}}
{{- $longest -}}
{{- end -}}

{{/*
The worker pools with every default filled in, as a JSON list (templates range over
`include "cargo.workerPools" . | fromJsonArray`). A pool key that is absent takes the
shared worker.* / keda.* / config.* value; hasKey, not `default`, so a 0 (minReplicas: 0)
stays 0. Numbers come back as floats: templates print them through int or cargo.envValue.
*/}}
{{- define "cargo.workerPools" -}}
{{- $root := . -}}
{{- $w := .Values.worker -}}
{{- $k := .Values.keda -}}
{{- $pools := list -}}
{{- range $p := .Values.workerPools -}}
{{- $pk := $p.keda | default dict -}}
{{- $image := $p.image | default dict -}}
{{- $repository := $image.repository | default $root.Values.image.repository -}}
{{- $digest := "" -}}
{{- $tag := "" -}}
{{- if $p.image -}}
{{- $digest = $image.digest | default "" -}}
{{- $tag = $image.tag | default $root.Chart.AppVersion -}}
{{- else -}}
{{- $digest = $root.Values.image.digest -}}
{{- $tag = $root.Values.image.tag | default $root.Chart.AppVersion -}}
{{- end -}}
{{- $ref := ternary (printf "%s@%s" $repository $digest) (printf "%s:%s" $repository $tag) (ne $digest "") -}}
{{- $pullPolicy := $image.pullPolicy | default $root.Values.image.pullPolicy | default (ternary "IfNotPresent" "Always" (ne $digest "")) -}}
{{- $pools = append $pools (dict
  "name" $p.name
  "objectName" (include "cargo.componentName" (dict "root" $root "component" (printf "worker-%s" $p.name)))
  "queues" (ternary $p.queues (list $root.Values.config.taskQueue) (hasKey $p "queues"))
  "taskModules" $p.taskModules
  "concurrency" (ternary $p.concurrency $w.concurrency (hasKey $p "concurrency"))
  "resources" (ternary $p.resources $w.resources (hasKey $p "resources"))
  "memoryLimitMb" (ternary $p.memoryLimitMb $root.Values.config.memoryLimitMb (hasKey $p "memoryLimitMb"))
  "replicas" (ternary $p.replicas $w.replicas (hasKey $p "replicas"))
  "minReplicas" (ternary $p.minReplicas $k.minReplicaCount (hasKey $p "minReplicas"))
  "maxReplicas" (ternary $p.maxReplicas $k.maxReplicaCount (hasKey $p "maxReplicas"))
  "kedaValue" (ternary $pk.value $k.value (hasKey $pk "value"))
  "kedaActivationValue" (ternary $pk.activationValue $k.activationValue (hasKey $pk "activationValue"))
  "kedaPollingInterval" (ternary $pk.pollingInterval $k.pollingInterval (hasKey $pk "pollingInterval"))
  "kedaCooldownPeriod" (ternary $pk.cooldownPeriod $k.cooldownPeriod (hasKey $pk "cooldownPeriod"))
  "image" $ref
  "imageDigest" (ne $digest "")
  "imagePullPolicy" $pullPolicy
  "terminationGracePeriodSeconds" (ternary $p.terminationGracePeriodSeconds $w.terminationGracePeriodSeconds (hasKey $p "terminationGracePeriodSeconds"))
  "longestTimeLimit" (ternary $p.longestTimeLimit $w.longestTimeLimit (hasKey $p "longestTimeLimit"))
  "env" ($p.env | default list)
  "podAnnotations" (ternary $p.podAnnotations $w.podAnnotations (hasKey $p "podAnnotations"))
  "nodeSelector" (ternary $p.nodeSelector $w.nodeSelector (hasKey $p "nodeSelector"))
  "tolerations" (ternary $p.tolerations $w.tolerations (hasKey $p "tolerations"))
  "affinity" (ternary $p.affinity $w.affinity (hasKey $p "affinity"))
  "topologySpreadConstraints" (ternary $p.topologySpreadConstraints $w.topologySpreadConstraints (hasKey $p "topologySpreadConstraints"))
) -}}
{{- end -}}
{{- toJson $pools -}}
{{- end -}}

{{/* The labels that tell one pool's pods from another's (on top of component=worker). */}}
{{- define "cargo.poolLabels" -}}
cargo.io/pool: {{ .name }}
{{- end -}}

{{/*
Checks on the worker pools a JSON schema cannot express: unique names (and object names
after truncation to 63 characters), no reserved queue name (broker.topology.check_queue_name:
Go's regexp has no lookahead for the schema), no queue in two pools, config.taskQueue consumed by
some pool, minReplicas <= maxReplicas, a grace period beyond the pool's longest time limit,
no pool env that overrides what the chart sets.
*/}}
{{- define "cargo.validateWorkerPools" -}}
{{- $root := . -}}
{{- $names := dict -}}
{{- $objectNames := dict -}}
{{- $owners := dict -}}
{{- $owned := list "CARGO_WORKER_QUEUES" "CARGO_TASK_MODULES" "CARGO_MEMORY_LIMIT_MB" "RABBITMQ_URL" "RABBITMQ_USERNAME" "RABBITMQ_PASSWORD" "CARGO_MANAGEMENT_URL" "CARGO_AUTH_TOKEN" -}}
{{- range $pool := include "cargo.workerPools" . | fromJsonArray -}}
{{- if hasKey $names $pool.name -}}
{{- fail (printf "workerPools: two pools are named %q; each pool needs its own name (it names its Deployment and ScaledObject)" $pool.name) -}}
{{- end -}}
{{- $_ := set $names $pool.name true -}}
{{- if hasKey $objectNames $pool.objectName -}}
{{- fail (printf "workerPools: pools %q and %q both get the object name %q once cut to 63 characters; shorten a pool name or fullnameOverride" (index $objectNames $pool.objectName) $pool.name $pool.objectName) -}}
{{- end -}}
{{- $_ := set $objectNames $pool.objectName $pool.name -}}
{{- range $queue := $pool.queues -}}
{{- if regexMatch "^(amq\\.|cargo\\.|celery_delayed)" $queue -}}
{{- fail (printf "workerPools: pool %q: queue %q is reserved (amq., cargo., celery_delayed are RabbitMQ's, Cargo's and Celery's)" $pool.name $queue) -}}
{{- end -}}
{{- if regexMatch "(\\.XQ|\\.DQ|\\.watch)$" $queue -}}
{{- fail (printf "workerPools: pool %q: queue %q ends like a dead-letter, delay or watch queue (.XQ, .DQ, .watch): name the task queue itself" $pool.name $queue) -}}
{{- end -}}
{{- if hasKey $owners $queue -}}
{{- if eq (index $owners $queue) $pool.name -}}
{{- fail (printf "workerPools: pool %q lists queue %q twice" $pool.name $queue) -}}
{{- end -}}
{{- fail (printf "workerPools: queue %q is in pools %q and %q; a queue belongs to one pool (its ScaledObject scales on that queue alone)" $queue (index $owners $queue) $pool.name) -}}
{{- end -}}
{{- $_ := set $owners $queue $pool.name -}}
{{- end -}}
{{- if gt (int $pool.minReplicas) (int $pool.maxReplicas) -}}
{{- fail (printf "workerPools: pool %q has minReplicas (%d) above maxReplicas (%d)" $pool.name (int $pool.minReplicas) (int $pool.maxReplicas)) -}}
{{- end -}}
{{- $longest := include "cargo.longestTimeLimit" (dict "root" $root "pool" $pool) | int -}}
{{- if le (int $pool.terminationGracePeriodSeconds) $longest -}}
{{- fail (printf "workerPools: pool %q: terminationGracePeriodSeconds (%d) must exceed the longest hard time limit (%d s), or a scale-down kills running tasks" $pool.name (int $pool.terminationGracePeriodSeconds) $longest) -}}
{{- end -}}
{{- range $var := $pool.env -}}
{{- if has $var.name $owned -}}
{{- fail (printf "workerPools: pool %q: env %s is set by the chart (from queues, taskModules, memoryLimitMb or the Secrets); use the pool's own value instead" $pool.name $var.name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if not (hasKey $owners .Values.config.taskQueue) -}}
{{- fail (printf "workerPools: no pool consumes config.taskQueue (%q), where the built-in tasks and the canary's go: add it to a pool's queues" .Values.config.taskQueue) -}}
{{- end -}}
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
{{- include "cargo.validateWorkerPools" . -}}
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
