package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// OpenAI streams answers from an OpenAI-compatible chat-completions endpoint
// (POST {URL}/chat/completions with "stream": true), reading its server-sent events.
//
// Every wait on the upstream is bounded: connecting, the first token, the gap between
// tokens, and the whole answer. A request that fails before its first token (no
// connection, a status of 5xx or 429, no first token in time) is tried again, with
// backoff, up to Retries times; after a token, never, since the answer has begun. Its
// errors are PublicErrors: the public text says what went wrong without the upstream's
// address or its own error text, which only the log gets.
type OpenAI struct {
	URL    string // the API base, such as http://localhost:11434/v1
	Model  string
	APIKey string       // sent as a bearer token when set
	Client *http.Client // nil: one with ConnectTimeout

	ConnectTimeout    time.Duration // connecting and the response's headers; 0: DefaultConnectTimeout
	FirstTokenTimeout time.Duration // from the request to the first token; 0: DefaultFirstTokenTimeout
	TokenTimeout      time.Duration // between two tokens; 0: DefaultTokenTimeout
	Timeout           time.Duration // the whole answer; 0: DefaultTimeout
	Retries           int           // tries after the first, before any token; 0: none (agentws-server's -agent-retries defaults to DefaultRetries)
	RetryBackoff      time.Duration // the wait before the first retry, doubled each time, with jitter; 0: DefaultRetryBackoff

	// Observe, when set, is told of each request to the upstream as it ends: its
	// outcome (ok, refused, unreachable, timeout, failed, cancelled) and how long it took.
	Observe func(outcome string, took time.Duration)

	once    sync.Once
	bounded *http.Client // the client made when Client is nil
}

// The defaults of OpenAI's bounds.
const (
	DefaultConnectTimeout    = 10 * time.Second
	DefaultFirstTokenTimeout = 60 * time.Second
	DefaultTokenTimeout      = 30 * time.Second
	DefaultTimeout           = 10 * time.Minute
	DefaultRetries           = 2
	DefaultRetryBackoff      = 250 * time.Millisecond
)

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// maxEventBytes bounds one server-sent event line.
const maxEventBytes = 1 << 20

type chatRequest struct {
	Model    string        `json:"model"`
	Stream   bool          `json:"stream"`
	Messages []chatMessage `json:"messages"`
}

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatChunk struct {
	Choices []struct {
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Error *struct {
		Message string `json:"message"`
		Type    string `json:"type"`
	} `json:"error"`
}

// Stream implements Agent. Cancelling ctx aborts the upstream request.
func (o *OpenAI) Stream(ctx context.Context, req Request, emit func(string) error) error {
	ctx, cancel := context.WithTimeoutCause(ctx, or(o.Timeout, DefaultTimeout), errTimeout)
	defer cancel()
	backoff := or(o.RetryBackoff, DefaultRetryBackoff)
	for try := 0; ; try++ {
		started, err := o.try(ctx, req, emit)
		if err == nil || started || try >= o.Retries || !retryable(err) || ctx.Err() != nil {
			return err
		}
		wait := backoff<<try + rand.N(backoff<<try/2+1)
		select {
		case <-ctx.Done():
			return o.cause(ctx, err)
		case <-time.After(wait):
		}
	}
}

// Why a try failed, for retryable and the public texts.
var (
	errTimeout    = errors.New("the answer took longer than the agent timeout")
	errFirstToken = errors.New("no first token within the first-token timeout")
	errIdle       = errors.New("no token within the token timeout")
)

// try makes one request, and reports whether it emitted a token.
func (o *OpenAI) try(parent context.Context, req Request, emit func(string) error) (started bool, err error) {
	if o.Observe != nil {
		t0 := time.Now()
		defer func() { o.Observe(outcome(err), time.Since(t0)) }()
	}
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	watchdog := time.AfterFunc(or(o.FirstTokenTimeout, DefaultFirstTokenTimeout), func() { cancel(errFirstToken) })
	defer func() { watchdog.Stop() }()
	hreq, err := o.request(ctx, req)
	if err != nil {
		return false, err
	}
	resp, err := o.client().Do(hreq)
	if err != nil {
		return false, o.cause(ctx, sendFailure(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, refusedBy(resp, hreq)
	}
	tokens := or(o.TokenTimeout, DefaultTokenTimeout)
	err = readEvents(ctx, resp.Body, func(content string) error {
		started = true
		if !watchdog.Stop() { // it fired: the context is cancelled
			return context.Cause(ctx)
		}
		err := emit(content)
		watchdog = time.AfterFunc(tokens, func() { cancel(errIdle) })
		return err
	})
	return started, o.cause(ctx, err)
}

func (o *OpenAI) request(ctx context.Context, req Request) (*http.Request, error) {
	msgs := []chatMessage{}
	if req.SystemPrompt != "" {
		msgs = append(msgs, chatMessage{Role: "system", Content: req.SystemPrompt})
	}
	msgs = append(msgs, chatMessage{Role: "user", Content: req.Query})
	body, err := json.Marshal(chatRequest{Model: o.Model, Stream: true, Messages: msgs})
	if err != nil {
		return nil, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(o.URL, "/")+"/chat/completions", bytes.NewReader(body))
	if err != nil {
		return nil, &failure{kind: kindMisconfigured, public: "the agent is misconfigured", detail: err}
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "text/event-stream")
	if o.APIKey != "" {
		hreq.Header.Set("Authorization", "Bearer "+o.APIKey)
	}
	return hreq, nil
}

// Check asks the upstream for its models (GET URL/models), bounded by the connect
// timeout: it fails when the upstream cannot be reached or refuses the request (a
// wrong key, a wrong URL), the way a query would fail before its first token.
func (o *OpenAI) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, or(o.ConnectTimeout, DefaultConnectTimeout))
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(o.URL, "/")+"/models", nil)
	if err != nil {
		return &failure{kind: kindMisconfigured, public: "the agent is misconfigured", detail: err}
	}
	if o.APIKey != "" {
		hreq.Header.Set("Authorization", "Bearer "+o.APIKey)
	}
	resp, err := o.client().Do(hreq)
	if err != nil {
		return sendFailure(err) // a timeout too when ctx's deadline ended it
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return refusedBy(resp, hreq)
	}
	return nil
}

