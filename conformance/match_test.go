package conformance

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMatch(t *testing.T) {
	frame := `{"type":"chunk","content":"Echo: hi","chunk_number":3,"seq":7,"ok":true,"list":[1,2],"timestamp":"2025-10-25T12:34:56.789Z"}`
	tests := []struct{ pattern, diff string }{
		{`{"type": "chunk"}`, ""},
		{`{"type": "chunk", "chunk_number": 3, "ok": true, "list": [1, 2]}`, ""},
		{`{"content": "@string", "seq": "@integer", "timestamp": "@timestamp", "list": "@array"}`, ""},
		{`{"content": "@re:^Echo: "}`, ""},
		{`{"missing": "@absent"}`, ""},
		{`{"type": "complete"}`, `/type: got "chunk", want "complete"`},
		{`{"query_id": "q1"}`, `/query_id: missing, want "q1"`},
		{`{"seq": "@absent"}`, `/seq: got 7, want no such member`},
		{`{"chunk_number": "@string"}`, `/chunk_number: got 3, want @string`},
		{`{"content": "@re:^Bye"}`, `/content: got "Echo: hi", want @re:^Bye`},
		{`{"list": [1]}`, `/list: got [1,2], want [1]`},
		{`{"type": "@nope"}`, `/type: unknown placeholder "@nope"`},
		{`{"content": "@@literal"}`, `/content: got "Echo: hi", want "@literal"`},
	}
	var got map[string]any
	json.Unmarshal([]byte(frame), &got)
	for _, tt := range tests {
		var p any
		if err := json.Unmarshal([]byte(tt.pattern), &p); err != nil {
			t.Fatal(err)
		}
		if d := match(p, got, "", map[string]string{}); d != tt.diff {
			t.Errorf("match(%s):\n got %q\nwant %q", tt.pattern, d, tt.diff)
		}
	}
	captured := map[string]string{}
	var p any
	json.Unmarshal([]byte(`{"seq": "@capture:S", "content": "@capture:C", "list": "@capture:L"}`), &p)
	if d := match(p, got, "", captured); d != "" || captured["S"] != "7" || captured["C"] != "Echo: hi" || captured["L"] != "[1,2]" {
		t.Errorf("captures %v (%s)", captured, d)
	}
}

func TestSum(t *testing.T) {
	for in, want := range map[string]int{"7": 7, "40+1": 41, "1+2+3": 6} {
		if got, err := sum(in); err != nil || got != want {
			t.Errorf("sum(%q) = %d, %v", in, got, err)
		}
	}
	if _, err := sum("x+1"); err == nil {
		t.Error("sum(x+1): want an error")
	}
}

func TestDiffViews(t *testing.T) {
	var got, p map[string]any
	json.Unmarshal([]byte(`{"type":"chunk","chunk_number":3,"content":"Echo","session_id":"s","timestamp":"2025-10-25T12:34:56Z"}`), &got)
	json.Unmarshal([]byte(`{"type":"chunk","chunk_number":2,"content":"@string","timestamp":"@timestamp","seq":"@absent"}`), &p)
	wv, gv := diffViews(p, got)
	d := cmp.Diff(wv, gv)
	var changed []string
	for _, line := range strings.Split(d, "\n") {
		if l := strings.TrimSpace(line); strings.HasPrefix(l, "-") || strings.HasPrefix(l, "+") {
			changed = append(changed, l)
		}
	}
	if len(changed) != 2 || !strings.Contains(changed[0], `"chunk_number"`) || !strings.Contains(changed[1], `"chunk_number"`) {
		t.Errorf("the diff should change only chunk_number:\n%s", d)
	}
	if strings.Contains(d, "session_id") || strings.Contains(d, "seq") {
		t.Errorf("the diff shows members the pattern does not name:\n%s", d)
	}
}
