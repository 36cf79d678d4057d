// helm-render renders a Helm chart the way `helm template` does, closely
// enough to check this repository's chart where helm itself is not installed.
// It is a stand-in, not a replacement: operators should still run
// `helm lint` and `helm template` (which also validate values.schema.json;
// here scripts/test-chart.mjs does that with ajv).
//
// What it mimics: values.yaml deep-merged with -f files (null deletes a key)
// and --set/--set-string overrides; numbers in values are float64 as in Helm
// (values pass through JSON there); .Release, .Chart, .Values, .Capabilities,
// .Template; Sprig's TxtFuncMap minus env/expandenv plus include, tpl,
// toYaml, fromYaml, fromYamlArray, toJson, fromJson, required, fail, lookup
// (always empty); missingkey=zero with "<no value>" removed. Every rendered
// document must parse as YAML and carry apiVersion and kind.
//
// Build (Debian 12, offline, GOPATH mode):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o helm-render ./tools/helm-render
//
// Usage: helm-render [-f values.yaml]... [--set k=v]... [--set-string k=v]...
//
//	[--name R] [--namespace N] [--kube-version v1.30.0] [-a apiVersion/Kind]...
//	[--show-notes] CHART_DIR
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"gopkg.in/yaml.v3"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

type chartMeta struct {
	APIVersion  string `yaml:"apiVersion"`
	Name        string `yaml:"name"`
	Version     string `yaml:"version"`
	AppVersion  string `yaml:"appVersion"`
	Description string `yaml:"description"`
	Type        string `yaml:"type"`
	KubeVersion string `yaml:"kubeVersion"`
}

// Field names follow Helm's chart.Metadata as seen from templates.
type chartInfo struct {
	Name, Version, AppVersion, Description, Type, KubeVersion, APIVersion string
}

type release struct {
	Name, Namespace, Service string
	IsInstall, IsUpgrade     bool
	Revision                 int
}

type kubeVersion struct{ Version, Major, Minor, GitVersion string }

func (k kubeVersion) String() string { return k.Version }

type apiVersions []string

// Has reports whether "group/version" or "group/version/Kind" is known.
func (a apiVersions) Has(v string) bool {
	for _, x := range a {
		if x == v {
			return true
		}
	}
	return false
}

type capabilities struct {
	KubeVersion kubeVersion
	APIVersions apiVersions
}

type templateInfo struct{ Name, BasePath string }

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	var files, sets, setStrings, extraAPIs multiFlag
	name, namespace, kubeVer := "release-name", "default", "v1.30.0"
	showNotes := false
	var chartDir string
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := func() (string, error) {
			if i+1 >= len(args) {
				return "", fmt.Errorf("%s needs a value", a)
			}
			i++
			return args[i], nil
		}
		var err error
		var v string
		switch {
		case a == "-f" || a == "--values":
			v, err = next()
			files.Set(v)
		case a == "--set":
			v, err = next()
			sets.Set(v)
		case a == "--set-string":
			v, err = next()
			setStrings.Set(v)
		case a == "--name":
			name, err = next()
		case a == "-n" || a == "--namespace":
			namespace, err = next()
		case a == "--kube-version":
			kubeVer, err = next()
		case a == "-a" || a == "--api-versions":
			v, err = next()
			extraAPIs.Set(v)
		case a == "--show-notes":
			showNotes = true
		case strings.HasPrefix(a, "-"):
			return fmt.Errorf("unknown flag %s", a)
		default:
			if chartDir != "" {
				return errors.New("only one chart directory")
			}
			chartDir = a
		}
		if err != nil {
			return err
		}
	}
	if chartDir == "" {
		return errors.New("usage: helm-render [flags] CHART_DIR")
	}

	meta, err := loadChart(chartDir)
	if err != nil {
		return err
	}
	values, err := loadValues(filepath.Join(chartDir, "values.yaml"), true)
	if err != nil {
		return err
	}
	for _, f := range files {
		over, err := loadValues(f, false)
		if err != nil {
			return err
		}
		values = mergeMaps(values, over)
	}
	for _, s := range sets {
		if err := applySet(values, s, false); err != nil {
			return err
		}
	}
	for _, s := range setStrings {
		if err := applySet(values, s, true); err != nil {
			return err
		}
	}

	kv := strings.TrimPrefix(kubeVer, "v")
	parts := strings.SplitN(kv, ".", 3)
	if len(parts) < 2 {
		return fmt.Errorf("bad --kube-version %q", kubeVer)
	}
	apis := append(apiVersions{
		"v1", "apps/v1", "batch/v1", "policy/v1", "autoscaling/v1", "autoscaling/v2",
		"networking.k8s.io/v1", "rbac.authorization.k8s.io/v1", "storage.k8s.io/v1",
		"admissionregistration.k8s.io/v1", "apiextensions.k8s.io/v1", "coordination.k8s.io/v1",
		"discovery.k8s.io/v1", "scheduling.k8s.io/v1", "apps/v1/Deployment", "v1/Service",
	}, extraAPIs...)

	top := map[string]interface{}{
		"Values":  values,
		"Release": release{Name: name, Namespace: namespace, Service: "Helm", IsInstall: true, Revision: 1},
		"Chart": chartInfo{Name: meta.Name, Version: meta.Version, AppVersion: meta.AppVersion,
			Description: meta.Description, Type: meta.Type, KubeVersion: meta.KubeVersion, APIVersion: meta.APIVersion},
		"Capabilities": capabilities{
			KubeVersion: kubeVersion{Version: "v" + kv, Major: parts[0], Minor: parts[1], GitVersion: "v" + kv},
			APIVersions: apis,
		},
		"Files": files0{},
	}
	return render(chartDir, meta.Name, top, showNotes)
}

