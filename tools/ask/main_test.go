package main

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/agentws/agentws/reference/client"
	"github.com/agentws/agentws/reference/server"
	"github.com/agentws/agentws/schemas"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"ask": main,
	})
}

// TestScripts runs the command-line behaviours in testdata/script against the
// reference server, in-process on its defaults, at $URL.
func TestScripts(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.Console = false
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
	})
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(e *testscript.Env) error {
			e.Setenv("URL", "ws"+strings.TrimPrefix(ts.URL, "http")+"/ws")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"status":      cmdStatus,
			"validframes": cmdValidFrames,
		},
	})
}

// status N PROG ARGS... runs PROG like exec and checks that it exits with status N.
func cmdStatus(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: status N PROG [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("usage: status N PROG [ARGS...]: N is %q", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		got = exit.ExitCode()
	case err != nil:
		ts.Fatalf("%s: %v", args[1], err)
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}

// validframes FILE PATTERN checks that FILE is NDJSON of valid server messages, and
// that their types, joined by spaces, match the regular expression PATTERN.
func cmdValidFrames(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: validframes FILE PATTERN")
	}
	pattern, err := regexp.Compile("^(?:" + args[1] + ")$")
	if err != nil {
		ts.Fatalf("usage: validframes FILE PATTERN: %v", err)
	}
	v, err := schemas.NewValidator(schemas.Options{})
	if err != nil {
		ts.Fatalf("%v", err)
	}
	var types []string
	for n, line := range strings.Split(strings.TrimSuffix(ts.ReadFile(args[0]), "\n"), "\n") {
		if err := v.ValidateMessage(schemas.Server, []byte(line)); err != nil {
			ts.Fatalf("%s:%d: %v", args[0], n+1, err)
		}
		var f struct{ Type string }
		json.Unmarshal([]byte(line), &f)
		types = append(types, f.Type)
	}
	if got := strings.Join(types, " "); !pattern.MatchString(got) {
		ts.Fatalf("frames of %s: %s, want %s", args[0], got, args[1])
	}
}

// The exit status of each client code that is not a server's error frame.
func TestStatusOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{&client.Error{Code: client.CodeReplaced}, exitReplaced},
		{&client.Error{Code: client.CodeEnded}, exitReplaced},
		{&client.Error{Code: client.CodeSessionEnded}, exitIncomplete},
		{&client.Error{Code: client.CodeGap}, exitIncomplete},
		{&client.Error{Code: client.CodeCancelled}, exitCancelled},
		{&client.Error{Code: client.CodeRefused}, exitUsage},
		{&client.Error{Code: "query_failed", Frame: json.RawMessage(`{}`)}, exitServer},
		{errors.New("other"), exitIncomplete},
	} {
		if got := statusOf(tc.err); got != tc.want {
			t.Errorf("statusOf(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}
