package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
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

// Each failure has a public text that names no upstream detail (the client sees it)
// and a detail for the log; failures before the first token are tried again when they
// may pass (5xx, 429, no connection, no token in time), never after one.
func TestOpenAIErrors(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		public  string // Public(err)
		detail  string // in err.Error(), never in Public(err)
		chunks  int
		tries   int
	}{
		{"HTTP error", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"error":{"message":"model not found"}}`, http.StatusNotFound)
		}, "the model upstream refused the request (HTTP 404)", "model not found", 0, 1},
		{"bad API key", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"error":{"message":"Incorrect API key provided"}}`, http.StatusUnauthorized)
		}, "the model upstream refused the request (HTTP 401)", "Incorrect API key provided", 0, 1},
		{"overloaded, every try", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		}, "the model upstream refused the request (HTTP 503)", "overloaded", 0, 3},
		{"error mid-stream", func(w http.ResponseWriter, r *http.Request) {
			sse(w, delta("Par"), `{"error":{"message":"the model crashed","type":"server_error"}}`)
		}, "the model upstream reported an error", "the model crashed", 1, 1},
		{"stream cut short", func(w http.ResponseWriter, r *http.Request) {
			sse(w, delta("Par"))
		}, "the model upstream's answer broke off", "the stream ended before the answer finished", 1, 1},
		{"not JSON", func(w http.ResponseWriter, r *http.Request) {
			sse(w, "{nope")
		}, "the model upstream sent a malformed answer", "not JSON", 0, 3},
		{"no first token in time", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}, "the model upstream did not answer in time", "first-token timeout", 0, 3},
		{"no next token in time", func(w http.ResponseWriter, r *http.Request) {
			sse(w, delta("Par"))
			<-r.Context().Done()
		}, "the model upstream did not answer in time", "no token within the token timeout", 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tries atomic.Int32
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				tries.Add(1)
				tt.handler(w, r)
			}))
			defer ts.Close()
			chunks, err := collect(t, quick(ts.URL), context.Background(), "q")
			if err == nil || agent.Public(err) != tt.public || !strings.Contains(err.Error(), tt.detail) || len(chunks) != tt.chunks || int(tries.Load()) != tt.tries {
				t.Errorf("got %v (public %q) after %d chunks and %d tries, want public %q, detail %q, after %d chunks and %d tries",
					err, agent.Public(err), len(chunks), tries.Load(), tt.public, tt.detail, tt.chunks, tt.tries)
			}
			if p := agent.Public(err); strings.Contains(p, ts.URL) || strings.Contains(p, "127.0.0.1") || strings.Contains(p, tt.detail) {
				t.Errorf("the public text %q leaks the upstream's address or detail", p)
			}
		})
	}
}

// quick is an OpenAI agent for url whose bounds are short, for tests of failures.
func quick(url string) *agent.OpenAI {
	return &agent.OpenAI{URL: url, Model: "m", FirstTokenTimeout: 200 * time.Millisecond, TokenTimeout: 200 * time.Millisecond,
		Retries: agent.DefaultRetries, RetryBackoff: time.Millisecond}
}

// A failure before the first token that may pass is tried again: the second try's
// answer is the answer, once.
func TestOpenAIRetriesBeforeTheFirstToken(t *testing.T) {
	var tries atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tries.Add(1) == 1 {
			http.Error(w, "busy", http.StatusTooManyRequests)
			return
		}
		sse(w, delta("Par"), delta("is"), finish, "[DONE]")
	}))
	defer ts.Close()
	chunks, err := collect(t, quick(ts.URL), context.Background(), "q")
	if err != nil || strings.Join(chunks, "") != "Paris" || tries.Load() != 2 {
		t.Errorf("got %q, %v after %d tries, want Paris after 2", chunks, err, tries.Load())
	}
}

