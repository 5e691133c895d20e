// Command kubevalidate checks rendered Kubernetes manifests offline, without a cluster
// or downloaded schemas.
//
// Every YAML document is decoded with client-go's scheme in strict mode: an unknown
// kind, an unknown or duplicated field, or a wrongly typed value is an error, as the API
// server's strict field validation would report it. Then the objects are checked against
// each other and against the hardening rules this repository promises (see checks.go).
//
//	kubevalidate [-external-secret NAME]... [-external-configmap NAME]... [-hardened] FILE...   ("-" reads stdin)
//
// Exit status: 0 when every document is valid, 1 when any is not, 2 on usage errors.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// object is one decoded document and where it came from.
type object struct {
	source string // file:document-number
	obj    runtime.Object
	kind   string
	ns     string
	name   string
}

func main() {
	var external listFlag
	flag.Var(&external, "external-secret", "name of a Secret that exists outside the rendered set (repeatable)")
	var externalCMs listFlag
	flag.Var(&externalCMs, "external-configmap", "name of a ConfigMap that exists outside the rendered set (repeatable)")
	hardened := flag.Bool("hardened", true, "require the pod hardening rules (non-root, read-only root, no privilege escalation, drop ALL, RuntimeDefault seccomp, resources)")
	quiet := flag.Bool("q", false, "print only problems and the summary line")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: kubevalidate [-external-secret NAME]... [-external-configmap NAME]... [-hardened=false] [-q] FILE... (- for stdin)")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}

	decoder := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	var objects []object
	var problems []string
	for _, path := range flag.Args() {
		docs, err := readDocuments(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "kubevalidate: %v\n", err)
			os.Exit(2)
		}
		for i, doc := range docs {
			src := fmt.Sprintf("%s:%d", path, i+1)
			o, err := decode(decoder, doc)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", src, err))
				continue
			}
			if o == nil {
				continue // an empty document (only comments)
			}
			o.source = src
			objects = append(objects, *o)
		}
	}

	problems = append(problems, check(objects, checkOptions{externalSecrets: external, externalConfigMaps: externalCMs, hardened: *hardened})...)

	kinds := map[string]int{}
	for _, o := range objects {
		kinds[o.kind]++
	}
	if !*quiet {
		for _, o := range objects {
			fmt.Printf("ok   %-26s %s/%s\n", o.kind, nsOrDash(o.ns), o.name)
		}
	}
	for _, p := range problems {
		fmt.Printf("FAIL %s\n", p)
	}
	fmt.Printf("kubevalidate: %d objects (%s), %d problem(s)\n", len(objects), summarizeKinds(kinds), len(problems))
	if len(problems) > 0 {
		os.Exit(1)
	}
}

func nsOrDash(ns string) string {
	if ns == "" {
		return "-"
	}
	return ns
}

func summarizeKinds(kinds map[string]int) string {
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%d %s", kinds[k], k))
	}
	return strings.Join(parts, ", ")
}

func readDocuments(path string) ([][]byte, error) {
	var r io.Reader
	if path == "-" {
		r = os.Stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var docs [][]byte
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		docs = append(docs, doc)
	}
}

// decode turns one YAML document into a typed object, strictly. It returns nil, nil for
// a document that holds nothing but comments or whitespace.
func decode(decoder runtime.Decoder, doc []byte) (*object, error) {
	// YAMLToJSONStrict rejects duplicate keys, which plain YAML parsing would let through
	// (the last one would silently win).
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	if t := bytes.TrimSpace(js); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return nil, nil
	}
	obj, gvk, err := decoder.Decode(js, nil, nil)
	if err != nil {
		if runtime.IsNotRegisteredError(err) || runtime.IsMissingKind(err) || runtime.IsMissingVersion(err) {
			return nil, fmt.Errorf("unknown kind: %w", err)
		}
		// Strict decoding errors (unknown/duplicate fields) come back with the object.
		return nil, err
	}
	meta, ok := obj.(interface {
		GetName() string
		GetNamespace() string
	})
	if !ok {
		return nil, fmt.Errorf("%s has no object metadata", gvk.Kind)
	}
	return &object{obj: obj, kind: gvk.Kind, ns: meta.GetNamespace(), name: meta.GetName()}, nil
}
