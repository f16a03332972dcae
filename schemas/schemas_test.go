package schemas_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentws/agentws/schemas"
	"github.com/agentws/agentws/schemas/adminapi"
	"github.com/agentws/agentws/schemas/httpapi"
	"github.com/agentws/agentws/schemas/msg"
)

func newValidator(t testing.TB, strict bool) *schemas.Validator {
	t.Helper()
	v, err := schemas.NewValidator(schemas.Options{Strict: strict})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

type schemaDoc struct {
	Title    string            `json:"title"`
	Examples []json.RawMessage `json:"examples"`
}

func readSchema(t *testing.T, s schemas.Schema) schemaDoc {
	t.Helper()
	data, err := schemas.FS.ReadFile(s.File())
	if err != nil {
		t.Fatal(err)
	}
	var doc schemaDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", s.File(), err)
	}
	return doc
}

// Every schema but the definitions has examples, and each is valid against its schema
// in strict mode; a message's examples are also valid in its direction's union.
func TestExamplesAreValid(t *testing.T) {
	v := newValidator(t, true)
	for _, s := range schemas.All() {
		if s == "defs" {
			continue
		}
		doc := readSchema(t, s)
		if len(doc.Examples) == 0 {
			t.Errorf("%s has no examples", s.File())
		}
		for i, ex := range doc.Examples {
			if err := v.Validate(s, ex); err != nil {
				t.Errorf("%s example %d: %v", s.File(), i, err)
			}
			if d := schemas.DirectionOf(string(s)); d != "" {
				if err := v.ValidateMessage(d, ex); err != nil {
					t.Errorf("%s example %d as a %s message: %v", s.File(), i, d, err)
				}
			}
		}
	}
}

// Each message type has a schema file titled like its generated Go type, and the unions
// list exactly the message schema files.
func TestUnionsCoverEveryMessageSchema(t *testing.T) {
	var files []string
	for _, s := range schemas.All() {
		if _, body := httpBodies[s]; body || s == "defs" || s == schemas.ClientMessage || s == schemas.ServerMessage {
			continue
		}
		files = append(files, string(s))
	}
	types := schemas.MessageTypes(schemas.Any)
	slices.Sort(types)
	if diff := cmp.Diff(files, types); diff != "" {
		t.Errorf("message schema files and union types differ (-files +types):\n%s", diff)
	}
	if both := slices.ContainsFunc(schemas.MessageTypes(schemas.Client), func(t string) bool {
		return schemas.DirectionOf(t) == schemas.Server
	}); both {
		t.Error("a type is in both directions")
	}
}

