package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// OpenAI streams answers from an OpenAI-compatible chat-completions endpoint
// (POST {URL}/chat/completions with "stream": true), reading its server-sent events.
type OpenAI struct {
	URL    string // the API base, such as http://localhost:11434/v1
	Model  string
	APIKey string // sent as a bearer token when set
	Client *http.Client
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
	msgs := []chatMessage{}
	if req.SystemPrompt != "" {
		msgs = append(msgs, chatMessage{Role: "system", Content: req.SystemPrompt})
	}
	msgs = append(msgs, chatMessage{Role: "user", Content: req.Query})
	body, err := json.Marshal(chatRequest{Model: o.Model, Stream: true, Messages: msgs})
	if err != nil {
		return err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(o.URL, "/")+"/chat/completions", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("bad agent URL: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "text/event-stream")
	if o.APIKey != "" {
		hreq.Header.Set("Authorization", "Bearer "+o.APIKey)
	}
	client := o.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("upstream request failed: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("upstream answered %s: %s", resp.Status, strings.TrimSpace(string(snippet)))
	}
	return readEvents(ctx, resp.Body, emit)
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
			return fmt.Errorf("upstream sent an event that is not JSON: %w", err)
		}
		if chunk.Error != nil {
			return fmt.Errorf("upstream error: %s", chunk.Error.Message)
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
		return fmt.Errorf("reading the upstream stream: %w", err)
	}
	if !finished {
		return errors.New("the upstream stream ended before the answer finished")
	}
	return nil
}
