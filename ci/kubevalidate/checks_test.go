package main

import (
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes/scheme"
)

// A hardened Deployment that passes every rule; cases below break one thing at a time.
const goodDeployment = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, labels: {app: api}}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      terminationGracePeriodSeconds: 200
      securityContext: {runAsNonRoot: true, runAsUser: 1000, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: api
          image: openplane
          ports: [{name: http, containerPort: 8000}]
          envFrom: [{configMapRef: {name: cfg}}]
          env:
            - {name: PW, valueFrom: {secretKeyRef: {name: pg, key: password}}}
            - {name: POSTGRES_URI, value: "postgres://u:$(PW)@db/x"}
          readinessProbe: {httpGet: {path: /ok, port: http}}
          resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 256Mi}}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
          volumeMounts: [{name: tmp, mountPath: /tmp}]
      volumes: [{name: tmp, emptyDir: {}}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS: "180"}
---
apiVersion: v1
kind: Secret
metadata: {name: pg}
data: {password: eA==}
---
apiVersion: v1
kind: Service
metadata: {name: api}
spec:
  selector: {app: api}
  ports: [{port: 8000, targetPort: http}]
`

func run(t *testing.T, manifest string, opt checkOptions) []string {
	t.Helper()
	decoder := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	var objects []object
	var problems []string
	for i, doc := range strings.Split(manifest, "\n---\n") {
		o, err := decode(decoder, []byte(doc))
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if o != nil {
			o.source = fmt.Sprintf("doc%d", i+1)
			objects = append(objects, *o)
		}
	}
	return append(problems, check(objects, opt)...)
}

func TestRules(t *testing.T) {
	cases := []struct {
		name    string
		edit    func(string) string
		want    string // substring of a problem; "" = no problem at all
		options checkOptions
	}{
		{"valid", func(s string) string { return s }, "", checkOptions{hardened: true}},
		{"unknown field", func(s string) string {
			return strings.Replace(s, "image: openplane", "image: openplane\n          imagePullPolicyy: Always", 1)
		}, `unknown field "spec.template.spec.containers[0].imagePullPolicyy"`, checkOptions{}},
		{"duplicate key", func(s string) string {
			return strings.Replace(s, "image: openplane", "image: openplane\n          image: other", 1)
		}, `"image" already set`, checkOptions{}},
		{"wrong type", func(s string) string {
			return strings.Replace(s, "terminationGracePeriodSeconds: 200", `terminationGracePeriodSeconds: "200"`, 1)
		}, "cannot unmarshal string", checkOptions{}},
		{"unknown kind", func(s string) string {
			return s + "\n---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"
		}, "unknown kind", checkOptions{}},
		{"selector mismatch", func(s string) string {
			return strings.Replace(s, "selector: {matchLabels: {app: api}}", "selector: {matchLabels: {app: apx}}", 1)
		}, "selector does not match", checkOptions{}},
		{"missing secret", func(s string) string { return strings.Replace(s, "metadata: {name: pg}", "metadata: {name: pg2}", 1) },
			`Secret "pg" is neither rendered nor declared external`, checkOptions{}},
		{"external secret", func(s string) string { return strings.Replace(s, "metadata: {name: pg}", "metadata: {name: pg2}", 1) },
			"", checkOptions{externalSecrets: []string{"pg"}, hardened: true}},
		{"missing secret key", func(s string) string { return strings.Replace(s, "key: password", "key: pass", 1) },
			`has no key "pass"`, checkOptions{}},
		{"undefined $(VAR)", func(s string) string { return strings.Replace(s, "$(PW)", "$(PASSWORD)", 1) },
			"refers to $(PASSWORD)", checkOptions{}},
		{"grace too short", func(s string) string {
			return strings.Replace(s, "terminationGracePeriodSeconds: 200", "terminationGracePeriodSeconds: 30", 1)
		}, "shorter than openplane's drain", checkOptions{}},
		{"probe port", func(s string) string { return strings.Replace(s, "port: http}}", "port: web}}", 1) },
			`uses port "web"`, checkOptions{}},
		{"service selects nothing", func(s string) string { return strings.Replace(s, "selector: {app: api}", "selector: {app: nope}", 1) },
			"matches no rendered workload", checkOptions{}},
		{"mount without volume", func(s string) string {
			return strings.Replace(s, "[{name: tmp, emptyDir: {}}]", "[{name: scratch, emptyDir: {}}]", 1)
		},
			`volumeMount "tmp" has no volume`, checkOptions{}},
		{"writable root", func(s string) string {
			return strings.Replace(s, "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", 1)
		},
			"readOnlyRootFilesystem must be true", checkOptions{hardened: true}},
		{"capabilities", func(s string) string { return strings.Replace(s, "drop: [ALL]", "drop: [NET_RAW]", 1) },
			"capabilities must drop ALL", checkOptions{hardened: true}},
		{"pre-install hook needs release secret", func(s string) string {
			return s + `
---
apiVersion: batch/v1
kind: Job
metadata: {name: migrate, annotations: {"helm.sh/hook": "pre-install,pre-upgrade"}}
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: migrate
          image: openplane
          env: [{name: PW, valueFrom: {secretKeyRef: {name: pg, key: password}}}]
`
		}, `pre-install hook uses Secret "pg"`, checkOptions{}},
		{"missing configmap volume", func(s string) string { return withVolume(s, "configMap: {name: manifest}") },
			`volume "extra": ConfigMap "manifest" is neither rendered nor declared external`, checkOptions{}},
		{"external configmap volume", func(s string) string { return withVolume(s, "configMap: {name: manifest}") },
			"", checkOptions{externalConfigMaps: []string{"manifest"}, hardened: true}},
		{"configmap volume item key", func(s string) string {
			return withVolume(s, "configMap: {name: cfg, items: [{key: deployments.yaml, path: deployments.yaml}]}")
		}, `volume "extra": ConfigMap "cfg" has no key "deployments.yaml"`, checkOptions{}},
		{"secret volume item key", func(s string) string {
			return withVolume(s, "secret: {secretName: pg, items: [{key: api_keys, path: api_keys}]}")
		}, `volume "extra": Secret "pg" has no key "api_keys"`, checkOptions{}},
		{"secret volume with its key", func(s string) string {
			return withVolume(s, "secret: {secretName: pg, items: [{key: password, path: password}]}")
		}, "", checkOptions{hardened: true}},
		{"hpa with fixed replicas", func(s string) string {
			return strings.Replace(s, "spec:\n  selector: {matchLabels: {app: api}}", "spec:\n  replicas: 2\n  selector: {matchLabels: {app: api}}", 1) + `
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: api}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: api}
  minReplicas: 1
  maxReplicas: 3
`
		}, "sets spec.replicas while an HPA scales it", checkOptions{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			problems := run(t, tc.edit(goodDeployment), tc.options)
			if tc.want == "" {
				if len(problems) > 0 {
					t.Fatalf("want no problem, got %q", problems)
				}
				return
			}
			for _, p := range problems {
				if strings.Contains(p, tc.want) {
					return
				}
			}
			t.Fatalf("want a problem containing %q, got %q", tc.want, problems)
		})
	}
}

// withVolume adds a volume named "extra" (source given as YAML flow) to the good Deployment.
func withVolume(s, source string) string {
	return strings.Replace(s, "volumes: [{name: tmp, emptyDir: {}}]", "volumes: [{name: tmp, emptyDir: {}}, {name: extra, "+source+"}]", 1)
}