// sendFailure is why a request got no response: none within the connect timeout (no
// response headers, or the caller's deadline), or no connection at all.
func sendFailure(err error) *failure {
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		return &failure{kind: kindTimeout, public: "the model upstream did not answer in time", detail: err}
	}
	return &failure{kind: kindUnreachable, public: "the model upstream could not be reached", detail: err}
}

// refusedBy is the failure of a request the upstream answered with an error status:
// the client learns the status, the log the upstream's words too.
func refusedBy(resp *http.Response, req *http.Request) *failure {
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return &failure{kind: kindRefused, status: resp.StatusCode, public: fmt.Sprintf("the model upstream refused the request (HTTP %d)", resp.StatusCode),
		detail: fmt.Errorf("%s from %s: %s", resp.Status, req.URL.Redacted(), strings.TrimSpace(string(snippet)))}
}

// client returns the HTTP client: o.Client, or one made once, on first use, whose
// connection and response headers are bounded by the connect timeout.
func (o *OpenAI) client() *http.Client {
	if o.Client != nil {
		return o.Client
	}
	o.once.Do(func() {
		connect := or(o.ConnectTimeout, DefaultConnectTimeout)
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.DialContext = (&net.Dialer{Timeout: connect}).DialContext
		t.TLSHandshakeTimeout, t.ResponseHeaderTimeout = connect, connect
		o.bounded = &http.Client{Transport: t}
	})
	return o.bounded
}

// cause turns an error of a try whose context ended into what ended it: the caller's
// cancel (returned as is, so the server sees its own cause), or a timeout.
func (o *OpenAI) cause(ctx context.Context, err error) error {
	switch cause := context.Cause(ctx); {
	case cause == nil || err == nil:
		return err
	case errors.Is(cause, errFirstToken), errors.Is(cause, errIdle), errors.Is(cause, errTimeout):
		return &failure{kind: kindTimeout, public: "the model upstream did not answer in time", detail: cause}
	default:
		return cause
	}
}

// outcome names how a request ended, for Observe: ok, cancelled (the caller's
// context), or the failure's kind.
func outcome(err error) string {
	var f *failure
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &f):
		return f.kind
	}
	return "cancelled"
}

// retryable reports whether a failure before the first token may be tried again: any
// but a refusal whose status does not say try later, and a misconfiguration.
func retryable(err error) bool {
	var f *failure
	if !errors.As(err, &f) {
		return false
	}
	switch f.kind {
	case kindRefused:
		return f.status >= 500 || f.status == http.StatusTooManyRequests
	case kindMisconfigured:
		return false
	}
	return true
}

// readEvents reads the "data:" lines of a server-sent event stream until "[DONE]".
func readEvents(ctx context.Context, r io.Reader, emit func(string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxEventBytes)
	finished := false
	for sc.Scan() {
		line := sc.Bytes()
		data, ok := bytes.CutPrefix(line, []byte("data:"))
		if !ok {
			continue // comments (":"), event names, ids and blank separators
		}
		data = bytes.TrimSpace(data)
		if string(data) == "[DONE]" {
			return nil
		}
		var chunk chatChunk
		if err := json.Unmarshal(data, &chunk); err != nil {
			return &failure{kind: "failed", public: "the model upstream sent a malformed answer", detail: fmt.Errorf("an event that is not JSON: %w", err)}
		}
		if chunk.Error != nil {
			return &failure{kind: "failed", public: "the model upstream reported an error", detail: errors.New(chunk.Error.Message)}
		}
		for _, c := range chunk.Choices {
			if c.Delta.Content != "" {
				if err := emit(c.Delta.Content); err != nil {
					return err
				}
			}
			finished = finished || c.FinishReason != nil
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := sc.Err(); err != nil {
		return &failure{kind: "failed", public: "the model upstream's answer broke off", detail: err}
	}
	if !finished {
		return &failure{kind: "failed", public: "the model upstream's answer broke off", detail: errors.New("the stream ended before the answer finished")}
	}
	return nil
}