// files0 answers .Files.Get / .Files.Glob with nothing: this chart reads no files.
type files0 struct{}

func (files0) Get(string) string { return "" }

func loadChart(dir string) (chartMeta, error) {
	var m chartMeta
	b, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return m, err
	}
	if err := yaml.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("Chart.yaml: %w", err)
	}
	if m.APIVersion != "v2" || m.Name == "" || m.Version == "" {
		return m, errors.New("Chart.yaml: apiVersion v2, name and version are required")
	}
	return m, nil
}

func loadValues(path string, optional bool) (map[string]interface{}, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if optional && os.IsNotExist(err) {
			return map[string]interface{}{}, nil
		}
		return nil, err
	}
	var v interface{}
	if err := yaml.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if v == nil {
		return map[string]interface{}{}, nil
	}
	m, ok := jsonish(v).(map[string]interface{})
	if !ok {
		return nil, fmt.Errorf("%s: values must be a map", path)
	}
	return m, nil
}

// jsonish converts yaml.v3 output to what Helm's JSON round trip yields:
// string-keyed maps and float64 numbers.
func jsonish(v interface{}) interface{} {
	switch t := v.(type) {
	case map[string]interface{}:
		for k, x := range t {
			t[k] = jsonish(x)
		}
		return t
	case map[interface{}]interface{}:
		m := map[string]interface{}{}
		for k, x := range t {
			m[fmt.Sprint(k)] = jsonish(x)
		}
		return m
	case []interface{}:
		for i, x := range t {
			t[i] = jsonish(x)
		}
		return t
	case int:
		return float64(t)
	case int64:
		return float64(t)
	case uint64:
		return float64(t)
	default:
		return v
	}
}

// mergeMaps returns base with over merged in; a null in over deletes the key.
func mergeMaps(base, over map[string]interface{}) map[string]interface{} {
	for k, ov := range over {
		if ov == nil {
			delete(base, k)
			continue
		}
		bm, bok := base[k].(map[string]interface{})
		om, ook := ov.(map[string]interface{})
		if bok && ook {
			base[k] = mergeMaps(bm, om)
		} else {
			base[k] = ov
		}
	}
	return base
}

// applySet handles "a.b\.c=v" with typed (or string) scalars and {x,y} lists.
func applySet(values map[string]interface{}, expr string, asString bool) error {
	for _, one := range splitUnescaped(expr, ',', true) {
		eq := strings.Index(one, "=")
		if eq < 1 {
			return fmt.Errorf("--set %q: expected key=value", one)
		}
		keys := splitUnescaped(one[:eq], '.', false)
		raw := one[eq+1:]
		var val interface{}
		if strings.HasPrefix(raw, "{") && strings.HasSuffix(raw, "}") {
			list := []interface{}{}
			for _, item := range strings.Split(raw[1:len(raw)-1], ";") {
				if item != "" {
					list = append(list, typed(item, asString))
				}
			}
			val = list
		} else {
			val = typed(raw, asString)
		}
		m := values
		for _, k := range keys[:len(keys)-1] {
			next, ok := m[k].(map[string]interface{})
			if !ok {
				next = map[string]interface{}{}
				m[k] = next
			}
			m = next
		}
		m[keys[len(keys)-1]] = val
	}
	return nil
}

func typed(s string, asString bool) interface{} {
	if asString {
		return s
	}
	switch s {
	case "true":
		return true
	case "false":
		return false
	case "null":
		return nil
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i // Helm's strvals keeps --set integers as int64
	}
	return s
}

// splitUnescaped splits on sep not preceded by a backslash; braces protect
// commas in list values ({a,b} is rewritten to use ';' internally).
func splitUnescaped(s string, sep byte, braces bool) []string {
	var out []string
	var cur strings.Builder
	depth := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case braces && c == '{':
			depth++
			cur.WriteByte(c)
		case braces && c == '}':
			depth--
			cur.WriteByte(c)
		case c == sep && depth == 0:
			out = append(out, cur.String())
			cur.Reset()
		case c == ',' && depth > 0:
			cur.WriteByte(';')
		default:
			cur.WriteByte(c)
		}
	}
	return append(out, cur.String())
}

