package schemas

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/agentws/agentws/schemas/internal/jsonschema"
	"github.com/agentws/agentws/schemas/internal/jsonschema/kind"
)

// Options configures a [Validator].
type Options struct {
	// Strict also reports fields that a message's schema does not define, such as a
	// misspelt "querry". The protocol itself tells receivers to ignore unknown fields
	// (rule ENV-3); strict mode is for checking what a client or server sends.
	Strict bool
}

// A Validator validates messages against the embedded schemas. It is safe for
// concurrent use.
type Validator struct {
	strict  bool
	schemas map[Schema]*jsonschema.Schema
}

var printer = message.NewPrinter(language.English)

// NewValidator compiles every embedded schema.
func NewValidator(opts Options) (*Validator, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseRegexpEngine(compileRegexp)
	names := All()
	docs, err := schemaDocs(opts)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		if err := c.AddResource(name.URL(), docs[name]); err != nil {
			return nil, fmt.Errorf("failed to add schema %s: %w", name.File(), err)
		}
	}
	v := &Validator{strict: opts.Strict, schemas: make(map[Schema]*jsonschema.Schema, len(names))}
	for _, name := range names {
		sch, err := c.Compile(name.URL())
		if err != nil {
			return nil, fmt.Errorf("failed to compile schema %s: %w", name.File(), err)
		}
		v.schemas[name] = sch
	}
	return v, nil
}

// schemaDocs returns each embedded schema's document as NewValidator compiles it: the
// definitions inlined and, in strict mode, the message schemas closed.
func schemaDocs(opts Options) (map[Schema]any, error) {
	names := All()
	defsDoc, err := loadDoc(defsSchema)
	if err != nil {
		return nil, err
	}
	defs, _ := defsDoc.(map[string]any)["$defs"].(map[string]any)
	docs := make(map[Schema]any, len(names))
	for _, name := range names {
		doc, err := loadDoc(name)
		if err != nil {
			return nil, err
		}
		if name != defsSchema {
			doc = inlineDefs(doc, defs)
		}
		if opts.Strict {
			forbidUnknown(doc)
		}
		docs[name] = doc
	}
	return docs, nil
}

func loadDoc(name Schema) (any, error) {
	data, err := FS.ReadFile(name.File())
	if err != nil {
		return nil, err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("failed to parse schema %s: %w", name.File(), err)
	}
	return doc, nil
}

// inlineDefs replaces each {"$ref": "defs.json#/$defs/NAME"} in doc with a copy of that
// definition. It means the same (a $ref's only siblings here are annotations such as
// description, merged in unless the definition has the keyword) and validates faster:
// the library sets up a scope for every $ref it follows, at every frame.
func inlineDefs(doc any, defs map[string]any) any {
	switch n := doc.(type) {
	case map[string]any:
		if ref, ok := n["$ref"].(string); ok {
			name, found := strings.CutPrefix(ref, defsSchema.File()+"#/$defs/")
			if def, known := defs[name].(map[string]any); found && known {
				out := maps.Clone(def)
				for k, v := range n {
					if _, clash := out[k]; !clash && k != "$ref" {
						out[k] = v
					}
				}
				return out
			}
		}
		for k, v := range n {
			n[k] = inlineDefs(v, defs)
		}
	case []any:
		for i, v := range n {
			n[i] = inlineDefs(v, defs)
		}
	}
	return doc
}

// forbidUnknown makes a message schema reject properties it does not define. Only a
// document's root object is closed: the unions (which have allOf) and the definitions
// stay as they are, and so do the "if" subschemas that select a union's branch.
func forbidUnknown(doc any) {
	obj, ok := doc.(map[string]any)
	if !ok {
		return
	}
	_, hasProps := obj["properties"]
	_, hasAllOf := obj["allOf"]
	if hasProps && !hasAllOf {
		obj["additionalProperties"] = false
	}
}

// Strict reports whether the validator reports unknown fields.
func (v *Validator) Strict() bool { return v.strict }

// Decode parses one JSON value the way the validator does (numbers kept exact). An
// object with two members of the same name is refused (ENV-1): which one would count is
// up to each decoder. A problem is reported as a *ValidationError with code
// invalid_json. The strings of a text of up to 4 KiB share one copy of it.
func Decode(data []byte) (any, error) {
	if doc, ok := parseFast(data); ok {
		return doc, nil
	}
	return decodeStd(data)
}

// decodeStd is Decode with encoding/json, which explains what is wrong with a text that
// parseFast refuses.
func decodeStd(data []byte) (any, error) {
	if !utf8.Valid(data) {
		return nil, single("", "", CodeInvalidJSON, "invalid JSON: not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, jsonError(err, len(data))
	}
	end := dec.InputOffset()
	if rest := bytes.TrimLeft(data[end:], " \t\r\n"); len(rest) > 0 {
		return nil, single("", "", CodeInvalidJSON, "invalid JSON: unexpected data after the value at byte %d", len(data)-len(rest)+1)
	}
	if err := checkUnique(data[:end], doc); err != nil {
		return nil, err
	}
	return doc, nil
}

// jsonError describes a decoding error of an input of n bytes. Byte positions count
// from 1, as encoding/json's SyntaxError.Offset does.
func jsonError(err error, n int) error {
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		return single("", "", CodeInvalidJSON, "invalid JSON at byte %d: %v", syn.Offset, syn)
	case errors.Is(err, io.EOF):
		return single("", "", CodeInvalidJSON, "invalid JSON: empty input")
	case errors.Is(err, io.ErrUnexpectedEOF):
		unit := "bytes"
		if n == 1 {
			unit = "byte"
		}
		return single("", "", CodeInvalidJSON, "invalid JSON: unexpected end of input after %d %s", n, unit)
	}
	return single("", "", CodeInvalidJSON, "invalid JSON: %v", err)
}

