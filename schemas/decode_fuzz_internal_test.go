package schemas

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// FuzzDecode checks Decode against encoding/json and its two ways of finding a repeated
// member name against each other: Decode accepts exactly the UTF-8 texts that
// encoding/json accepts and that have no repeated name, with the same value; the
// member count (colons against map keys) and the walk that names the member agree.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"type":"query","query":"a","query":"b"}`,
		`{"type":"query","query":"validated","QUERY":""}`,
		`{"a":{"b":[1,{"c":":\":","c":null}]},"d":"\u0064"}`,
		`{"k:":"\"::\\","k":"v"}`,
		`[{"":1},{"":1,"":2}]`,
		`{"a":1} `,
		`"x:y"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := Decode(data)
		if !json.Valid(data) || !utf8.Valid(data) {
			if err == nil {
				t.Fatalf("Decode accepted %q, which encoding/json refuses or is not UTF-8", data)
			}
			return
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var want any
		if err := dec.Decode(&want); err != nil {
			t.Fatal(err)
		}
		unique := findDuplicate(data) == nil
		if counted := colons(data) == keys(want); counted != unique {
			t.Fatalf("%q: member count says unique %v (%d colons, %d keys), the walk says %v", data, counted, colons(data), keys(want), unique)
		}
		switch {
		case unique && err != nil:
			t.Fatalf("Decode refused %q, which has no repeated name: %v", data, err)
		case !unique && (err == nil || !strings.Contains(err.Error(), "duplicate member name")):
			t.Fatalf("Decode(%q) = %v, want a duplicate member error", data, err)
		case unique:
			if diff := cmp.Diff(want, doc); diff != "" {
				t.Fatalf("Decode(%q) differs from encoding/json (-json +Decode):\n%s", data, diff)
			}
		}
	})
}

// FuzzParseFast checks Decode's fast path against decodeStd, the decoding with
// encoding/json it stands in for: the two refuse the same texts (parseFast also refuses
// texts nested deeper than maxFastDepth) and accept the others with the same value.
func FuzzParseFast(f *testing.F) {
	for _, s := range []string{
		`{"type":"chunk","content":"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00\ud800\udc00\ud800x\udc00\ud800\u0041","chunk_number":12}`,
		`{"a":[],"b":{},"c":[1,-0,0.5,1e3,1E+3,-1.5e-3,true,false,null,"x"],"d":{"e":{"f":[[[]]]}}}`,
		`{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, `[01]`, `[1.]`, `[.1]`, `[1e]`, `[-]`, `["\x"]`, `["\u12"]`,
		"[\"\x01\"]", "\xef\xbb\xbf{}", " \t\r\n{} \n", `{} {}`, ``, ` `, `tru`, `nul`, `{"a" 1}`, `{"a":1,}`, `[1,]`,
		strings.Repeat("[", maxFastDepth) + strings.Repeat("]", maxFastDepth),
		strings.Repeat("[", maxFastDepth+1) + strings.Repeat("]", maxFastDepth+1),
	} {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"long":"` + strings.Repeat("x", copyOnceLimit) + `","esc":"\n"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok := parseFast(data)
		want, err := decodeStd(data)
		switch {
		case !ok && err == nil && depth(data) <= maxFastDepth:
			t.Fatalf("parseFast refused %q, which decodeStd accepts", data)
		case ok && err != nil:
			t.Fatalf("parseFast accepted %q, which decodeStd refuses: %v", data, err)
		case ok && !reflect.DeepEqual(want, got): // cmp.Diff alone is slow on deep nesting
			t.Fatalf("parseFast(%q) differs from decodeStd (-decodeStd +parseFast):\n%s", data, cmp.Diff(want, got))
		}
		if doc, derr := Decode(data); (derr == nil) != (err == nil) || derr != nil && derr.Error() != err.Error() || !reflect.DeepEqual(doc, want) {
			t.Fatalf("Decode(%q) = %v, %v; decodeStd: %v, %v", data, doc, derr, want, err)
		}
	})
}

// depth returns the deepest nesting of objects and arrays in a JSON text.
func depth(data []byte) int {
	n, deepest, inString := 0, 0, false
	for i := 0; i < len(data); i++ {
		switch c := data[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case !inString && (c == '{' || c == '['):
			n++
			deepest = max(deepest, n)
		case !inString && (c == '}' || c == ']'):
			n--
		}
	}
	return deepest
}
