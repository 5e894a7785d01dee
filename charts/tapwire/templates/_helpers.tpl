{{/* Chart name, overridable. */}}
{{- define "tapwire.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified app name: the release name, with the chart name unless it already holds it. */}}
{{- define "tapwire.fullname" -}}
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

{{/* Object names (kept under 63 characters). */}}
{{- define "tapwire.operatorName" -}}{{ include "tapwire.fullname" . | trunc 54 | trimSuffix "-" }}-operator{{- end -}}
{{- define "tapwire.forwarderName" -}}{{ include "tapwire.fullname" . | trunc 53 | trimSuffix "-" }}-forwarder{{- end -}}
{{- define "tapwire.nettapName" -}}{{ include "tapwire.fullname" . | trunc 56 | trimSuffix "-" }}-nettap{{- end -}}
{{- define "tapwire.caSecretName" -}}{{ include "tapwire.fullname" . | trunc 60 | trimSuffix "-" }}-ca{{- end -}}
{{- define "tapwire.webhookName" -}}{{ include "tapwire.fullname" . | trunc 46 | trimSuffix "-" }}-sidecar-injector{{- end -}}
{{- define "tapwire.replayDefaulterName" -}}{{ include "tapwire.fullname" . | trunc 45 | trimSuffix "-" }}-replay-defaulter{{- end -}}
{{- define "tapwire.replayValidatorName" -}}{{ include "tapwire.fullname" . | trunc 45 | trimSuffix "-" }}-replay-validator{{- end -}}
{{- define "tapwire.webhookCertName" -}}{{ include "tapwire.fullname" . | trunc 51 | trimSuffix "-" }}-webhook-tls{{- end -}}
{{- define "tapwire.dlpKeySecretName" -}}
{{- if .Values.dlp.keySecret -}}{{ .Values.dlp.keySecret }}{{- else -}}{{ include "tapwire.fullname" . | trunc 55 | trimSuffix "-" }}-dlp-key{{- end -}}
{{- end -}}
{{- define "tapwire.apiKeySecretName" -}}
{{- if .Values.apiKeySecret -}}{{ .Values.apiKeySecret }}{{- else -}}{{ include "tapwire.fullname" . | trunc 55 | trimSuffix "-" }}-api-key{{- end -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "tapwire.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "tapwire.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: (list $ "operator"). */}}
{{- define "tapwire.selectorLabels" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ include "tapwire.name" $ }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* The image reference: registry/repository, then @digest, else :tag (appVersion by default). */}}
{{- define "tapwire.image" -}}
{{- $repo := .Values.image.repository -}}
{{- if .Values.image.registry -}}{{- $repo = printf "%s/%s" (trimSuffix "/" .Values.image.registry) $repo -}}{{- end -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repo .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
Resources of one container: (list "operator.resources" $resources $autopilot).
Quantities become strings. With autopilot, requests must equal limits for
cpu, memory and ephemeral-storage: a missing limit (or request) is taken from
the other, different values fail the render. Values are compared as written:
write both the same way (500m and 0.5 are the same amount, but not here).
*/}}
{{- define "tapwire.resources" -}}
{{- $where := index . 0 -}}
{{- $res := index . 1 | default dict -}}
{{- $autopilot := index . 2 -}}
{{- $req := dict -}}
{{- range $k, $v := ($res.requests | default dict) -}}{{- if not (kindIs "invalid" $v) -}}{{- $_ := set $req $k (toString $v) -}}{{- end -}}{{- end -}}
{{- $lim := dict -}}
{{- range $k, $v := ($res.limits | default dict) -}}{{- if not (kindIs "invalid" $v) -}}{{- $_ := set $lim $k (toString $v) -}}{{- end -}}{{- end -}}
{{- if $autopilot -}}
{{- range $k := list "cpu" "memory" "ephemeral-storage" -}}
{{- $r := get $req $k -}}
{{- $l := get $lim $k -}}
{{- if and (not $r) (not $l) -}}
{{- fail (printf "autopilot: true needs %s.requests.%s: GKE Autopilot wants requests equal to limits for cpu, memory and ephemeral-storage on every container" $where $k) -}}
{{- end -}}
{{- if and $r $l (ne $r $l) -}}
{{- fail (printf "autopilot: true needs %s.requests.%s equal to %s.limits.%s (got %s and %s): GKE Autopilot wants requests equal to limits; write both the same way" $where $k $where $k $r $l) -}}
{{- end -}}
{{- $v := $r | default $l -}}
{{- $_ := set $req $k $v -}}
{{- $_ := set $lim $k $v -}}
{{- end -}}
{{- end -}}
{{- $out := dict -}}
{{- if $req -}}{{- $_ := set $out "requests" $req -}}{{- end -}}
{{- if $lim -}}{{- $_ := set $out "limits" $lim -}}{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* Pod security context of the non-root components. */}}
{{- define "tapwire.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container security context of the non-root components. */}}
{{- define "tapwire.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The forwarder's in-cluster URL. */}}
{{- define "tapwire.forwarderUrl" -}}
{{- printf "http://%s.%s.svc:%v" (include "tapwire.forwarderName" .) .Release.Namespace .Values.forwarder.port -}}
{{- end -}}

{{/* A YAML value given as a string or a mapping, as text. */}}
{{- define "tapwire.yamlText" -}}
{{- if kindIs "string" . -}}{{ . }}{{- else -}}{{ toYaml . }}{{- end -}}
{{- end -}}

{{/* True when filterRule is neither built-in rule set. */}}
{{- define "tapwire.customFilter" -}}
{{- if not (and (kindIs "string" .Values.filterRule) (has .Values.filterRule (list "standard" "none"))) -}}true{{- end -}}
{{- end -}}

{{/* The WorkloadAllowlist name for the pinned digest (as `tapwire autopilot allowlist` names it). */}}
{{- define "tapwire.allowlistName" -}}
{{- printf "tapwire-nettap-%s" (trimPrefix "sha256:" .Values.image.digest | trunc 12) -}}
{{- end -}}

{{/* Settings that cannot work together fail the render with a reason. */}}
{{- define "tapwire.validate" -}}
{{- if and (gt (int .Values.operator.replicas) 1) (not .Values.webhook.certManager.enabled) -}}
{{- fail "operator.replicas > 1 needs webhook.certManager.enabled: without cert-manager each replica generates its own serving certificate and they would overwrite each other's caBundle" -}}
{{- end -}}
{{- if and .Values.autopilot .Values.ebpf.enabled (not .Values.image.digest) -}}
{{- fail "autopilot: true with ebpf.enabled needs image.digest (sha256:...): the WorkloadAllowlist that admits the eBPF DaemonSet pins one image digest (see `tapwire autopilot allowlist` and docs/helm.md)" -}}
{{- end -}}
{{- if and .Values.apiKey .Values.apiKeySecret -}}
{{- fail "set apiKey or apiKeySecret, not both" -}}
{{- end -}}
{{- if and (not .Values.dlp.enabled) (or .Values.dlp.config .Values.dlp.keySecret) -}}
{{- fail "dlp.config and dlp.keySecret have no effect with dlp.enabled: false; remove them or enable DLP" -}}
{{- end -}}
{{- end -}}

{{/* The names of a list of EnvVar entries, comma-separated (storage.env for the replay controller). */}}
{{- define "tapwire.envNames" -}}
{{- $names := list -}}
{{- range . }}{{ $names = append $names .name }}{{ end -}}
{{- join "," $names -}}
{{- end -}}