func toYAML(v interface{}) (string, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	enc.Close()
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

func funcMap(root *template.Template) template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	includeDepth := 0
	f["include"] = func(name string, data interface{}) (string, error) {
		includeDepth++
		defer func() { includeDepth-- }()
		if includeDepth > 1000 {
			return "", fmt.Errorf("include %q: recursion too deep", name)
		}
		var buf strings.Builder
		if err := root.ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	f["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := root.Clone()
		if err != nil {
			return "", err
		}
		t, err = t.New("tpl").Parse(text)
		if err != nil {
			return "", fmt.Errorf("tpl: %w", err)
		}
		var buf strings.Builder
		if err := t.Execute(&buf, data); err != nil {
			return "", fmt.Errorf("tpl: %w", err)
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	f["toYaml"] = func(v interface{}) string { s, _ := toYAML(v); return s }
	f["mustToYaml"] = toYAML
	f["fromYaml"] = func(s string) map[string]interface{} {
		var v interface{}
		if err := yaml.Unmarshal([]byte(s), &v); err != nil {
			return map[string]interface{}{"Error": err.Error()}
		}
		m, _ := jsonish(v).(map[string]interface{})
		if m == nil {
			m = map[string]interface{}{}
		}
		return m
	}
	f["fromYamlArray"] = func(s string) []interface{} {
		var v []interface{}
		if err := yaml.Unmarshal([]byte(s), &v); err != nil {
			return []interface{}{err.Error()}
		}
		return jsonish(v).([]interface{})
	}
	f["toJson"] = func(v interface{}) string { b, _ := json.Marshal(v); return string(b) }
	f["mustToJson"] = func(v interface{}) (string, error) { b, err := json.Marshal(v); return string(b), err }
	f["fromJson"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	f["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return v, errors.New(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return v, errors.New(msg)
		}
		return v, nil
	}
	f["fail"] = func(msg string) (string, error) { return "", errors.New(msg) }
	f["lookup"] = func(string, string, string, string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil
	}
	return f
}

func render(chartDir, chartName string, top map[string]interface{}, showNotes bool) error {
	tdir := filepath.Join(chartDir, "templates")
	var paths []string
	err := filepath.Walk(tdir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !info.IsDir() {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)

	root := template.New("gotpl")
	root.Funcs(funcMap(root)).Option("missingkey=zero")
	names := map[string]string{}
	for _, p := range paths {
		rel, _ := filepath.Rel(chartDir, p)
		name := filepath.ToSlash(filepath.Join(chartName, rel))
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if _, err := root.New(name).Parse(string(b)); err != nil {
			return fmt.Errorf("parse error in %s", strings.TrimPrefix(err.Error(), "template: "))
		}
		names[p] = name
	}

	var out strings.Builder
	var notes string
	for _, p := range paths {
		name := names[p]
		base := filepath.Base(p)
		if strings.HasPrefix(base, "_") {
			continue
		}
		isNotes := base == "NOTES.txt"
		if !isNotes && !strings.HasSuffix(base, ".yaml") && !strings.HasSuffix(base, ".yml") && !strings.HasSuffix(base, ".tpl") {
			continue
		}
		data := map[string]interface{}{}
		for k, v := range top {
			data[k] = v
		}
		data["Template"] = templateInfo{Name: name, BasePath: filepath.ToSlash(filepath.Join(chartName, "templates"))}
		var buf strings.Builder
		if err := root.ExecuteTemplate(&buf, name, data); err != nil {
			return fmt.Errorf("execution error in %s", strings.TrimPrefix(err.Error(), "template: "))
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if isNotes {
			notes = text
			continue
		}
		for i, doc := range splitDocs(text) {
			var obj map[string]interface{}
			if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
				return fmt.Errorf("%s (document %d): YAML parse error: %v\n%s", name, i+1, err, numbered(doc))
			}
			if obj == nil {
				continue // comments only
			}
			if obj["apiVersion"] == nil || obj["kind"] == nil {
				return fmt.Errorf("%s (document %d): apiVersion and kind are required", name, i+1)
			}
			fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", name, strings.TrimRight(doc, "\n "))
		}
	}
	os.Stdout.WriteString(out.String())
	if showNotes && notes != "" {
		fmt.Fprintf(os.Stderr, "NOTES:\n%s\n", notes)
	}
	return nil
}

// splitDocs splits on YAML document separators and drops blank documents.
func splitDocs(s string) []string {
	var docs []string
	var cur []string
	flush := func() {
		d := strings.Join(cur, "\n")
		if strings.TrimSpace(d) != "" {
			docs = append(docs, d)
		}
		cur = nil
	}
	for _, line := range strings.Split(s, "\n") {
		if strings.TrimRight(line, " \t") == "---" || strings.HasPrefix(line, "--- ") {
			flush()
			continue
		}
		cur = append(cur, line)
	}
	flush()
	return docs
}

func numbered(s string) string {
	var b strings.Builder
	for i, l := range strings.Split(s, "\n") {
		fmt.Fprintf(&b, "%4d | %s\n", i+1, l)
	}
	return b.String()
}
