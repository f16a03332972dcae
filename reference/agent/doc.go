// Package agent defines what the reference server asks of an AI agent, and two agents:
// the fixture agent of spec/PROTOCOL.md section 13 (deterministic, the default), and
// an adapter for OpenAI-compatible streaming chat-completions endpoints (Ollama, vLLM,
// llama.cpp's server, hosted models).
package agent

import "context"

// Request is what one query asks of an agent.
type Request struct {
	SessionID      string
	QueryID        string
	Query          string
	SystemPrompt   string
	IncludeContext bool
}

// An Agent answers queries, streaming each answer piece by piece.
type Agent interface {
	// Stream answers req, calling emit with each piece of the answer, in order. It
	// returns nil when the answer is complete, and an error when the agent failed, when
	// emit failed, or when ctx was cancelled (then ctx's error).
	Stream(ctx context.Context, req Request, emit func(chunk string) error) error
}

// A Checker is an agent that can tell, without answering a query, whether it could
// answer one: the reference server's upstream check, which /readyz reports, asks it.
// Check returns nil, or why not, as Stream would fail (see Public).
type Checker interface {
	Check(ctx context.Context) error
}
