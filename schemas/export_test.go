package schemas

import "github.com/agentws/agentws/schemas/internal/jsonschema"

// ValidateMessageFull is the reference that FuzzValidateMessage holds ValidateMessage
// to: the text decoded by encoding/json (decodeStd, not parseFast), and every message
// validated against its direction's whole union schema, not straight against its
// type's schema. Direction Any, which has no union, uses the union of the type's
// direction, and ValidateMessageValue's errors for a type of neither.
func (v *Validator) ValidateMessageFull(d Direction, data []byte) error {
	doc, err := decodeStd(data)
	if err != nil {
		return err
	}
	if d == Any {
		obj, _ := doc.(map[string]any)
		t, _ := obj["type"].(string)
		if d = DirectionOf(t); d == "" {
			return v.ValidateMessageValue(Any, doc)
		}
	}
	switch d {
	case Client:
		return v.ValidateValue(ClientMessage, doc)
	case Server:
		return v.ValidateValue(ServerMessage, doc)
	}
	return v.ValidateMessageValue(d, doc) // an unknown direction's error
}

// SchemaDocs is schemaDocs: the documents NewValidator compiles, for a test that
// compiles them with another compiler.
func SchemaDocs(opts Options) (map[Schema]any, error) { return schemaDocs(opts) }

// CompileRegexp is the validator's regexp engine.
var CompileRegexp = compileRegexp

// Compiled returns the schema the validator validates s with.
func (v *Validator) Compiled(s Schema) *jsonschema.Schema { return v.schemas[s] }