// An upstream that refuses connections: tried again, then a public text without its
// address; the whole answer is bounded by Timeout.
func TestOpenAIUnreachable(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	url := ts.URL
	ts.Close() // nothing listens there now
	_, err := collect(t, quick(url), context.Background(), "q")
	if agent.Public(err) != "the model upstream could not be reached" || !strings.Contains(err.Error(), "connect") {
		t.Errorf("got %v (public %q), want could not be reached, with the dial error in the detail", err, agent.Public(err))
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for { // a token every 50 ms, never finishing
			sse(w, delta("x"))
			select {
			case <-r.Context().Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}))
	defer slow.Close()
	a := quick(slow.URL)
	a.Timeout = 300 * time.Millisecond
	chunks, err := collect(t, a, context.Background(), "q")
	if agent.Public(err) != "the model upstream did not answer in time" || !strings.Contains(err.Error(), "agent timeout") || len(chunks) == 0 {
		t.Errorf("got %v after %d chunks, want the agent timeout after some", err, len(chunks))
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

// Delay is a rate, not a pause after each emit: chunk k is due k delays after the
// start, so a reader that held the first chunk for three delays gets the next two at
// once (they were due), and the third on time. A slow query keeps its pause before
// each chunk (FIX-3), whatever the reader did.
func TestFixtureDelayIsARate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const delay = 10 * time.Millisecond
		for _, tc := range []struct {
			query string
			d     time.Duration
			want  []time.Duration // when each chunk came, from the start
		}{
			{"0123456789", delay, []time.Duration{delay, 4 * delay, 4 * delay, 4 * delay}},
			{agent.SlowPrefix + "0123", 0, []time.Duration{agent.SlowDelay, 3*delay + 2*agent.SlowDelay, 3*delay + 3*agent.SlowDelay}},
		} {
			start := time.Now()
			var got []time.Duration
			err := agent.Fixture{Delay: tc.d, ChunkRunes: 4}.Stream(context.Background(), agent.Request{Query: tc.query}, func(string) error {
				got = append(got, time.Since(start))
				if len(got) == 1 {
					time.Sleep(3 * delay) // the reader holds the first chunk
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%q: when the chunks came (-want +got):\n%s", tc.query, diff)
			}
		}
	})
}

// One agent serves many queries at once: its client is made once, without a race
// (go test -race), and every answer arrives whole.
func TestOpenAIConcurrent(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sse(w, delta("Par"), delta("is"), finish, "[DONE]")
	}))
	defer ts.Close()
	a := &agent.OpenAI{URL: ts.URL, Model: "m"}
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			var answer strings.Builder
			err := a.Stream(context.Background(), agent.Request{Query: "q"}, func(c string) error {
				answer.WriteString(c)
				return nil
			})
			if err == nil && answer.String() != "Paris" {
				err = fmt.Errorf("answer %q, want Paris", answer.String())
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// Check asks the upstream for its models with the key: it passes when they are
// served, and fails, with a public text that leaks nothing, when the upstream refuses
// (a wrong key), cannot be reached, or does not answer within the connect timeout.
func TestOpenAICheck(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusOK)
	hang := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path != "/v1/models":
			http.NotFound(w, r)
		case r.Header.Get("Authorization") != "Bearer secret":
			http.Error(w, `{"error":{"message":"Incorrect API key provided"}}`, http.StatusUnauthorized)
		case status.Load() == 0:
			select {
			case <-hang:
			case <-r.Context().Done():
			}
		default:
			w.WriteHeader(int(status.Load()))
			w.Write([]byte(`{"object":"list","data":[{"id":"m1","object":"model"}]}`))
		}
	}))
	defer ts.Close()
	defer close(hang)
	a := &agent.OpenAI{URL: ts.URL + "/v1", Model: "m1", APIKey: "secret", ConnectTimeout: 200 * time.Millisecond}
	if err := a.Check(context.Background()); err != nil {
		t.Fatalf("a serving upstream: %v", err)
	}
	for _, tt := range []struct {
		name   string
		edit   func()
		public string
	}{
		{"a wrong key", func() { a.APIKey = "wrong" }, "the model upstream refused the request (HTTP 401)"},
		{"a server error", func() { a.APIKey = "secret"; status.Store(http.StatusBadGateway) }, "the model upstream refused the request (HTTP 502)"},
		{"no answer", func() { status.Store(0) }, "the model upstream did not answer in time"},
		{"unreachable", func() { a = &agent.OpenAI{URL: "http://127.0.0.1:1/v1", Model: "m1"} }, "the model upstream could not be reached"},
	} {
		tt.edit()
		err := a.Check(context.Background())
		if err == nil || agent.Public(err) != tt.public {
			t.Errorf("%s: got %v (public %q), want %q", tt.name, err, agent.Public(err), tt.public)
		}
	}
}
