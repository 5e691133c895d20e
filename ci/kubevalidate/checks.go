package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
)

type checkOptions struct {
	externalSecrets    []string
	externalConfigMaps []string
	hardened           bool
}

// workload is a pod template with the object that owns it.
type workload struct {
	o        object
	template *corev1.PodTemplateSpec
	selector *metav1.LabelSelector // nil for Jobs
	claims   []string              // a StatefulSet's volumeClaimTemplates, usable as volumes
}

// check runs the cross-object and per-object rules the API server would enforce at
// admission (names, selectors, references inside a pod) plus the ones a cluster would
// only reveal at run time (dangling Secret/ConfigMap references, Services selecting
// nothing, a pre-install hook that needs objects created after it, a grace period
// shorter than openplane's drain) and the hardening rules.
func check(objects []object, opt checkOptions) []string {
	var problems []string
	fail := func(o object, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s %s/%s: %s", o.source, o.kind, o.name, fmt.Sprintf(format, args...)))
	}

	secrets := map[string]object{}
	configMaps := map[string]*corev1.ConfigMap{}
	services := map[string]*corev1.Service{}
	deployments := map[string]*appsv1.Deployment{}
	seen := map[string]object{}
	var workloads []workload

	for _, o := range objects {
		key := o.kind + "/" + o.ns + "/" + o.name
		if prev, dup := seen[key]; dup {
			fail(o, "duplicate object (also at %s)", prev.source)
		}
		seen[key] = o
		checkMeta(o, fail)
		switch v := o.obj.(type) {
		case *corev1.Secret:
			secrets[o.name] = o
		case *corev1.ConfigMap:
			configMaps[o.name] = v
			for k := range v.Data {
				if errs := validation.IsConfigMapKey(k); len(errs) > 0 {
					fail(o, "data key %q: %s", k, strings.Join(errs, "; "))
				}
			}
		case *corev1.Service:
			services[o.name] = v
			if errs := validation.IsDNS1035Label(o.name); len(errs) > 0 {
				fail(o, "Service name must be a DNS-1035 label: %s", strings.Join(errs, "; "))
			}
		case *appsv1.Deployment:
			deployments[o.name] = v
			workloads = append(workloads, workload{o: o, template: &v.Spec.Template, selector: v.Spec.Selector})
		case *appsv1.StatefulSet:
			var claims []string
			for _, c := range v.Spec.VolumeClaimTemplates {
				claims = append(claims, c.Name)
			}
			workloads = append(workloads, workload{o: o, template: &v.Spec.Template, selector: v.Spec.Selector, claims: claims})
		case *batchv1.Job:
			workloads = append(workloads, workload{o: o, template: &v.Spec.Template})
		}
	}
	external := map[string]bool{}
	for _, s := range opt.externalSecrets {
		external[s] = true
	}
	externalCMs := map[string]bool{}
	for _, c := range opt.externalConfigMaps {
		externalCMs[c] = true
	}

	for _, w := range workloads {
		checkWorkload(w, secrets, configMaps, external, externalCMs, opt, fail)
	}

	for _, o := range objects {
		switch v := o.obj.(type) {
		case *corev1.Service:
			checkService(o, v, workloads, fail)
		case *appsv1.StatefulSet:
			svc, ok := services[v.Spec.ServiceName]
			if !ok {
				fail(o, "serviceName %q is not a rendered Service", v.Spec.ServiceName)
			} else if svc.Spec.ClusterIP != corev1.ClusterIPNone {
				fail(o, "serviceName %q should be a headless Service (clusterIP: None)", v.Spec.ServiceName)
			}
		case *autoscalingv2.HorizontalPodAutoscaler:
			checkHPA(o, v, deployments, fail)
		case *policyv1.PodDisruptionBudget:
			if v.Spec.MinAvailable != nil && v.Spec.MaxUnavailable != nil {
				fail(o, "minAvailable and maxUnavailable are mutually exclusive")
			}
			if !selectsAny(v.Spec.Selector, workloads) {
				fail(o, "selector matches no rendered workload")
			}
		}
	}
	return problems
}

func checkMeta(o object, fail func(object, string, ...any)) {
	if o.name == "" {
		fail(o, "metadata.name is empty")
	} else if errs := validation.IsDNS1123Subdomain(o.name); len(errs) > 0 {
		fail(o, "metadata.name: %s", strings.Join(errs, "; "))
	}
	meta, ok := o.obj.(metav1.Object)
	if !ok {
		return
	}
	checkLabels(o, "metadata.labels", meta.GetLabels(), fail)
	for k := range meta.GetAnnotations() {
		if errs := validation.IsQualifiedName(strings.ToLower(k)); len(errs) > 0 {
			fail(o, "annotation key %q: %s", k, strings.Join(errs, "; "))
		}
	}
}

