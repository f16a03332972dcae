package conformance

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// A wireLog records every frame of a case in both directions, with times, up to
// maxWireBytes: a server that floods a case cannot make it hold more.
type wireLog struct {
	mu      sync.Mutex
	start   time.Time
	entries []wireEntry
	bytes   int
	dropped int // entries not recorded, over maxWireBytes
}

const maxWireBytes = 32 << 20

type wireEntry struct {
	at   time.Duration
	conn string
	dir  string // ">" client to server, "<" server to client, "#" an event
	text string
	cmd  string // the replay command
}

func newWireLog() *wireLog { return &wireLog{start: time.Now()} }

func (w *wireLog) add(e wireEntry) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e.at = time.Since(w.start)
	if n := len(e.text) + len(e.cmd); w.bytes+n <= maxWireBytes {
		w.bytes += n
		w.entries = append(w.entries, e)
		return
	}
	w.dropped++
}

// droppedNote says how many entries were not recorded, or "".
func (w *wireLog) droppedNote() string {
	if w.dropped == 0 {
		return ""
	}
	return fmt.Sprintf("%d more entries not recorded: the wire log holds at most %d MiB", w.dropped, maxWireBytes>>20)
}

func (w *wireLog) send(conn string, typ websocket.MessageType, data []byte) {
	cmd := "sendraw"
	if typ == websocket.MessageBinary {
		cmd = "sendbinary"
	}
	w.add(wireEntry{conn: conn, dir: ">", text: string(data), cmd: fmt.Sprintf("%s %s %s", cmd, conn, quote(string(data)))})
}

func (w *wireLog) recv(conn string, e event) {
	if e.binary {
		w.add(wireEntry{conn: conn, dir: "<", text: fmt.Sprintf("(binary, %d bytes)", len(e.data))})
		return
	}
	pattern := timestamps.ReplaceAllString(string(e.data), `"timestamp":"@timestamp"`)
	pattern = epochs.ReplaceAllString(pattern, `"epoch":"@string"`)
	w.add(wireEntry{conn: conn, dir: "<", text: string(e.data), cmd: fmt.Sprintf("expect -keepalive %s %s", conn, quote(pattern))})
}

func (w *wireLog) end(conn string, e event) {
	if errors.Is(e.end, errClosedByHarness) {
		w.add(wireEntry{conn: conn, dir: "#", text: describe(e)})
		return
	}
	code := e.code()
	cmd := fmt.Sprintf("closed %s %d", conn, code)
	if code == -1 {
		cmd = fmt.Sprintf("closed %s abrupt", conn)
	}
	w.add(wireEntry{conn: conn, dir: "#", text: describe(e), cmd: cmd})
}

func (w *wireLog) note(conn, text string) {
	cmd := ""
	switch {
	case strings.HasPrefix(text, "open "):
		cmd = fmt.Sprintf("open %s %s", conn, quote(strings.TrimPrefix(text, "open ")))
	case strings.HasPrefix(text, "drop"):
		cmd = "drop " + conn
	case strings.HasPrefix(text, "close "):
		cmd = "close " + conn + " " + strings.TrimPrefix(text, "close ")
	}
	w.add(wireEntry{conn: conn, dir: "#", text: text, cmd: cmd})
}

// What a replay cannot expect as it was: the time, and the epoch of a new session.
var (
	timestamps = regexp.MustCompile(`"timestamp":"[^"]*"`)
	epochs     = regexp.MustCompile(`"epoch":"[^"]*"`)
)

// quote quotes s as one testscript word: single quotes, with ' doubled.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// String formats the log for a person: time, connection, direction, frame.
func (w *wireLog) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var b strings.Builder
	for _, e := range w.entries {
		fmt.Fprintf(&b, "%8.3fs %-4s %s %s\n", e.at.Seconds(), e.conn, e.dir, truncate(e.text, 500))
	}
	if note := w.droppedNote(); note != "" {
		b.WriteString(note + "\n")
	}
	return b.String()
}

// Replay returns the log as a case that replays the exchange: what the client sent,
// and the frames the server answered as expectations (timestamps and epochs aside),
// under the header of case c, so that the catalogue accepts it.
func (w *wireLog) Replay(c Case) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "# The wire log of case %s, as a case that replays it.\n# rules: %s\n# level: %s\n", c.Name, strings.Join(c.Rules, ", "), c.Level)
	if len(c.Needs) > 0 {
		fmt.Fprintf(&b, "# needs: %s\n", strings.Join(c.Needs, " "))
	}
	b.WriteString("\n")
	for _, e := range w.entries {
		if e.cmd != "" {
			fmt.Fprintf(&b, "%s\n", e.cmd)
		}
	}
	if note := w.droppedNote(); note != "" {
		b.WriteString("# " + note + "\n")
	}
	return b.String()
}
