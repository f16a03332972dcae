package schemas_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rogpeppe/go-internal/txtar"

	"github.com/agentws/agentws/schemas"
)

// bypasses are the frames of issue 12 that got past the validator, and their kin.
var bypasses = []string{
	`{"type":"query","query":"validated","QUERY":""}`,
	`{"type":"query","query":"x","Query_Id":"bad id\n"}`,
	`{"type":"query","query":"x","QUERY_ID":"` + strings.Repeat("i", 1000) + `"}`,
	`{"type":"query","query":"a","query":"b"}`,
	`{"type":"query","query":"x","ſession_id":"a b"}`,
	`{"type":"cancel","query_id":"q1","Query_ID":"no such id"}`,
	`{"type":"query","qu\u0065ry":"x","query_id":"a","qu\u0065ry_id":"b"}`,
	`{"TYPE":"ping","type":"disconnect"}`,
}

// seedCorpus adds the payload corpus (testdata/payloads: valid messages, one per file
// or per NDJSON line, and each invalid message), every schema's examples and the
// bypasses.
func seedCorpus(f *testing.F) {
	const corpus = "../testdata/payloads"
	files, err := filepath.Glob(filepath.Join(corpus, "valid", "*"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no valid payloads in %s: %v", corpus, err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		for line := range bytes.Lines(data) {
			f.Add(bytes.TrimSpace(line))
		}
	}
	invalid, err := filepath.Glob(filepath.Join(corpus, "invalid", "*", "*.txtar"))
	if err != nil || len(invalid) == 0 {
		f.Fatalf("no invalid payloads in %s: %v", corpus, err)
	}
	for _, name := range invalid {
		ar, err := txtar.ParseFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range ar.Files {
			f.Add(file.Data)
		}
	}
	for _, s := range schemas.All() {
		var doc schemaDoc
		data, _ := schemas.FS.ReadFile(s.File())
		if err := json.Unmarshal(data, &doc); err != nil {
			f.Fatal(err)
		}
		for _, ex := range doc.Examples {
			f.Add([]byte(ex))
		}
	}
	for _, b := range bypasses {
		f.Add([]byte(b))
	}
}

// FuzzDecodeClient checks the validator against the server's decoding
// (Validator.DecodeClient): an input the validator refuses, the server refuses with the
// same error; an input it accepts decodes into a Go value that holds exactly the
// members of the validated document that its schema defines, named exactly, and that
// value, encoded again, is valid even in strict mode.
func FuzzDecodeClient(f *testing.F) {
	seedCorpus(f)
	lenient, strict := newValidator(f, false), newValidator(f, true)
	properties := map[string]map[string]bool{}
	for _, typ := range schemas.MessageTypes(schemas.Client) {
		properties[typ] = schemaProperties(f, typ)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		verr := lenient.ValidateMessage(schemas.Client, data)
		m, err := lenient.DecodeClient(data)
		if verr != nil {
			if err == nil || err.Error() != verr.Error() {
				t.Fatalf("validator refused %q with %v; server's decoding: %v", data, verr, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("validator accepted %q; server's decoding refused it: %v", data, err)
		}
		doc, _ := schemas.Decode(data)
		typ := doc.(map[string]any)["type"].(string)
		want := maps.Clone(doc.(map[string]any))
		maps.DeleteFunc(want, func(k string, _ any) bool { return !properties[typ][k] })
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := schemas.Decode(out)
		if err != nil {
			t.Fatalf("decoded %q, encoded again as %s: %v", data, out, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("%q: the decoded %T differs from the validated document's members (-want +got):\n%s", data, m, diff)
		}
		if err := strict.Validate(schemas.Schema(typ), out); err != nil {
			t.Fatalf("%q decoded and encoded again as %s, which is invalid: %v", data, out, err)
		}
	})
}

// schemaProperties returns the member names the schema of a message type defines.
func schemaProperties(t testing.TB, typ string) map[string]bool {
	t.Helper()
	data, err := schemas.FS.ReadFile(schemas.Schema(typ).File())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Properties map[string]any `json:"properties"`
	}
	if err := json.Unmarshal(data, &doc); err != nil || len(doc.Properties) == 0 {
		t.Fatalf("%s has no properties: %v", typ, err)
	}
	out := map[string]bool{}
	for k := range doc.Properties {
		out[k] = true
	}
	return out
}

// FuzzValidateMessage checks ValidateMessage (its own parsing, a message sent straight to
// its type's schema) against the reference path (encoding/json, then the direction's
// whole union schema), for every direction, lenient and strict: the same verdict and,
// for an invalid message, the same problems.
func FuzzValidateMessage(f *testing.F) {
	seedCorpus(f)
	for _, s := range []string{
		`{}`, `[]`, `null`, `"chunk"`, `{"type":null}`, `{"type":7}`, `{"type":"hello"}`, `{"TYPE":"ping"}`,
		`{"type":"chunk","type":"pong"}`, `{"type":"chunk","content":"a\nb","chunk_number":1.0,"session_id":"s","timestamp":"2025-10-25T12:34:56Z"}`,
		`{"type":"chunk","content":"x","chunk_number":1e400,"session_id":"s","timestamp":"2025-10-25T12:34:56Z","seq":-0}`,
		`{"type":"query","query":"\ud800","query_id":"q\u002d1"}`, "{\"type\":\"ping\"}\xff", `{"type":"ping"} x`,
		string(typicalChunk),
	} {
		f.Add([]byte(s))
	}
	validators := []*schemas.Validator{newValidator(f, false), newValidator(f, true)}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, v := range validators {
			for _, d := range []schemas.Direction{schemas.Client, schemas.Server, schemas.Any} {
				got, want := v.ValidateMessage(d, data), v.ValidateMessageFull(d, data)
				if (got == nil) != (want == nil) {
					t.Fatalf("%s, strict %v: %q: got %v, the full schema says %v", d, v.Strict(), data, got, want)
				}
				if got == nil {
					continue
				}
				var gotErr, wantErr *schemas.ValidationError
				if !errors.As(got, &gotErr) || !errors.As(want, &wantErr) {
					t.Fatalf("%s, strict %v: %q: got %#v, the full schema says %#v, want two *ValidationError", d, v.Strict(), data, got, want)
				}
				if diff := cmp.Diff(wantErr.Problems, gotErr.Problems); diff != "" {
					t.Fatalf("%s, strict %v: %q: problems differ from the full schema's (-full +got):\n%s", d, v.Strict(), data, diff)
				}
			}
		}
	})
}
