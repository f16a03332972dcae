package schemas_test

import (
	"cmp"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	upstream "github.com/santhosh-tekuri/jsonschema/v6"
	upkind "github.com/santhosh-tekuri/jsonschema/v6/kind"

	"github.com/agentws/agentws/schemas"
	"github.com/agentws/agentws/schemas/internal/jsonschema"
	"github.com/agentws/agentws/schemas/internal/jsonschema/kind"
)

// numberSeeds are numbers at the corners of the checks on numbers (type integer,
// minimum): a zero fraction or an exponent on an integer, signed zeros, values beyond
// float64's precision and range, and the edges of the Go integer types.
var numberSeeds = []string{
	"0", "-0", "0.0", "-0.0", "0e5", "-0E-5", "1", "-1", "1.0", "-1.0", "1.5", "0.5", "-0.5",
	"1e2", "1E+2", "1e-2", "100e-2", "10e-1", "1e0", "1.0e+00", "2.5e1", "25e-1", "1.5e-7",
	"1e-7", "0.1", "1e21", "1e22", "1e400", "-1e400", "1e-400", "1e308", "1.7976931348623157e308",
	"4.9e-324", "5e-324", "123456789012345678901234567890", "123456789012345678901234567890.0",
	"9007199254740992", "9007199254740993", "9007199254740993.0", "9007199254740992.5",
	"9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
	"18446744073709551615", "18446744073709551616", "0.99999999999999999999", "1.00000000000000000001",
	"0.00000000000000000001e20", "100000000000000000000e-20", "127", "128", "-129", "255", "256",
	"32767", "65536", "2147483648", "4294967296",
}

// FuzzForkAgreesWithUpstream holds the validator's fork of the schema library
// (internal/jsonschema) to the release it was copied from: every embedded schema,
// compiled by each the way NewValidator compiles it (definitions inlined, the regexp
// engine of regexp.go, strict and not), gives the same verdict on every input that
// decodes, and for an invalid one the same errors: the same tree of errors, each with
// its schema location, instance location, keyword path and kind with all its fields
// (numbers exact), and the same basic output (each error's keyword location, absolute
// keyword location, instance location and message). Each input is validated as Decode
// gives it (json.Number) and, when it has numbers, with them as Go integers, as float64
// (encoding/json's) and as float32.
func FuzzForkAgreesWithUpstream(f *testing.F) {
	seedCorpus(f)
	for _, n := range numberSeeds {
		f.Add([]byte(n))
		f.Add([]byte(`{"type":"chunk","content":"x","chunk_number":` + n + `,"session_id":"s","timestamp":"2025-10-25T12:34:56Z","seq":` + n + `}`))
		f.Add([]byte(`{"type":"complete","full_response":"","total_chunks":` + n + `,"session_id":"s","timestamp":"2025-10-25T12:34:56Z"}`))
	}
	type pair struct {
		strict   bool
		fork     *schemas.Validator
		upstream map[schemas.Schema]*upstream.Schema
	}
	var pairs []pair
	for _, strict := range []bool{false, true} {
		pairs = append(pairs, pair{strict, newValidator(f, strict), compileUpstream(f, strict)})
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := schemas.Decode(data)
		if err != nil {
			return
		}
		for _, d := range docVariants(data, doc) {
			for _, p := range pairs {
				for _, s := range schemas.All() {
					ferr := p.fork.Compiled(s).Validate(d.doc)
					uerr := p.upstream[s].Validate(d.doc)
					if (ferr == nil) != (uerr == nil) {
						t.Fatalf("%s, strict %v, %s: %q: the fork says %v, upstream %v", s, p.strict, d.name, data, ferr, uerr)
					}
					if ferr == nil {
						continue
					}
					got, want := forkTree(t, ferr), upstreamTree(t, uerr)
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("%s, strict %v, %s: %q: the fork's errors differ from upstream's (-upstream +fork):\n%s", s, p.strict, d.name, data, gocmp.Diff(want, got))
					}
				}
			}
		}
	})
}

// compileUpstream compiles every embedded schema with the upstream library, as
// NewValidator compiles them with the fork.
func compileUpstream(t testing.TB, strict bool) map[schemas.Schema]*upstream.Schema {
	t.Helper()
	docs, err := schemas.SchemaDocs(schemas.Options{Strict: strict})
	if err != nil {
		t.Fatal(err)
	}
	c := upstream.NewCompiler()
	c.DefaultDraft(upstream.Draft2020)
	c.UseRegexpEngine(func(pattern string) (upstream.Regexp, error) { return schemas.CompileRegexp(pattern) })
	for _, s := range schemas.All() {
		if err := c.AddResource(s.URL(), docs[s]); err != nil {
			t.Fatal(err)
		}
	}
	out := map[schemas.Schema]*upstream.Schema{}
	for _, s := range schemas.All() {
		sch, err := c.Compile(s.URL())
		if err != nil {
			t.Fatal(err)
		}
		out[s] = sch
	}
	return out
}

type docVariant struct {
	name string
	doc  any
}

// docVariants returns the decoded input and, when it has numbers, the same value with
// other Go types for them: Go integers for the numbers that are integers in their text
// (the smallest type that holds each, signed or unsigned by turns), float64
// (encoding/json without UseNumber, when it can hold them all) and float32 for the
// float64s it holds.
func docVariants(data []byte, doc any) []docVariant {
	out := []docVariant{{"json.Number", doc}}
	if !hasNumber(doc) {
		return out
	}
	out = append(out, docVariant{"Go integers", mapNumbers(doc, goInteger)})
	var f64 any
	if err := json.Unmarshal(data, &f64); err == nil {
		out = append(out, docVariant{"float64", f64}, docVariant{"float32", mapFloats(f64)})
	}
	return out
}

