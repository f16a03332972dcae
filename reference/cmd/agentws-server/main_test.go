package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentws/agentws/reference/agent"
	"github.com/agentws/agentws/reference/server"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestDefaults(t *testing.T) {
	o, err := parse(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	def := server.DefaultConfig()
	if o.addr != "localhost:8050" || o.cfg.BufferSize != def.BufferSize || o.cfg.SessionTTL != 5*time.Minute || o.cfg.KeepaliveInterval != 30*time.Second ||
		o.cfg.MaxMessageBytes != 1<<20 || o.cfg.QueueDepth != 16 || o.cfg.BufferBytes != 1<<20 || o.cfg.DrainTimeout != 30*time.Second {
		t.Errorf("defaults %+v", o)
	}
	if _, ok := o.cfg.Agent.(agent.Fixture); !ok {
		t.Errorf("default agent %T, want the fixture", o.cfg.Agent)
	}
}

// Every flag has an environment twin; the command line wins over it.
func TestEnvironmentTwins(t *testing.T) {
	o, err := parse([]string{"-queue-depth", "3"}, env(map[string]string{
		"AGENTWS_ADDR":              "127.0.0.1:9999",
		"AGENTWS_SESSION_TTL":       "90s",
		"AGENTWS_QUEUE_DEPTH":       "7",
		"AGENTWS_ALLOWED_ORIGINS":   "localhost:3000, *.example.com",
		"AGENTWS_FIXTURE_DELAY":     "20ms",
		"AGENTWS_MAX_MESSAGE_BYTES": "65536",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.addr != "127.0.0.1:9999" || o.cfg.SessionTTL != 90*time.Second || o.cfg.QueueDepth != 3 || o.cfg.MaxMessageBytes != 65536 {
		t.Errorf("got %+v", o)
	}
	if strings.Join(o.cfg.AllowedOrigins, "|") != "localhost:3000|*.example.com" {
		t.Errorf("origins %q", o.cfg.AllowedOrigins)
	}
	if f := o.cfg.Agent.(agent.Fixture); f.Delay != 20*time.Millisecond {
		t.Errorf("fixture delay %v", f.Delay)
	}
}

func TestBadSettings(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, map[string]string{"AGENTWS_SESSION_TTL": "soon"}, `AGENTWS_SESSION_TTL="soon": parse error`},
		{[]string{"-buffer-size", "lots"}, nil, `invalid value "lots" for flag -buffer-size`},
		{[]string{"-agent", "magic"}, nil, `-agent: unknown agent "magic"`},
		{[]string{"-agent", "openai"}, nil, "-agent openai needs -agent-url and -agent-model"},
		{[]string{"stray"}, nil, `unexpected argument "stray"`},
	}
	for _, tt := range tests {
		_, err := parse(tt.args, env(tt.env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v %v: got %v, want %q", tt.args, tt.env, err, tt.want)
		}
	}
	err := run(context.Background(), []string{"-queue-depth", "0", "-addr", "127.0.0.1:0"}, env(nil), io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "query queue depth must be at least 1") {
		t.Errorf("queue depth 0: got %v", err)
	}
	err = run(context.Background(), []string{"-log-level", "loud", "-addr", "127.0.0.1:0"}, env(nil), io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "-log-level") {
		t.Errorf("bad log level: got %v", err)
	}
}

func TestOpenAIKeyFromEnvironment(t *testing.T) {
	o, err := parse([]string{"-agent", "openai", "-agent-url", "http://localhost:11434/v1", "-agent-model", "m"},
		env(map[string]string{"OPENAI_API_KEY": "k1"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if a := o.cfg.Agent.(*agent.OpenAI); a.APIKey != "k1" || a.Model != "m" {
		t.Errorf("agent %+v", a)
	}
}

// The command serves the protocol, logs its URL, and drains when told to stop.
func TestRunServesAndDrains(t *testing.T) {
	ctx, stop := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	var logs bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-log-format", "json"}, env(nil), &logs, ready)
	}()
	addr := <-ready
	resp, err := http.Get("http://" + addr + "/ws/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("health: %s", resp.Status)
	}
	dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(dctx, "ws://"+addr+"/ws?session_id=cmd-test", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, data, err := ws.Read(dctx); err != nil || !strings.Contains(string(data), `"type":"connected"`) {
		t.Fatalf("first frame %s, %v", data, err)
	}
	stop()
	_, _, err = ws.Read(dctx)
	if websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("the client ended with %v, want close 1001", err)
	}
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
	if !strings.Contains(logs.String(), `"url":"ws://`+addr+`/ws"`) || !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Errorf("logs:\n%s", logs.String())
	}
}

// Authentication is on with AUTH_SECRET in the environment (never a flag), or with a
// public key file; a file without a key is an error naming the flag.
func TestAuthSettings(t *testing.T) {
	o, err := parse([]string{"-auth-issuer", "me"}, env(map[string]string{"AGENTWS_AUTH_SECRET": "s3cret"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.cfg.Auth == nil || string(o.cfg.Auth.Secret) != "s3cret" || o.cfg.Auth.Issuer != "me" {
		t.Errorf("auth %+v", o.cfg.Auth)
	}
	if o, _ := parse(nil, env(nil), io.Discard); o.cfg.Auth != nil {
		t.Error("authentication is on without a secret or a key")
	}
	bad := filepath.Join(t.TempDir(), "key.pem")
	os.WriteFile(bad, []byte("not a key"), 0o600)
	if _, err := parse([]string{"-auth-public-key", bad}, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "-auth-public-key") {
		t.Errorf("a file without a key: %v", err)
	}
}
