package spec_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/agentws/agentws/schemas"
	"github.com/agentws/agentws/spec"
)

func rules(t *testing.T) []spec.Rule {
	t.Helper()
	rs, err := spec.Rules()
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestRulesAreWellFormed(t *testing.T) {
	rs := rules(t)
	if len(rs) < 50 {
		t.Errorf("parsed %d rules, fewer than the document has", len(rs))
	}
	next := map[string]int{}
	for _, r := range rs {
		next[r.Area()]++
		if r.Number() != next[r.Area()] {
			t.Errorf("%s: want %s-%d here: ids of an area are numbered 1, 2, … in document order", r.ID, r.Area(), next[r.Area()])
		}
		if !strings.Contains(r.Text, string(r.Level)) {
			t.Errorf("%s (%s): the text never says %s", r.ID, r.Level, r.Level)
		}
		if r.Level != spec.Must && strings.Contains(r.Text, "MUST") {
			t.Errorf("%s (%s): the text says MUST; the level is the strongest key word", r.ID, r.Level)
		}
		if r.Client != (r.Area() == "CLIENT") {
			t.Errorf("%s: client rules are exactly the CLIENT area", r.ID)
		}
	}
}

func TestParseRulesRejectsMalformedRule(t *testing.T) {
	_, err := spec.ParseRules([]byte("# S\n\n- **X-1** (MUTS) text\n"))
	if err == nil || !strings.Contains(err.Error(), "PROTOCOL.md:3: malformed rule") {
		t.Errorf("got %v, want a malformed rule error at line 3", err)
	}
}

func TestParseRules(t *testing.T) {
	doc := "## 9. Area\n\n- **AB-1** (MUST) One\n  continued.\n- **AB-2** (SHOULD; capability: resume) Two.\n\ntext\n- **CLIENT-1** (MAY; client) Three.\n"
	got, err := spec.ParseRules([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := []spec.Rule{
		{ID: "AB-1", Level: spec.Must, Section: "9. Area", Text: "One continued."},
		{ID: "AB-2", Level: spec.Should, Capability: "resume", Section: "9. Area", Text: "Two."},
		{ID: "CLIENT-1", Level: spec.May, Client: true, Section: "9. Area", Text: "Three."},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rules differ (-want +got):\n%s", diff)
	}
}

// table returns the first column of the Markdown table under the heading that starts
// with heading, without backquotes.
func table(t *testing.T, heading string, col int) []string {
	t.Helper()
	data, err := spec.FS.ReadFile("PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(data), "\n"+heading)
	if !ok {
		t.Fatalf("PROTOCOL.md has no heading %q", heading)
	}
	var out []string
	inTable := false
	for _, line := range strings.Split(after, "\n") {
		if !strings.HasPrefix(line, "|") {
			if inTable {
				break
			}
			continue
		}
		inTable = true
		cells := strings.Split(line, "|")
		cell := strings.Trim(strings.TrimSpace(cells[col]), "`")
		if cell == "" || strings.HasPrefix(cell, "---") || cell == "capability" || cell == "code" || cell == "status" {
			continue
		}
		out = append(out, cell)
	}
	return out
}

func TestCapabilitiesOfRulesAreInTheTable(t *testing.T) {
	caps := table(t, "### 12.1", 1)
	if len(caps) == 0 {
		t.Fatal("no capability table")
	}
	for _, r := range rules(t) {
		if r.Capability != "" && !slices.Contains(caps, r.Capability) {
			t.Errorf("%s needs capability %q, which the table of 12.1 lacks (%v)", r.ID, r.Capability, caps)
		}
	}
}

func enum(t *testing.T, file, ptr string) []string {
	t.Helper()
	data, err := schemas.FS.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		doc = doc.(map[string]any)[tok]
	}
	var out []string
	for _, v := range doc.([]any) {
		out = append(out, v.(string))
	}
	return out
}

func TestCodeTablesMatchSchemas(t *testing.T) {
	for _, tc := range []struct {
		heading, file, ptr string
		col                int
	}{
		{"### 15.2", "defs.json", "/$defs/error_code/enum", 1},
		{"### 15.3", "http-error.json", "/properties/code/enum", 2},
	} {
		got, want := table(t, tc.heading, tc.col), enum(t, tc.file, tc.ptr)
		slices.Sort(got)
		slices.Sort(want)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("table %s and %s%s differ (-schema +table):\n%s", tc.heading, tc.file, tc.ptr, diff)
		}
	}
}

var ruleRef = regexp.MustCompile(`\b(AUTH|BUF|CANCEL|CAP|CLIENT|CODE|CONN|DISC|ENV|FIX|HEALTH|HS|KA|PING|QID|SEQ|SHUT|STREAM|TAKE)-([0-9]+)\b`)

// Every rule id that the schemas, the API documents, the payload corpora or the
// protocol itself mention exists.
func TestRuleReferencesExist(t *testing.T) {
	ids := map[string]bool{}
	for _, r := range rules(t) {
		ids[r.ID] = true
	}
	var files []string
	for _, pattern := range []string{"../schemas/*.json", "*.md", "*.yaml", "../testdata/payloads/*/*/*", "../testdata/payloads/*/*"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	refs := 0
	for _, f := range files {
		if fi, err := os.Stat(f); err != nil || fi.IsDir() {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ruleRef.FindAllStringSubmatch(string(data), -1) {
			refs++
			if !ids[m[0]] {
				t.Errorf("%s mentions rule %s, which PROTOCOL.md does not define", f, m[0])
			}
		}
	}
	if refs < 100 {
		t.Errorf("found only %d rule references; is the pattern right?", refs)
	}
}

func readYAML(t *testing.T, name string) map[string]any {
	t.Helper()
	data, err := spec.FS.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return doc
}

func TestVersionsAgree(t *testing.T) {
	v := spec.Version()
	for _, name := range []string{"asyncapi.yaml", "openapi.src.yaml", "openapi.yaml"} {
		info := readYAML(t, name)["info"].(map[string]any)
		if info["version"] != v {
			t.Errorf("%s has info.version %v, PROTOCOL.md says %s", name, info["version"], v)
		}
	}
}

// The AsyncAPI document has one message per message type, whose payload is that type's
// schema file and whose examples are exactly that schema's examples.
func TestAsyncAPIReferencesTheSchemas(t *testing.T) {
	doc := readYAML(t, "asyncapi.yaml")
	msgs := doc["components"].(map[string]any)["messages"].(map[string]any)
	var names []string
	for name, m := range msgs {
		names = append(names, name)
		m := m.(map[string]any)
		ref := m["payload"].(map[string]any)["$ref"]
		if want := "../schemas/" + name + ".json"; ref != want {
			t.Errorf("message %s: payload $ref %v, want %s", name, ref, want)
		}
		var schemaDoc struct{ Examples []any }
		data, err := schemas.FS.ReadFile(name + ".json")
		if err != nil {
			t.Errorf("message %s: %v", name, err)
			continue
		}
		if err := json.Unmarshal(data, &schemaDoc); err != nil {
			t.Fatal(err)
		}
		exs, _ := m["examples"].([]any)
		if len(exs) != len(schemaDoc.Examples) {
			t.Errorf("message %s has %d examples, its schema %d", name, len(exs), len(schemaDoc.Examples))
		}
		for i, ex := range exs {
			want := fmt.Sprintf("../schemas/%s.json#/examples/%d", name, i)
			if got := ex.(map[string]any)["payload"].(map[string]any)["$ref"]; got != want {
				t.Errorf("message %s example %d: $ref %v, want %s", name, i, got, want)
			}
		}
	}
	want := schemas.MessageTypes(schemas.Any)
	slices.Sort(names)
	slices.Sort(want)
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("AsyncAPI messages and message types differ (-types +asyncapi):\n%s", diff)
	}
	ops := doc["operations"].(map[string]any)
	used := map[string]bool{}
	for _, op := range ops {
		op := op.(map[string]any)
		refs := op["messages"].([]any)
		if reply, ok := op["reply"].(map[string]any); ok {
			refs = append(refs, reply["messages"].([]any)...)
		}
		for _, m := range refs {
			ref := m.(map[string]any)["$ref"].(string)
			used[ref[strings.LastIndex(ref, "/")+1:]] = true
		}
	}
	for _, name := range want {
		if !used[name] {
			t.Errorf("no operation sends or receives %s", name)
		}
	}
}

func TestRuleCountsPerLevel(t *testing.T) {
	count := map[spec.Level]int{}
	for _, r := range rules(t) {
		if !r.Client {
			count[r.Level]++
		}
	}
	t.Logf("server rules: %d MUST, %d SHOULD, %d MAY", count[spec.Must], count[spec.Should], count[spec.May])
	if count[spec.Must] == 0 || count[spec.Should] == 0 {
		t.Errorf("got %v, want MUST and SHOULD rules", count)
	}
}