func checkLabels(o object, where string, l map[string]string, fail func(object, string, ...any)) {
	for k, v := range l {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			fail(o, "%s key %q: %s", where, k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			fail(o, "%s[%s]=%q: %s", where, k, v, strings.Join(errs, "; "))
		}
	}
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)`)

func checkWorkload(w workload, secrets map[string]object, configMaps map[string]*corev1.ConfigMap, external, externalCMs map[string]bool, opt checkOptions, fail func(object, string, ...any)) {
	o, spec := w.o, &w.template.Spec
	checkLabels(o, "template labels", w.template.Labels, fail)
	if w.selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(w.selector)
		if err != nil {
			fail(o, "selector: %v", err)
		} else if sel.Empty() || !sel.Matches(labels.Set(w.template.Labels)) {
			fail(o, "selector does not match the pod template's labels (the API server rejects this)")
		}
	}

	hook := o.hookPhases()
	preInstall := hook["pre-install"]
	secretOK := func(name string) string {
		if external[name] {
			return ""
		}
		s, ok := secrets[name]
		if !ok {
			return fmt.Sprintf("Secret %q is neither rendered nor declared external", name)
		}
		if preInstall && !s.hookPhases()["pre-install"] {
			return fmt.Sprintf("pre-install hook uses Secret %q, which is created only after the pre-install hooks", name)
		}
		return ""
	}
	configMapOK := func(name string) string {
		if externalCMs[name] {
			return ""
		}
		if _, ok := configMaps[name]; !ok {
			return fmt.Sprintf("ConfigMap %q is neither rendered nor declared external", name)
		}
		if preInstall {
			return fmt.Sprintf("pre-install hook uses ConfigMap %q, which is created only after the pre-install hooks", name)
		}
		return ""
	}

	volumes := map[string]bool{}
	for _, name := range w.claims {
		volumes[name] = true
	}
	for _, v := range spec.Volumes {
		if volumes[v.Name] {
			fail(o, "volume %q is defined twice", v.Name)
		}
		volumes[v.Name] = true
		if v.Secret != nil && (v.Secret.Optional == nil || !*v.Secret.Optional) {
			if msg := secretOK(v.Secret.SecretName); msg != "" {
				fail(o, "volume %q: %s", v.Name, msg)
			} else if s, ok := secrets[v.Secret.SecretName]; ok && !external[v.Secret.SecretName] {
				// A missing key in items keeps the pod in ContainerCreating.
				for _, it := range v.Secret.Items {
					if !secretHasKey(s, it.Key) {
						fail(o, "volume %q: Secret %q has no key %q", v.Name, v.Secret.SecretName, it.Key)
					}
				}
			}
		}
		if v.ConfigMap != nil && (v.ConfigMap.Optional == nil || !*v.ConfigMap.Optional) {
			if msg := configMapOK(v.ConfigMap.Name); msg != "" {
				fail(o, "volume %q: %s", v.Name, msg)
			} else if cm, ok := configMaps[v.ConfigMap.Name]; ok && !externalCMs[v.ConfigMap.Name] {
				for _, it := range v.ConfigMap.Items {
					_, inData := cm.Data[it.Key]
					_, inBinary := cm.BinaryData[it.Key]
					if !inData && !inBinary {
						fail(o, "volume %q: ConfigMap %q has no key %q", v.Name, v.ConfigMap.Name, it.Key)
					}
				}
			}
		}
	}
	for _, ps := range spec.ImagePullSecrets {
		if ps.Name == "" {
			fail(o, "imagePullSecrets entry without a name")
		}
	}
	if opt.hardened {
		checkPodHardening(o, spec, fail)
	}

	graceNeeded := -1
	all := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
	for _, c := range all {
		where := fmt.Sprintf("container %q", c.Name)
		if errs := validation.IsDNS1123Label(c.Name); len(errs) > 0 {
			fail(o, "%s: name: %s", where, strings.Join(errs, "; "))
		}
		ports := map[string]bool{}
		for _, p := range c.Ports {
			if p.Name != "" {
				if errs := validation.IsValidPortName(p.Name); len(errs) > 0 {
					fail(o, "%s: port name %q: %s", where, p.Name, strings.Join(errs, "; "))
				}
				ports[p.Name] = true
			}
		}
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				fail(o, "%s: volumeMount %q has no volume", where, m.Name)
			}
		}
		defined := map[string]bool{}
		for _, ef := range c.EnvFrom {
			if ef.ConfigMapRef != nil && (ef.ConfigMapRef.Optional == nil || !*ef.ConfigMapRef.Optional) {
				if msg := configMapOK(ef.ConfigMapRef.Name); msg != "" {
					fail(o, "%s: envFrom: %s", where, msg)
				} else if cm := configMaps[ef.ConfigMapRef.Name]; cm != nil {
					for k := range cm.Data {
						defined[k] = true
					}
					if g, err := strconv.Atoi(cm.Data["BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS"]); err == nil {
						graceNeeded = g + 15
					}
				}
			}
			if ef.SecretRef != nil && (ef.SecretRef.Optional == nil || !*ef.SecretRef.Optional) {
				if msg := secretOK(ef.SecretRef.Name); msg != "" {
					fail(o, "%s: envFrom: %s", where, msg)
				}
			}
		}
		for _, e := range c.Env {
			if errs := validation.IsEnvVarName(e.Name); len(errs) > 0 {
				fail(o, "%s: env %q: %s", where, e.Name, strings.Join(errs, "; "))
			}
			// $(VAR) expands only from variables defined earlier in the list (or envFrom).
			for _, m := range varRef.FindAllStringSubmatch(e.Value, -1) {
				if !defined[m[1]] {
					fail(o, "%s: env %q refers to $(%s), which is not defined before it", where, e.Name, m[1])
				}
			}
			if e.ValueFrom != nil {
				if r := e.ValueFrom.SecretKeyRef; r != nil && (r.Optional == nil || !*r.Optional) {
					if msg := secretOK(r.Name); msg != "" {
						fail(o, "%s: env %q: %s", where, e.Name, msg)
					} else if s, ok := secrets[r.Name]; ok && !external[r.Name] {
						if !secretHasKey(s, r.Key) {
							fail(o, "%s: env %q: Secret %q has no key %q", where, e.Name, r.Name, r.Key)
						}
					}
				}
				if r := e.ValueFrom.ConfigMapKeyRef; r != nil && (r.Optional == nil || !*r.Optional) {
					if msg := configMapOK(r.Name); msg != "" {
						fail(o, "%s: env %q: %s", where, e.Name, msg)
					} else if cm, ok := configMaps[r.Name]; ok && !externalCMs[r.Name] {
						if _, has := cm.Data[r.Key]; !has {
							fail(o, "%s: env %q: ConfigMap %q has no key %q", where, e.Name, r.Name, r.Key)
						}
					}
				}
			}
			if e.Name == "BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS" {
				if g, err := strconv.Atoi(e.Value); err == nil {
					graceNeeded = g + 15
				}
			}
			defined[e.Name] = true
		}
		for name, p := range map[string]*corev1.Probe{"startupProbe": c.StartupProbe, "readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe} {
			if p != nil && p.HTTPGet != nil && p.HTTPGet.Port.StrVal != "" && !ports[p.HTTPGet.Port.StrVal] {
				fail(o, "%s: %s uses port %q, which the container does not declare", where, name, p.HTTPGet.Port.StrVal)
			}
		}
		if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Exec != nil {
			if cmd := c.Lifecycle.PreStop.Exec.Command; len(cmd) == 2 && cmd[0] == "sleep" {
				if s, err := strconv.Atoi(cmd[1]); err == nil && graceNeeded >= 0 {
					graceNeeded += s
				}
			}
		}
	}
	// openplane drains for BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS and exits at the latest 15 s
	// later; Kubernetes must not SIGKILL it before then (Jobs do not drain).
	if graceNeeded >= 0 && o.kind != "Job" {
		got := int64(corev1.DefaultTerminationGracePeriodSeconds)
		if spec.TerminationGracePeriodSeconds != nil {
			got = *spec.TerminationGracePeriodSeconds
		}
		if got < int64(graceNeeded) {
			fail(o, "terminationGracePeriodSeconds=%d is shorter than openplane's drain (BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS + 15 s + preStop = %d)", got, graceNeeded)
		}
	}
}

func checkPodHardening(o object, spec *corev1.PodSpec, fail func(object, string, ...any)) {
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	all := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
	for _, c := range all {
		where := fmt.Sprintf("container %q", c.Name)
		sc := c.SecurityContext
		if sc == nil {
			fail(o, "%s: no securityContext", where)
			continue
		}
		if !isTrue(sc.RunAsNonRoot) && !isTrue(psc.RunAsNonRoot) {
			fail(o, "%s: runAsNonRoot is not set", where)
		}
		uid := sc.RunAsUser
		if uid == nil {
			uid = psc.RunAsUser
		}
		if uid != nil && *uid == 0 {
			fail(o, "%s: runs as uid 0", where)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			fail(o, "%s: allowPrivilegeEscalation must be false", where)
		}
		if !isTrue(sc.ReadOnlyRootFilesystem) {
			fail(o, "%s: readOnlyRootFilesystem must be true", where)
		}
		if isTrue(sc.Privileged) {
			fail(o, "%s: privileged", where)
		}
		dropsAll := false
		if sc.Capabilities != nil {
			for _, d := range sc.Capabilities.Drop {
				dropsAll = dropsAll || d == "ALL"
			}
			if len(sc.Capabilities.Add) > 0 {
				fail(o, "%s: adds capabilities %v", where, sc.Capabilities.Add)
			}
		}
		if !dropsAll {
			fail(o, "%s: capabilities must drop ALL", where)
		}
		seccomp := sc.SeccompProfile
		if seccomp == nil {
			seccomp = psc.SeccompProfile
		}
		if seccomp == nil || (seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault && seccomp.Type != corev1.SeccompProfileTypeLocalhost) {
			fail(o, "%s: seccompProfile must be RuntimeDefault (or Localhost)", where)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
			fail(o, "%s: cpu and memory requests must be set", where)
		}
		if c.Resources.Limits.Memory().IsZero() {
			fail(o, "%s: a memory limit must be set", where)
		}
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		fail(o, "uses host namespaces")
	}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			fail(o, "volume %q is a hostPath", v.Name)
		}
	}
}

func checkService(o object, svc *corev1.Service, workloads []workload, fail func(object, string, ...any)) {
	if len(svc.Spec.Selector) == 0 {
		fail(o, "Service without a selector")
		return
	}
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	var matched []workload
	for _, w := range workloads {
		if w.o.kind != "Job" && sel.Matches(labels.Set(w.template.Labels)) {
			matched = append(matched, w)
		}
	}
	if len(matched) == 0 {
		fail(o, "selector %v matches no rendered workload", svc.Spec.Selector)
		return
	}
	for _, p := range svc.Spec.Ports {
		if p.TargetPort.StrVal == "" {
			continue
		}
		for _, w := range matched {
			found := false
			for _, c := range w.template.Spec.Containers {
				for _, cp := range c.Ports {
					found = found || cp.Name == p.TargetPort.StrVal
				}
			}
			if !found {
				fail(o, "targetPort %q is not a named port of %s/%s", p.TargetPort.StrVal, w.o.kind, w.o.name)
			}
		}
	}
}

func checkHPA(o object, hpa *autoscalingv2.HorizontalPodAutoscaler, deployments map[string]*appsv1.Deployment, fail func(object, string, ...any)) {
	ref := hpa.Spec.ScaleTargetRef
	if ref.Kind != "Deployment" {
		return
	}
	d, ok := deployments[ref.Name]
	if !ok {
		fail(o, "scaleTargetRef Deployment %q is not rendered", ref.Name)
		return
	}
	if d.Spec.Replicas != nil {
		fail(o, "Deployment %q sets spec.replicas while an HPA scales it: every upgrade would reset the replica count", ref.Name)
	}
	if hpa.Spec.MinReplicas != nil && *hpa.Spec.MinReplicas > hpa.Spec.MaxReplicas {
		fail(o, "minReplicas > maxReplicas")
	}
	for _, m := range hpa.Spec.Metrics {
		if m.Type != autoscalingv2.ResourceMetricSourceType || m.Resource == nil || m.Resource.Target.Type != autoscalingv2.UtilizationMetricType {
			continue
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			if q, ok := c.Resources.Requests[m.Resource.Name]; !ok || q.IsZero() {
				fail(o, "utilization target on %s, but container %q of %q has no %s request", m.Resource.Name, c.Name, ref.Name, m.Resource.Name)
			}
		}
	}
}

func selectsAny(s *metav1.LabelSelector, workloads []workload) bool {
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil || sel.Empty() {
		return false
	}
	for _, w := range workloads {
		if sel.Matches(labels.Set(w.template.Labels)) {
			return true
		}
	}
	return false
}

func secretHasKey(s object, key string) bool {
	sec, ok := s.obj.(*corev1.Secret)
	if !ok {
		return false
	}
	_, inData := sec.Data[key]
	_, inString := sec.StringData[key]
	return inData || inString
}

// hookPhases returns the Helm hook phases an object belongs to (empty for release objects).
func (o object) hookPhases() map[string]bool {
	phases := map[string]bool{}
	meta, ok := o.obj.(metav1.Object)
	if !ok {
		return phases
	}
	for _, p := range strings.Split(meta.GetAnnotations()["helm.sh/hook"], ",") {
		if p = strings.TrimSpace(p); p != "" {
			phases[p] = true
		}
	}
	return phases
}

func isTrue(b *bool) bool { return b != nil && *b }
