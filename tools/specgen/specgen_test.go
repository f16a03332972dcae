package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// write creates files in a temporary directory and returns it.
func write(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// plain turns a node into ordinary Go values, for comparison.
func plain(t *testing.T, n *yaml.Node) any {
	t.Helper()
	var v any
	if err := n.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func parseYAML(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

const defs = `{"title": "Definitions", "$defs": {
	"session_id": {"type": "string", "minLength": 1, "pattern": "^[a-z]+$"},
	"flag": {"type": "boolean"}}}`

// Only what the roots reference becomes a component: the unused definition "flag" does
// not.
func TestMessagesDocConvertsSchemas(t *testing.T) {
	dir := write(t, map[string]string{
		"defs.json": defs,
		"ping.json": `{"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "x", "title": "Ping",
			"type": "object", "required": ["type"],
			"properties": {
				"type": {"const": "ping"},
				"session_id": {"description": "dropped: a $ref's siblings mean nothing in OpenAPI 3.0", "$ref": "defs.json#/$defs/session_id"},
				"note": {"type": "string"},
				"count": {"type": "integer", "minimum": 1},
				"level": {"type": "integer", "minimum": 0},
				"on": {"type": "boolean"}
			},
			"examples": [{"type": "ping"}, {"type": "ping", "note": "second"}]}`,
		"union.json": `{"title": "Message", "type": "object", "required": ["type"],
			"properties": {"type": {"enum": ["ping"]}},
			"allOf": [{"if": {"required": ["type"], "properties": {"type": {"const": "ping"}}}, "then": {"$ref": "ping.json"}}]}`,
	})
	doc, err := messagesDoc([]string{filepath.Join(dir, "union.json")})
	if err != nil {
		t.Fatal(err)
	}
	want := parseYAML(t, `
openapi: 3.0.3
info: {title: agentws messages, version: see spec/PROTOCOL.md}
paths: {}
components:
  schemas:
    SessionId: {type: string, minLength: 1, pattern: "^[a-z]+$"}
    Ping:
      title: Ping
      type: object
      required: [type]
      properties:
        type: {enum: [ping], type: string}
        session_id: {$ref: "#/components/schemas/SessionId"}
        note: {type: string, x-go-type-skip-optional-pointer: false}
        count: {type: integer, minimum: 1}
        level: {type: integer, minimum: 0, x-go-type-skip-optional-pointer: false}
        "on": {type: boolean, x-go-type-skip-optional-pointer: false}
      example: {type: ping}
    Message:
      title: Message
      oneOf:
        - $ref: "#/components/schemas/Ping"
      discriminator:
        propertyName: type
        mapping: {ping: "#/components/schemas/Ping"}
`)
	if diff := cmp.Diff(want, plain(t, doc)); diff != "" {
		t.Errorf("converted document differs (-want +got):\n%s", diff)
	}
}

func TestMessagesDocRefusesWhatItCannotConvert(t *testing.T) {
	tests := []struct {
		name, schema, want string
	}{
		{"unknown keyword", `{"title": "A", "type": "array", "prefixItems": [{"type": "string"}]}`,
			`a.json/prefixItems: keyword "prefixItems" has no exact OpenAPI 3.0 form`},
		{"nested unknown keyword", `{"title": "A", "type": "object", "properties": {"x": {"not": {"type": "string"}}}}`,
			`a.json/properties/x/not: keyword "not" has no exact OpenAPI 3.0 form`},
		{"no title", `{"type": "object"}`, `a schema file needs a title`},
		{"allOf that is no union", `{"title": "A", "allOf": [{"type": "object"}]}`,
			`want {if: {properties: {type: {const: T}}}, then: {$ref: F}}`},
		{"remote ref", `{"title": "A", "properties": {"x": {"$ref": "https://example.com/x.json"}}}`,
			`want a relative file reference`},
		{"ref into a schema", `{"title": "A", "properties": {"x": {"$ref": "b.json#/properties/y"}}}`,
			`only a whole file or one of its $defs can be referenced`},
		{"missing file", `{"title": "A", "properties": {"x": {"$ref": "nope.json"}}}`, `nope.json: no such file`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := write(t, map[string]string{"a.json": tt.schema, "b.json": `{"title": "B", "type": "object"}`})
			_, err := messagesDoc([]string{filepath.Join(dir, "a.json")})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestBundleReplacesFileReferences(t *testing.T) {
	dir := write(t, map[string]string{
		"schemas/defs.json": defs,
		"schemas/health.json": `{"title": "Health", "type": "object", "required": ["ok"],
			"properties": {"ok": {"$ref": "defs.json#/$defs/flag"}}, "examples": [{"ok": true}]}`,
		"spec/api.yaml": `openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /health:
    get:
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema:
                $ref: ../schemas/health.json
components:
  securitySchemes:
    bearer: {type: http, scheme: bearer}
`,
	})
	doc, err := bundle(filepath.Join(dir, "spec/api.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got := plain(t, doc).(map[string]any)
	ref := got["paths"].(map[string]any)["/health"].(map[string]any)["get"].(map[string]any)["responses"].(map[string]any)["200"].(map[string]any)["content"].(map[string]any)["application/json"].(map[string]any)["schema"]
	if diff := cmp.Diff(map[string]any{"$ref": "#/components/schemas/Health"}, ref); diff != "" {
		t.Errorf("reference not replaced (-want +got):\n%s", diff)
	}
	comps := got["components"].(map[string]any)
	want := parseYAML(t, `
Flag: {type: boolean}
Health:
  title: Health
  type: object
  required: [ok]
  properties:
    ok: {$ref: "#/components/schemas/Flag"}
  example: {ok: true}
`)
	if diff := cmp.Diff(want, comps["schemas"]); diff != "" {
		t.Errorf("components differ (-want +got):\n%s", diff)
	}
	if comps["securitySchemes"] == nil {
		t.Error("the document's own components were lost")
	}
}

func TestBundleRefusesComponentClash(t *testing.T) {
	dir := write(t, map[string]string{
		"h.json": `{"title": "Health", "type": "object"}`,
		"api.yaml": `openapi: 3.0.3
paths: {/h: {get: {responses: {"200": {description: ok, content: {application/json: {schema: {$ref: h.json}}}}}}}}
components: {schemas: {Health: {type: string}}}
`,
	})
	_, err := bundle(filepath.Join(dir, "api.yaml"))
	if err == nil || !strings.Contains(err.Error(), `component "Health" is both written out and referenced as a file`) {
		t.Errorf("got %v, want a clash error", err)
	}
}

func TestRunWritesGeneratedHeaderAtomically(t *testing.T) {
	dir := write(t, map[string]string{"defs.json": defs, "p.json": `{"title": "P", "type": "object", "properties": {"s": {"$ref": "defs.json#/$defs/session_id"}}}`})
	out := filepath.Join(dir, "out.yaml")
	var stderr bytes.Buffer
	if err := run([]string{"messages", "-o", out, filepath.Join(dir, "p.json")}, &stderr); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "# Code generated by specgen from p.json and the JSON Schemas they reference. DO NOT EDIT.\n") {
		t.Errorf("no generated-code header:\n%s", data)
	}
	// A failing run leaves the previous output as it was.
	if err := run([]string{"messages", "-o", out, filepath.Join(dir, "missing.json")}, &stderr); err == nil {
		t.Fatal("want an error for a missing input")
	}
	if again, _ := os.ReadFile(out); !bytes.Equal(again, data) {
		t.Error("a failed run changed the output")
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".specgen-*")); len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

func TestRunUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"bogus"}, {"messages"}, {"messages", "-o", "x"}, {"openapi", "-o", "x"}, {"openapi", "-in", "a", "-o", "b", "extra"}} {
		var stderr bytes.Buffer
		if err := run(args, &stderr); err == nil || !strings.HasPrefix(err.Error(), "usage: specgen") {
			t.Errorf("run(%q) = %v, want the usage", args, err)
		}
	}
}