// Validate parses data and validates it against the named schema.
func (v *Validator) Validate(s Schema, data []byte) error {
	doc, err := Decode(data)
	if err != nil {
		return err
	}
	return v.ValidateValue(s, doc)
}

// ValidateValue validates a decoded JSON value (as produced by [Decode], or by
// encoding/json into an any) against the named schema.
func (v *Validator) ValidateValue(s Schema, doc any) error {
	sch, ok := v.schemas[s]
	if !ok {
		return fmt.Errorf("unknown schema %q", s)
	}
	err := sch.Validate(doc)
	if err == nil {
		return nil
	}
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		return fmt.Errorf("failed to validate against %s: %w", s.File(), err)
	}
	return &ValidationError{Schema: s, Problems: problems(verr)}
}

// ValidateMessage parses data and validates it as a message of the given direction,
// with the direction's union schema (Any picks the direction from the message's type).
func (v *Validator) ValidateMessage(d Direction, data []byte) error {
	doc, err := Decode(data)
	if err != nil {
		return err
	}
	return v.ValidateMessageValue(d, doc)
}

// ValidateMessageValue is ValidateMessage for a decoded value.
//
// A message whose type is one of the direction's goes straight to that type's schema,
// which is what the union's matching branch does, minus the union's cost; anything else
// goes through the union, whose errors then explain what is wrong with the type.
func (v *Validator) ValidateMessageValue(d Direction, doc any) error {
	var union Schema
	switch d {
	case Client:
		union = ClientMessage
	case Server:
		union = ServerMessage
	case Any:
	default:
		return fmt.Errorf("unknown direction %q", d)
	}
	obj, isObj := doc.(map[string]any)
	typ, hasType := obj["type"] // a null type is present, and not a string
	t, isStr := typ.(string)
	if isStr {
		if td := DirectionOf(t); td != "" && (d == Any || d == td) {
			return v.ValidateValue(Schema(t), doc)
		}
	}
	if union != "" {
		return v.ValidateValue(union, doc)
	}
	switch {
	case !isObj:
		return single("", "", CodeInvalidMessage, "got %s, want object", jsonType(doc))
	case !hasType:
		return single("", "/type", CodeMissingField, "missing required property")
	case !isStr:
		return single("", "/type", CodeUnknownType, "got %s, want string", jsonType(typ))
	}
	return single("", "/type", CodeUnknownType, "unknown message type %q: want one of %s", t, quoteAll(MessageTypes(Any)))
}

// problems flattens jsonschema's tree of errors into its leaves, one Problem each,
// sorted and without duplicates.
func problems(root *jsonschema.ValidationError) []Problem {
	var out []Problem
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		out = append(out, leaf(e)...)
	}
	walk(root)
	slices.SortFunc(out, func(a, b Problem) int {
		return cmp.Or(codeRank(a.Code)-codeRank(b.Code), strings.Compare(a.Pointer, b.Pointer), strings.Compare(a.Message, b.Message))
	})
	return slices.Compact(out)
}

// codeRank orders problems so that the most telling comes first.
func codeRank(c Code) int {
	return slices.Index([]Code{CodeInvalidJSON, CodeInvalidMessage, CodeUnknownType, CodeMissingField, CodeInvalidField}, c)
}

func leaf(e *jsonschema.ValidationError) []Problem {
	ptr := pointer(e.InstanceLocation)
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		ps := make([]Problem, len(k.Missing))
		for i, m := range k.Missing {
			ps[i] = Problem{Pointer: pointer(append(slices.Clone(e.InstanceLocation), m)), Message: "missing required property", Code: CodeMissingField}
		}
		return ps
	case *kind.AdditionalProperties:
		ps := make([]Problem, len(k.Properties))
		for i, p := range k.Properties {
			ps[i] = Problem{Pointer: pointer(append(slices.Clone(e.InstanceLocation), p)), Message: "unknown property (strict mode)", Code: CodeInvalidField}
		}
		return ps
	case *kind.Type:
		if ptr == "" {
			return []Problem{{Pointer: ptr, Message: k.LocalizedString(printer), Code: CodeInvalidMessage}}
		}
	case *kind.Enum, *kind.Const:
		if ptr == "/type" {
			return []Problem{{Pointer: ptr, Message: e.ErrorKind.LocalizedString(printer), Code: CodeUnknownType}}
		}
	}
	return []Problem{{Pointer: ptr, Message: e.ErrorKind.LocalizedString(printer), Code: CodeInvalidField}}
}

// pointer builds an RFC 6901 JSON pointer from reference tokens.
func pointer(tokens []string) string {
	var sb strings.Builder
	for _, t := range tokens {
		sb.WriteByte('/')
		sb.WriteString(escapePointer(t))
	}
	return sb.String()
}

// escapePointer escapes one reference token of a JSON pointer (RFC 6901 section 3).
func escapePointer(token string) string { return pointerEscaper.Replace(token) }

var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number, float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
