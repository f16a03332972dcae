package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/agentws/agentws/reference/agent"
)

func collect(t *testing.T, a agent.Agent, ctx context.Context, q string) ([]string, error) {
	t.Helper()
	var chunks []string
	err := a.Stream(ctx, agent.Request{Query: q}, func(c string) error {
		chunks = append(chunks, c)
		return nil
	})
	return chunks, err
}

// FIX-1: the answer is "Echo: " + q, in chunks that never split a character.
func TestFixtureEcho(t *testing.T) {
	q := "Résume ce document en 三 points ✓ " + strings.Repeat("x", 40)
	chunks, err := collect(t, agent.Fixture{}, context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(chunks, ""); got != "Echo: "+q {
		t.Errorf("answer %q", got)
	}
	for _, c := range chunks {
		if !utf8.ValidString(c) || utf8.RuneCountInString(c) > 16 {
			t.Errorf("chunk %q: want at most 16 whole characters", c)
		}
	}
}

// A long answer comes in at most MaxChunks chunks, so that it fits a send queue.
func TestFixtureBoundsChunks(t *testing.T) {
	q := strings.Repeat("a", 64<<10)
	chunks, err := collect(t, agent.Fixture{}, context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) > agent.MaxChunks || strings.Join(chunks, "") != "Echo: "+q {
		t.Errorf("got %d chunks, want at most %d making up the answer", len(chunks), agent.MaxChunks)
	}
}

// FIX-2: __fail__ fails before the first chunk.
func TestFixtureFail(t *testing.T) {
	chunks, err := collect(t, agent.Fixture{}, context.Background(), "__fail__")
	if !errors.Is(err, agent.ErrFixtureFailure) || len(chunks) != 0 {
		t.Errorf("got %v and %d chunks, want the fixture failure before any chunk", err, len(chunks))
	}
}

// FIX-3: a slow query uses chunks of at most 8 characters, each after a wait; a
// cancelled context stops it.
func TestFixtureSlow(t *testing.T) {
	q := "__slow__ twenty characters"
	var gaps []time.Duration
	last := time.Now()
	var chunks []string
	err := agent.Fixture{}.Stream(context.Background(), agent.Request{Query: q}, func(c string) error {
		gaps = append(gaps, time.Since(last))
		last = time.Now()
		chunks = append(chunks, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(chunks, "") != "Echo: "+q {
		t.Errorf("answer %q", strings.Join(chunks, ""))
	}
	for i, c := range chunks {
		if utf8.RuneCountInString(c) > agent.SlowChunkRunes {
			t.Errorf("chunk %q is over 8 characters", c)
		}
		if gaps[i] < agent.SlowDelay {
			t.Errorf("chunk %d came %v after the previous one, want at least %v", i, gaps[i], agent.SlowDelay)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err = agent.Fixture{}.Stream(ctx, agent.Request{Query: q}, func(string) error {
		n++
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) || n != 1 {
		t.Errorf("after cancelling: %v after %d chunks, want context.Canceled after 1", err, n)
	}
}

// An emit error stops the stream.
func TestFixtureEmitError(t *testing.T) {
	stop := errors.New("stop")
	err := agent.Fixture{}.Stream(context.Background(), agent.Request{Query: strings.Repeat("x", 100)}, func(string) error { return stop })
	if !errors.Is(err, stop) {
		t.Errorf("got %v", err)
	}
}

// sse writes server-sent events as OpenAI-compatible servers do.
func sse(w http.ResponseWriter, events ...string) {
	w.Header().Set("Content-Type", "text/event-stream")
	for _, e := range events {
		fmt.Fprintf(w, "data: %s\n\n", e)
		w.(http.Flusher).Flush()
	}
}

func delta(s string) string {
	return fmt.Sprintf(`{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":%q},"finish_reason":null}]}`, s)
}

const finish = `{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`

func TestOpenAIStream(t *testing.T) {
	var got struct {
		Model    string
		Stream   bool
		Messages []struct{ Role, Content string }
	}
	var auth string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/chat/completions" {
			http.NotFound(w, r)
			return
		}
		auth = r.Header.Get("Authorization")
		json.NewDecoder(r.Body).Decode(&got)
		w.Write([]byte(": keep-alive comment\n\n"))
		sse(w, `{"id":"c1","choices":[{"index":0,"delta":{"role":"assistant"}}]}`, delta("Paris "), delta("is the capital."), finish, "[DONE]")
	}))
	defer ts.Close()
	a := &agent.OpenAI{URL: ts.URL + "/v1/", Model: "m1", APIKey: "secret"}
	var chunks []string
	err := a.Stream(context.Background(), agent.Request{Query: "Capital of France?", SystemPrompt: "Be brief"}, func(c string) error {
		chunks = append(chunks, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"Paris ", "is the capital."}, chunks); diff != "" {
		t.Errorf("chunks (-want +got):\n%s", diff)
	}
	if got.Model != "m1" || !got.Stream || len(got.Messages) != 2 || got.Messages[0].Role != "system" || got.Messages[1].Content != "Capital of France?" || auth != "Bearer secret" {
		t.Errorf("request %+v with authorization %q", got, auth)
	}
}

func TestOpenAIErrors(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    string
		chunks  int
	}{
		{"HTTP error", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"error":{"message":"model not found"}}`, http.StatusNotFound)
		}, "upstream answered 404 Not Found: {\"error\":{\"message\":\"model not found\"}}", 0},
		{"error mid-stream", func(w http.ResponseWriter, r *http.Request) {
			sse(w, delta("Par"), `{"error":{"message":"the model crashed","type":"server_error"}}`)
		}, "upstream error: the model crashed", 1},
		{"stream cut short", func(w http.ResponseWriter, r *http.Request) {
			sse(w, delta("Par"))
		}, "the upstream stream ended before the answer finished", 1},
		{"not JSON", func(w http.ResponseWriter, r *http.Request) {
			sse(w, "{nope")
		}, "upstream sent an event that is not JSON", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := httptest.NewServer(tt.handler)
			defer ts.Close()
			chunks, err := collect(t, &agent.OpenAI{URL: ts.URL, Model: "m"}, context.Background(), "q")
			if err == nil || !strings.Contains(err.Error(), tt.want) || len(chunks) != tt.chunks {
				t.Errorf("got %v after %d chunks, want %q after %d", err, len(chunks), tt.want, tt.chunks)
			}
		})
	}
}

// Cancelling the query aborts the upstream request.
func TestOpenAICancel(t *testing.T) {
	aborted := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sse(w, delta("first"))
		<-r.Context().Done() // the upstream sees the request go away
		close(aborted)
	}))
	defer ts.Close()
	ctx, cancel := context.WithCancel(context.Background())
	err := (&agent.OpenAI{URL: ts.URL, Model: "m"}).Stream(ctx, agent.Request{Query: "q"}, func(string) error {
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
	select {
	case <-aborted:
	case <-time.After(5 * time.Second):
		t.Error("the upstream request was not aborted")
	}
}

// Delay (-fixture-delay) paces every chunk, to emulate a model's token rate.
func TestFixtureDelay(t *testing.T) {
	const delay = 30 * time.Millisecond
	start := time.Now()
	chunks, err := collect(t, agent.Fixture{Delay: delay}, context.Background(), "a query of forty characters or so......")
	if err != nil {
		t.Fatal(err)
	}
	if took, least := time.Since(start), time.Duration(len(chunks))*delay; took < least {
		t.Errorf("%d chunks in %v, want at least %v: one delay before each", len(chunks), took, least)
	}
}
