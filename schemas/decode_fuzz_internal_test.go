package schemas

import (
	"bytes"
	"encoding/json"
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
