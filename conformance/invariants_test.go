package conformance

import (
	"strconv"
	"testing"
	"time"
)

// total_messages_sent may not fall between bodies whose requests did not overlap;
// bodies of overlapping requests may come in either order.
func TestHealthNeverFalls(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	for _, tt := range []struct {
		name    string
		samples [][3]int // sent ms, got ms, total
		fell    bool
	}{
		{"rises", [][3]int{{0, 1, 5}, {2, 3, 9}}, false},
		{"falls", [][3]int{{0, 1, 9}, {2, 3, 5}}, true},
		{"falls, observed out of order", [][3]int{{2, 3, 5}, {0, 1, 9}}, true},
		{"overlapping requests", [][3]int{{0, 5, 9}, {1, 3, 5}}, false},
		{"stays", [][3]int{{0, 1, 7}, {2, 3, 7}}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			inv := newInvariants(nil, t0)
			for _, s := range tt.samples {
				inv.observeHealth(at(s[0]), at(s[1]), []byte(`{"total_messages_sent":`+strconv.Itoa(s[2])+`}`), "test")
			}
			f := inv.Findings()
			if fell := len(f) == 1 && f[0].Rule == "HEALTH-3"; fell != tt.fell || len(f) > 1 {
				t.Errorf("findings %+v, want a fall: %v", f, tt.fell)
			}
		})
	}
}

// In one epoch of a session, a seq seen again must name the same frame; another epoch
// or session is another history.
func TestSeqNamesOneFrame(t *testing.T) {
	frame := func(seq int, content string) event {
		data := `{"type":"chunk","seq":` + strconv.Itoa(seq) + `,"content":"` + content + `"}`
		return event{data: []byte(data), frame: map[string]any{"type": "chunk", "seq": float64(seq), "content": content}}
	}
	for _, tt := range []struct {
		name   string
		sid    [2]string
		epoch  [2]string
		second event
		repeat bool
	}{
		{"a resume sends the same frame", [2]string{"s", "s"}, [2]string{"e", "e"}, frame(3, "a"), false},
		{"another frame with the same seq", [2]string{"s", "s"}, [2]string{"e", "e"}, frame(3, "b"), true},
		{"another epoch", [2]string{"s", "s"}, [2]string{"e", "f"}, frame(3, "b"), false},
		{"another session", [2]string{"s", "t"}, [2]string{"e", "e"}, frame(3, "b"), false},
		{"no epoch", [2]string{"s", "s"}, [2]string{"", ""}, frame(3, "b"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			inv := newInvariants(nil, time.Now())
			inv.observeSeq(tt.sid[0], tt.epoch[0], frame(3, "a"))
			inv.observeSeq(tt.sid[1], tt.epoch[1], tt.second)
			f := inv.Findings()
			if got := len(f) == 1 && f[0].Rule == "SEQ-1"; got != tt.repeat || len(f) > 1 {
				t.Errorf("findings %+v, want a repeat: %v", f, tt.repeat)
			}
		})
	}
}