func hasNumber(v any) bool {
	switch v := v.(type) {
	case json.Number:
		return true
	case map[string]any:
		for _, e := range v {
			if hasNumber(e) {
				return true
			}
		}
	case []any:
		return slices.ContainsFunc(v, hasNumber)
	}
	return false
}

func mapNumbers(v any, fn func(json.Number) any) any {
	switch v := v.(type) {
	case json.Number:
		return fn(v)
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = mapNumbers(e, fn)
		}
		return m
	case []any:
		a := make([]any, len(v))
		for i, e := range v {
			a[i] = mapNumbers(e, fn)
		}
		return a
	}
	return v
}

// goInteger returns an integer's text as the smallest Go integer type that holds it:
// unsigned for an odd value that has one, signed for the others. Other numbers stay
// json.Number.
func goInteger(n json.Number) any {
	if u, err := strconv.ParseUint(string(n), 10, 64); err == nil && (u%2 == 1 || u > math.MaxInt64) {
		switch {
		case u <= math.MaxUint8:
			return uint8(u)
		case u <= math.MaxUint16:
			return uint16(u)
		case u <= math.MaxUint32:
			return uint32(u)
		case u%4 == 1:
			return uint(u)
		}
		return u
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	switch {
	case err != nil:
		return n
	case i == int64(int8(i)):
		return int8(i)
	case i == int64(int16(i)):
		return int16(i)
	case i == int64(int32(i)):
		return int32(i)
	case i%4 == 0:
		return int(i)
	}
	return i
}

func mapFloats(v any) any {
	switch v := v.(type) {
	case float64:
		if f := float32(v); !math.IsInf(float64(f), 0) {
			return f
		}
		return v
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = mapFloats(e)
		}
		return m
	case []any:
		a := make([]any, len(v))
		for i, e := range v {
			a[i] = mapFloats(e)
		}
		return a
	}
	return v
}

// errTree is what FuzzForkAgreesWithUpstream compares of a validation error: its tree,
// the causes of each error in an order of their own (the library's follows the
// iteration of maps), and its basic output, sorted.
type errTree struct {
	Root  errNode
	Basic []string
}

type errNode struct {
	SchemaURL        string
	InstanceLocation []string
	KeywordPath      []string
	Kind             string // its type and fields
	Causes           []errNode
}

func forkTree(t *testing.T, err error) errTree {
	type E = *jsonschema.ValidationError
	return libTree(t, err, func(e E) (string, []string, errorKind, []E) {
		return e.SchemaURL, e.InstanceLocation, e.ErrorKind, e.Causes
	}, func(e E) (units []string) {
		for _, u := range e.BasicOutput().Errors {
			units = append(units, unitText(u.KeywordLocation, u.AbsoluteKeywordLocation, u.InstanceLocation, u.Error.String()))
		}
		return units
	})
}

func upstreamTree(t *testing.T, err error) errTree {
	type E = *upstream.ValidationError
	return libTree(t, err, func(e E) (string, []string, errorKind, []E) {
		return e.SchemaURL, e.InstanceLocation, e.ErrorKind, e.Causes
	}, func(e E) (units []string) {
		for _, u := range e.BasicOutput().Errors {
			units = append(units, unitText(u.KeywordLocation, u.AbsoluteKeywordLocation, u.InstanceLocation, u.Error.String()))
		}
		return units
	})
}

type errorKind interface{ KeywordPath() []string }

// libTree makes the errTree of an error of either library, E its *ValidationError:
// parts gives an error's schema location, instance location, kind and causes; basic
// gives the units of its basic output.
func libTree[E any](t *testing.T, err error, parts func(E) (string, []string, errorKind, []E), basic func(E) []string) errTree {
	t.Helper()
	verr, ok := err.(E)
	if !ok {
		t.Fatalf("got %T, want %T: %v", err, verr, err)
	}
	var node func(e E) keyedNode
	node = func(e E) keyedNode {
		schemaURL, instance, k, causes := parts(e)
		switch k := k.(type) { // the properties are found in a map's order
		case *kind.AdditionalProperties:
			slices.Sort(k.Properties)
		case *upkind.AdditionalProperties:
			slices.Sort(k.Properties)
		}
		nodes := make([]keyedNode, len(causes))
		for i, c := range causes {
			nodes[i] = node(c)
		}
		return newNode(schemaURL, instance, k, nodes)
	}
	root := node(verr).node // sorts the properties before basic's messages name them
	units := basic(verr)
	slices.Sort(units)
	return errTree{root, units}
}

func unitText(keywordLocation, absoluteKeywordLocation, instanceLocation, message string) string {
	return strings.Join([]string{keywordLocation, absoluteKeywordLocation, instanceLocation, message}, " ")
}

// A keyedNode is a node with a hash of it that orders it among its siblings.
type keyedNode struct {
	node errNode
	key  uint64
}

var keySeed = maphash.MakeSeed()

// newNode makes a node of an error, its causes sorted by their keys.
func newNode(schemaURL string, instance []string, k errorKind, causes []keyedNode) keyedNode {
	slices.SortFunc(causes, func(a, b keyedNode) int { return cmp.Compare(a.key, b.key) })
	n := errNode{schemaURL, instance, k.KeywordPath(), fmt.Sprintf("%T%+v", k, k), nil}
	var h maphash.Hash
	h.SetSeed(keySeed)
	for _, f := range [][]string{{n.SchemaURL}, n.InstanceLocation, n.KeywordPath, {n.Kind}} {
		for _, s := range f {
			h.WriteString(s)
			h.WriteByte(0)
		}
		h.WriteByte(1)
	}
	for _, c := range causes {
		n.Causes = append(n.Causes, c.node)
		maphash.WriteComparable(&h, c.key)
	}
	return keyedNode{n, h.Sum64()}
}