// Every example decodes into the generated Go types and encodes back to the same JSON,
// so the types and the schemas agree.
func TestExamplesRoundTripThroughGeneratedTypes(t *testing.T) {
	for _, s := range schemas.All() {
		doc := readSchema(t, s)
		for i, ex := range doc.Examples {
			t.Run(fmt.Sprintf("%s/%d", s, i), func(t *testing.T) {
				typed, err := decodeTyped(s, ex)
				if err != nil {
					t.Fatal(err)
				}
				if s != schemas.ClientMessage && s != schemas.ServerMessage && s != schemas.HTTPError {
					if got := reflect.TypeOf(typed).Elem().Name(); got != doc.Title {
						t.Errorf("decoded into %s, want the schema's title %s", got, doc.Title)
					}
				}
				out, err := json.Marshal(typed)
				if err != nil {
					t.Fatal(err)
				}
				var want, got any
				if err := json.Unmarshal(ex, &want); err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(out, &got); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("round trip changed the message (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// httpBodies gives, for each schema of an HTTP body, a new value of its generated type.
var httpBodies = map[schemas.Schema]func() any{
	schemas.Health:          func() any { return new(httpapi.Health) },
	schemas.HTTPError:       func() any { return new(httpapi.HTTPError) },
	schemas.Broadcast:       func() any { return new(adminapi.Broadcast) },
	schemas.BroadcastResult: func() any { return new(adminapi.BroadcastResult) },
	schemas.SessionInfo:     func() any { return new(adminapi.SessionInfo) },
	schemas.SessionList:     func() any { return new(adminapi.SessionList) },
}

// decodeTyped decodes a message through its direction's generated union, and the HTTP
// bodies into their generated types; it returns a pointer to the concrete value.
func decodeTyped(s schemas.Schema, data []byte) (any, error) {
	if body, ok := httpBodies[s]; ok {
		v := body()
		return v, json.Unmarshal(data, v)
	}
	var union interface{ ValueByDiscriminator() (any, error) }
	var typ struct{ Type string }
	if err := json.Unmarshal(data, &typ); err != nil {
		return nil, err
	}
	switch schemas.DirectionOf(typ.Type) {
	case schemas.Client:
		var u msg.ClientMessage
		if err := json.Unmarshal(data, &u); err != nil {
			return nil, err
		}
		union = u
	case schemas.Server:
		var u msg.ServerMessage
		if err := json.Unmarshal(data, &u); err != nil {
			return nil, err
		}
		union = u
	default:
		return nil, fmt.Errorf("unknown type %q", typ.Type)
	}
	v, err := union.ValueByDiscriminator()
	if err != nil {
		return nil, err
	}
	p := reflect.New(reflect.TypeOf(v))
	p.Elem().Set(reflect.ValueOf(v))
	return p.Interface(), nil
}

func TestValidateMessageProblems(t *testing.T) {
	tests := []struct {
		name   string
		dir    schemas.Direction
		strict bool
		in     string
		want   []schemas.Problem
	}{
		{"wrong field type", schemas.Client, false, `{"type":"query","query":5}`,
			[]schemas.Problem{{Pointer: "/query", Message: "got number, want string", Code: schemas.CodeInvalidField}}},
		{"missing field", schemas.Client, false, `{"type":"query"}`,
			[]schemas.Problem{{Pointer: "/query", Message: "missing required property", Code: schemas.CodeMissingField}}},
		{"typo caught in strict mode", schemas.Client, true, `{"type":"query","querry":"hi"}`,
			[]schemas.Problem{
				{Pointer: "/query", Message: "missing required property", Code: schemas.CodeMissingField},
				{Pointer: "/querry", Message: "unknown property (strict mode)", Code: schemas.CodeInvalidField},
			}},
		{"unknown fields ignored by default", schemas.Client, false, `{"type":"ping","extra":{"a":1}}`, nil},
		{"unknown type", schemas.Client, false, `{"type":"subscribe"}`,
			[]schemas.Problem{{Pointer: "/type", Message: "value must be one of 'query', 'ping', 'disconnect', 'cancel'", Code: schemas.CodeUnknownType}}},
		{"server type sent by a client", schemas.Client, false, `{"type":"pong","timestamp":"2025-10-25T12:34:56Z"}`,
			[]schemas.Problem{{Pointer: "/type", Message: "value must be one of 'query', 'ping', 'disconnect', 'cancel'", Code: schemas.CodeUnknownType}}},
		{"array", schemas.Client, false, `[1,2]`,
			[]schemas.Problem{{Pointer: "", Message: "got array, want object", Code: schemas.CodeInvalidMessage}}},
		{"invalid JSON", schemas.Server, false, `{"type":`,
			[]schemas.Problem{{Pointer: "", Message: "invalid JSON: unexpected end of input after 8 bytes", Code: schemas.CodeInvalidJSON}}},
		{"trailing data", schemas.Server, false, `{"type":"pong","timestamp":"2025-10-25T12:34:56Z"} {}`,
			[]schemas.Problem{{Pointer: "", Message: "invalid JSON: unexpected data after the value at byte 52", Code: schemas.CodeInvalidJSON}}},
		{"not UTF-8", schemas.Client, false, "{\"type\":\"query\",\"query\":\"\xff\"}",
			[]schemas.Problem{{Pointer: "", Message: "invalid JSON: not valid UTF-8", Code: schemas.CodeInvalidJSON}}},
		{"empty input", schemas.Client, false, ``,
			[]schemas.Problem{{Pointer: "", Message: "invalid JSON: empty input", Code: schemas.CodeInvalidJSON}}},
		{"several problems, sorted", schemas.Server, false, `{"type":"chunk","content":7,"chunk_number":0,"timestamp":"2025-10-25T12:34:56Z"}`,
			[]schemas.Problem{
				{Pointer: "/session_id", Message: "missing required property", Code: schemas.CodeMissingField},
				{Pointer: "/chunk_number", Message: "minimum: got 0, want 1", Code: schemas.CodeInvalidField},
				{Pointer: "/content", Message: "got number, want string", Code: schemas.CodeInvalidField},
			}},
		{"any: picks the server union", schemas.Any, false, `{"type":"keepalive","timestamp":"2025-10-25T12:34:56Z"}`, nil},
		{"any: unknown type", schemas.Any, false, `{"type":"hello"}`,
			[]schemas.Problem{{Pointer: "/type", Message: `unknown message type "hello": want one of "query", "ping", "disconnect", "cancel", "connected", "query_start", "chunk", "complete", "error", "pong", "keepalive", "disconnected", "notice"`, Code: schemas.CodeUnknownType}}},
		{"any: missing type", schemas.Any, false, `{}`,
			[]schemas.Problem{{Pointer: "/type", Message: "missing required property", Code: schemas.CodeMissingField}}},
		{"any: type not a string", schemas.Any, false, `{"type":true}`,
			[]schemas.Problem{{Pointer: "/type", Message: "got boolean, want string", Code: schemas.CodeUnknownType}}},
		{"any: null type is present, not a string", schemas.Any, false, `{"type":null}`,
			[]schemas.Problem{{Pointer: "/type", Message: "got null, want string", Code: schemas.CodeUnknownType}}},
		{"client: null type is unknown, not missing", schemas.Client, false, `{"type":null}`,
			[]schemas.Problem{{Pointer: "/type", Message: "value must be one of 'query', 'ping', 'disconnect', 'cancel'", Code: schemas.CodeUnknownType}}},
		{"pointer escaping", schemas.Client, true, `{"type":"ping","a/b~c":1}`,
			[]schemas.Problem{{Pointer: "/a~1b~0c", Message: "unknown property (strict mode)", Code: schemas.CodeInvalidField}}},
	}
	lenient, strict := newValidator(t, false), newValidator(t, true)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := lenient
			if tt.strict {
				v = strict
			}
			err := v.ValidateMessage(tt.dir, []byte(tt.in))
			var got []schemas.Problem
			var verr *schemas.ValidationError
			if errors.As(err, &verr) {
				got = verr.Problems
			} else if err != nil {
				t.Fatalf("got a %T, want a *ValidationError: %v", err, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems differ (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidationErrorText(t *testing.T) {
	err := newValidator(t, false).ValidateMessage(schemas.Client, []byte(`{"type":"query","query":5,"session_id":""}`))
	const want = "/query: got number, want string; /session_id: '' does not match pattern '^[A-Za-z0-9._:~-]+$'; /session_id: minLength: got 0, want 1"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	var verr *schemas.ValidationError
	if !errors.As(err, &verr) || verr.Code() != schemas.CodeInvalidField || verr.Schema != "query" {
		t.Errorf("got %#v, want code invalid_field against query", verr)
	}
}

func TestValidateUnknownSchema(t *testing.T) {
	err := newValidator(t, false).Validate("nope", []byte(`{}`))
	if err == nil || !strings.Contains(err.Error(), `unknown schema "nope"`) {
		t.Errorf("got %v, want an unknown schema error", err)
	}
}

func TestParseDirection(t *testing.T) {
	for _, s := range []string{"client", "server", "any"} {
		if d, err := schemas.ParseDirection(s); err != nil || string(d) != s {
			t.Errorf("ParseDirection(%q) = %q, %v", s, d, err)
		}
	}
	if _, err := schemas.ParseDirection("both"); err == nil || !strings.Contains(err.Error(), `"both"`) {
		t.Errorf("ParseDirection(both) = %v, want an error naming it", err)
	}
}

func TestValidatorIsSafeForConcurrentUse(t *testing.T) {
	v := newValidator(t, true)
	msgs := [][]byte{[]byte(`{"type":"ping"}`), []byte(`{"type":"query","query":""}`)}
	done := make(chan error)
	for i := range 8 {
		go func() {
			var err error
			for j := range 200 {
				got := v.ValidateMessage(schemas.Client, msgs[(i+j)%2])
				if ((i+j)%2 == 0) != (got == nil) {
					err = fmt.Errorf("message %d: %v", (i+j)%2, got)
				}
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
