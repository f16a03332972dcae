package schemas

import (
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/agentws/agentws/schemas/msg"
)

// clientGoTypes gives the generated Go type of each client message type
// (TestDecodeClientCoversEveryClientType ties it to client-message.json).
var clientGoTypes = map[string]reflect.Type{
	"query":      reflect.TypeFor[msg.Query](),
	"ping":       reflect.TypeFor[msg.Ping](),
	"disconnect": reflect.TypeFor[msg.Disconnect](),
	"cancel":     reflect.TypeFor[msg.Cancel](),
}

// DecodeClient parses data, validates it as a client message and returns the document
// that was validated as the generated Go type of its type: *msg.Query, *msg.Ping,
// *msg.Disconnect or *msg.Cancel. A server that acts on what it returns acts on what
// was validated, byte for byte (see [Bind]).
func (v *Validator) DecodeClient(data []byte) (any, error) {
	doc, err := Decode(data)
	if err != nil {
		return nil, err
	}
	if err := v.ValidateMessageValue(Client, doc); err != nil {
		return nil, err
	}
	typ := doc.(map[string]any)["type"].(string) // a valid client message has a string type
	goType, ok := clientGoTypes[typ]
	if !ok {
		return nil, fmt.Errorf("schemas: client message type %q has no Go type", typ)
	}
	out := reflect.New(goType)
	if err := Bind(doc, out.Interface()); err != nil {
		return nil, err
	}
	return out.Interface(), nil
}

// Bind stores doc, a JSON value as [Decode] returns it, in the Go value dst points to.
// Unlike encoding/json, a struct field takes only the member whose name equals its JSON
// name exactly: "QUERY" and "Query" are not "query" but unknown members, ignored as
// ENV-3 requires, just as the validator, which matches names exactly, ignores them.
// A value of the wrong JSON type is an error that names its JSON pointer.
func Bind(doc any, dst any) error {
	p := reflect.ValueOf(dst)
	if p.Kind() != reflect.Pointer || p.IsNil() {
		return fmt.Errorf("schemas: Bind needs a non-nil pointer, got %T", dst)
	}
	return bind(p.Elem(), doc)
}

// A bindError is a value that does not fit where Bind stores it. Its JSON pointer is
// made as the error comes back up, token by token, so that a value bound costs no
// pointer.
type bindError struct {
	tokens []string // innermost first, escaped
	msg    string
}

func (e *bindError) Error() string {
	if len(e.tokens) == 0 {
		return "schemas: (root): " + e.msg
	}
	var b strings.Builder
	b.WriteString("schemas: ")
	for i := len(e.tokens) - 1; i >= 0; i-- {
		b.WriteString("/")
		b.WriteString(e.tokens[i])
	}
	b.WriteString(": ")
	b.WriteString(e.msg)
	return b.String()
}

func bindFailed(format string, args ...any) error {
	return &bindError{msg: fmt.Sprintf(format, args...)}
}

// under puts err, of a value bound, under the member or element named by token.
func under(err error, token string) error {
	if be, ok := err.(*bindError); ok {
		be.tokens = append(be.tokens, token)
	}
	return err
}

func bind(dst reflect.Value, v any) error {
	if v == nil {
		dst.SetZero()
		return nil
	}
	switch dst.Kind() {
	case reflect.Pointer:
		dst.Set(reflect.New(dst.Type().Elem()))
		return bind(dst.Elem(), v)
	case reflect.Struct:
		return bindStruct(dst, v)
	case reflect.Slice:
		return bindSlice(dst, v)
	case reflect.Map:
		return bindMap(dst, v)
	case reflect.Interface:
		if dst.NumMethod() == 0 {
			dst.Set(reflect.ValueOf(v))
			return nil
		}
	}
	return bindScalar(dst, v)
}

func bindScalar(dst reflect.Value, v any) error {
	switch x := v.(type) {
	case string:
		if dst.Kind() == reflect.String {
			dst.SetString(x)
			return nil
		}
	case bool:
		if dst.Kind() == reflect.Bool {
			dst.SetBool(x)
			return nil
		}
	case json.Number:
		return bindNumber(dst, x)
	}
	return mismatch(dst, v)
}

func bindNumber(dst reflect.Value, n json.Number) error {
	switch {
	case dst.CanInt():
		i, ok := integer(n)
		if !ok || dst.OverflowInt(i) {
			return bindFailed("%s is not an integer that fits in %s", n, dst.Type())
		}
		dst.SetInt(i)
	case dst.CanFloat():
		f, err := strconv.ParseFloat(n.String(), 64)
		if err != nil || dst.OverflowFloat(f) {
			return bindFailed("%s does not fit in %s", n, dst.Type())
		}
		dst.SetFloat(f)
	default:
		return mismatch(dst, n)
	}
	return nil
}

// integer converts a JSON number with an integer value, such as 42, 42.0 or 4.2e1 (all
// integers to JSON Schema), to an int64.
func integer(n json.Number) (int64, bool) {
	if i, err := strconv.ParseInt(n.String(), 10, 64); err == nil {
		return i, true
	}
	f, _, err := big.ParseFloat(n.String(), 10, 128, big.ToNearestEven)
	if err != nil || !f.IsInt() {
		return 0, false
	}
	i, acc := f.Int64()
	return i, acc == big.Exact
}

// A boundField is a struct field that Bind fills: its index, and its JSON name.
type boundField struct {
	index int
	name  string
}

// boundFields holds the boundFields of each struct type bound so far.
var boundFields sync.Map // reflect.Type -> []boundField

func fieldsOf(t reflect.Type) []boundField {
	if fs, ok := boundFields.Load(t); ok {
		return fs.([]boundField)
	}
	var fs []boundField
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fs = append(fs, boundField{index: i, name: name})
	}
	boundFields.Store(t, fs)
	return fs
}

// bindStruct fills each field from the member named exactly as its JSON name.
func bindStruct(dst reflect.Value, v any) error {
	obj, ok := v.(map[string]any)
	if !ok {
		return mismatch(dst, v)
	}
	for _, f := range fieldsOf(dst.Type()) {
		if m, present := obj[f.name]; present {
			if err := bind(dst.Field(f.index), m); err != nil {
				return under(err, escapePointer(f.name))
			}
		}
	}
	return nil
}

func bindSlice(dst reflect.Value, v any) error {
	arr, ok := v.([]any)
	if !ok {
		return mismatch(dst, v)
	}
	out := reflect.MakeSlice(dst.Type(), len(arr), len(arr))
	for i, e := range arr {
		if err := bind(out.Index(i), e); err != nil {
			return under(err, strconv.Itoa(i))
		}
	}
	dst.Set(out)
	return nil
}

func bindMap(dst reflect.Value, v any) error {
	obj, ok := v.(map[string]any)
	if !ok || dst.Type().Key().Kind() != reflect.String {
		return mismatch(dst, v)
	}
	out := reflect.MakeMapWithSize(dst.Type(), len(obj))
	for k, e := range obj {
		ev := reflect.New(dst.Type().Elem()).Elem()
		if err := bind(ev, e); err != nil {
			return under(err, escapePointer(k))
		}
		out.SetMapIndex(reflect.ValueOf(k).Convert(dst.Type().Key()), ev)
	}
	dst.Set(out)
	return nil
}

func mismatch(dst reflect.Value, v any) error {
	return bindFailed("cannot store a JSON %s in %s", jsonType(v), dst.Type())
}
