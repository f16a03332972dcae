package schemas_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentws/agentws/schemas"
	"github.com/agentws/agentws/schemas/msg"
)

func ptr[T any](v T) *T { return &v }

// The bypasses of issue 12: a member whose name differs from a schema member only in
// case (or by Unicode folding, as encoding/json's matching does for ſ and K) is an
// unknown member, and a repeated name is refused. What DecodeClient returns is the
// document the validator checked.
func TestDecodeClientMatchesNamesExactly(t *testing.T) {
	longID := strings.Repeat("i", 100_000)
	for _, tc := range []struct {
		name, in string
		want     any    // the decoded message, or nil
		wantErr  string // the validation error, or ""
	}{
		{"upper-case twin", `{"type":"query","query":"validated","QUERY":""}`, &msg.Query{Type: "query", Query: "validated"}, ""},
		{"twin first", `{"type":"query","Query":"","query":"validated"}`, &msg.Query{Type: "query", Query: "validated"}, ""},
		{"twin alone", `{"type":"query","QUERY":"x"}`, nil, "/query: missing required property"},
		{"bad query_id twin", `{"type":"query","query":"x","Query_Id":"bad id\n"}`, &msg.Query{Type: "query", Query: "x"}, ""},
		{"long query_id twin", `{"type":"query","query":"x","QUERY_ID":"` + longID + `"}`, &msg.Query{Type: "query", Query: "x"}, ""},
		{"long s folds in encoding/json", `{"type":"query","query":"x","ſession_id":"a b"}`, &msg.Query{Type: "query", Query: "x"}, ""},
		{"kelvin sign folds in encoding/json", `{"type":"query","query":"x","include_conte\u212at":"yes"}`, &msg.Query{Type: "query", Query: "x"}, ""},
		{"type twin", `{"TYPE":"ping"}`, nil, "/type: missing required property"},
		{"cancel twin", `{"type":"cancel","query_id":"q1","QUERY_ID":"q2"}`, &msg.Cancel{Type: "cancel", QueryId: "q1"}, ""},
		{"escaped name is the name", `{"type":"query","qu\u0065ry":"x"}`, &msg.Query{Type: "query", Query: "x"}, ""},
		{"every member", `{"type":"query","query":"q","session_id":"s","query_id":"i","include_context":false,"system_prompt":""}`,
			&msg.Query{Type: "query", Query: "q", SessionId: "s", QueryId: "i", IncludeContext: ptr(false), SystemPrompt: ptr("")}, ""},
		{"duplicate", `{"type":"query","query":"a","query":"b"}`, nil, `/query: invalid JSON: duplicate member name "query"`},
		{"duplicate escaped", `{"type":"query","query":"x","query_id":"a","qu\u0065ry_id":"b"}`, nil, `/query_id: invalid JSON: duplicate member name "query_id"`},
		{"duplicate type", `{"type":"ping","type":"disconnect"}`, nil, `/type: invalid JSON: duplicate member name "type"`},
		{"duplicate in an unknown member", `{"type":"ping","x":[{"a":1},{"b":[0,{"a/b":1,"a/b":2}]}]}`, nil, `/x/1/b/1/a~1b: invalid JSON: duplicate member name "a/b"`},
		{"not a duplicate in two objects", `{"type":"ping","x":{"type":1},"y":{"type":2}}`, &msg.Ping{Type: "ping"}, ""},
		{"ping", `{"type":"ping"}`, &msg.Ping{Type: "ping"}, ""},
		{"disconnect", `{"type":"disconnect","Type":"ping"}`, &msg.Disconnect{Type: "disconnect"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := newValidator(t, false).DecodeClient([]byte(tc.in))
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tc.wantErr {
				t.Fatalf("error %q, want %q", gotErr, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("decoded message differs (-want +got):\n%s", diff)
			}
			var verr *schemas.ValidationError
			if err != nil && !errors.As(err, &verr) {
				t.Errorf("error %T, want a *schemas.ValidationError for the error frame's code", err)
			}
		})
	}
}

// Every client message type decodes into the generated type named by its schema's
// title, through each of the schema's examples.
func TestDecodeClientCoversEveryClientType(t *testing.T) {
	v := newValidator(t, false)
	for _, typ := range schemas.MessageTypes(schemas.Client) {
		doc := readSchema(t, schemas.Schema(typ))
		if len(doc.Examples) == 0 {
			t.Fatalf("%s has no examples", typ)
		}
		for i, ex := range doc.Examples {
			got, err := v.DecodeClient(ex)
			if err != nil {
				t.Fatalf("%s example %d: %v", typ, i, err)
			}
			if name := reflect.TypeOf(got).Elem().Name(); reflect.TypeOf(got).Kind() != reflect.Pointer || name != doc.Title {
				t.Errorf("%s example %d decoded into %T, want *msg.%s", typ, i, got, doc.Title)
			}
		}
	}
}

type bound struct {
	Name     string            `json:"name"`
	Count    int8              `json:"count,omitempty"`
	Ratio    float64           `json:"ratio"`
	Flag     *bool             `json:"flag"`
	Tags     []string          `json:"tags"`
	Attrs    map[string]int    `json:"attrs"`
	Inner    *bound            `json:"inner"`
	Any      any               `json:"any"`
	Untagged string            // its member name is its Go name
	Skipped  string            `json:"-"`
	hidden   string            // never set
	Raw      map[string]string `json:"raw,omitempty"`
}

// Bind matches member names exactly, at every depth, and converts what
// schemas.Decode produces; a mismatch names its JSON pointer.
func TestBind(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     bound
		wantErr  string
	}{
		{"exact names only", `{"name":"a","NAME":"b","Name":"c","untagged":"no","Untagged":"yes","Skipped":"no","-":"no","hidden":"no"}`, bound{Name: "a", Untagged: "yes"}, ""},
		{"nested", `{"inner":{"name":"n","Inner":{"name":"x"},"tags":["a"]},"attrs":{"k":1,"K":2},"flag":true}`,
			bound{Inner: &bound{Name: "n", Tags: []string{"a"}}, Attrs: map[string]int{"k": 1, "K": 2}, Flag: ptr(true)}, ""},
		{"integers as JSON Schema sees them", `{"count":4.2e1,"ratio":1e-3}`, bound{Count: 42, Ratio: 0.001}, ""},
		{"null is the zero value", `{"name":null,"flag":null,"inner":null,"tags":null}`, bound{}, ""},
		{"any keeps the decoded value", `{"any":{"a":[1,"x"]}}`, bound{Any: map[string]any{"a": []any{json.Number("1"), "x"}}}, ""},
		{"fraction into an integer", `{"count":1.5}`, bound{}, "schemas: /count: 1.5 is not an integer that fits in int8"},
		{"overflow", `{"count":128}`, bound{}, "schemas: /count: 128 is not an integer that fits in int8"},
		{"wrong type", `{"inner":{"tags":["a",2]}}`, bound{}, "schemas: /inner/tags/1: cannot store a JSON number in string"},
		{"wrong root", `[1]`, bound{}, "schemas: (root): cannot store a JSON array in schemas_test.bound"},
		{"escaped pointer", `{"raw":{"a/b~":1}}`, bound{}, "schemas: /raw/a~1b~0: cannot store a JSON number in string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := schemas.Decode([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			var got bound
			err = schemas.Bind(doc, &got)
			if gotErr := fmt.Sprint(err); tc.wantErr != "" && gotErr != tc.wantErr || tc.wantErr == "" && err != nil {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			if tc.wantErr != "" {
				return
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(bound{})); diff != "" {
				t.Errorf("bound value differs (-want +got):\n%s", diff)
			}
		})
	}
	if err := schemas.Bind(map[string]any{}, bound{}); err == nil || !strings.Contains(err.Error(), "non-nil pointer") {
		t.Errorf("Bind into a non-pointer: %v, want an error", err)
	}
}

// Decode refuses a repeated member name at any depth, escaped or not, and nothing else
// that encoding/json accepts.
func TestDecodeRefusesDuplicateMembers(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"a":1,"a":1}`, `/a: invalid JSON: duplicate member name "a"`},
		{`{"a":1,"\u0061":2}`, `/a: invalid JSON: duplicate member name "a"`},
		{`[{"a":{"b":[],"b":{}}}]`, `/0/a/b: invalid JSON: duplicate member name "b"`},
		{`{"":1,"":2}`, `/: invalid JSON: duplicate member name ""`},
		{`{"x":"a:b:c","x":"\":"}`, `/x: invalid JSON: duplicate member name "x"`},
		{`{"a":1,"A":2,"b":{"a":1},"c":[{"a":1},{"a":2}]}`, ``},
		{`{"k:":"\"::\\","k":"v"}`, ``},
	} {
		_, err := schemas.Decode([]byte(tc.in))
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("Decode(%s): %q, want %q", tc.in, got, tc.want)
		}
		var verr *schemas.ValidationError
		if err != nil && (!errors.As(err, &verr) || verr.Code() != schemas.CodeInvalidJSON) {
			t.Errorf("Decode(%s): %v, want code invalid_json", tc.in, err)
		}
	}
}
