package selftest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentws/agentws/conformance"
)

// hastyEnv makes the test binary, run again, the adapter of a client that takes the
// first chunk for the whole answer: it prints it, closes the connection and exits 0.
const hastyEnv = "AGENTWS_SELFTEST_HASTY_CLIENT"

func TestMain(m *testing.M) {
	if os.Getenv(hastyEnv) != "" {
		os.Exit(hastyClient(os.Args[len(os.Args)-2], os.Args[len(os.Args)-1]))
	}
	os.Exit(m.Run())
}

func hastyClient(url, query string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	data, _ := json.Marshal(map[string]string{"type": "query", "query": query})
	if err := ws.Write(ctx, websocket.MessageText, data); err != nil {
		return 3
	}
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			return 3
		}
		var f struct{ Type, Content string }
		json.Unmarshal(data, &f)
		if f.Type == "chunk" {
			fmt.Print(f.Content)
			ws.Close(websocket.StatusNormalClosure, "done")
			return 0
		}
	}
}

// A client that leaves early is judged on how it says the query ended: the frames
// the scripted server could not write to it are no error of the server's, and exit 0
// after them is a claim of an answer the client never had.
func TestHastyClientFails(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(hastyEnv, "1")
	opts := conformance.DefaultOptions("")
	dir := t.TempDir()
	// The script waits for the client to leave before it sends the rest.
	script := `# A client that leaves after the first chunk has not the whole answer.
# rules: CLIENT-7
# level: MUST

client 'Hello'
accept -caps query_id c1
recv c1 query
send c1 query_start
send c1 chunk 'one, '
norecv c1 query 5s
send c1 chunk 'two.'
send c1 complete
exit 0
`
	if err := os.WriteFile(filepath.Join(dir, "client_left.txtar"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	opts.Client, opts.Strict, opts.Dir = []string{self}, true, dir
	rep, err := conformance.Run(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Cases) != 1 || rep.Cases[0].Verdict != conformance.Fail || !strings.Contains(rep.Cases[0].Failure, "before the server could send it chunk, complete") {
		t.Fatalf("report %+v, want client_left failed: the client left before chunk and complete", rep.Cases)
	}
}
