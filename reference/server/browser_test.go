package server_test

import (
	"context"

	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agentws/agentws/reference/agent"
	"github.com/agentws/agentws/reference/server"
)

// requireBrowser is set by `make test`, which installs Chromium (tools/browser.sh):
// there the browser tests must run, not skip.
const requireBrowser = "AGENTWS_REQUIRE_BROWSER"

// chromium returns the path of a Chromium, or skips the test (fails it where the
// browser is required).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv(requireBrowser) != "" {
		t.Fatalf("no Chromium on the PATH, and %s is set (make test installs it with tools/browser.sh)", requireBrowser)
	}
	t.Skip("no Chromium on the PATH; run `make test`, or tools/browser.sh, to run the browser tests")
	return ""
}

// browser returns a context of a new headless Chromium tab, closed when the test ends.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, // as root, Chromium runs only without its sandbox
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return ctx
}

// waitJS polls a JavaScript condition in the page until it holds, failing the test
// after a bound generous for a loaded machine.
func waitJS(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(wctx, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
		state, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("state")))
		outcome, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("outcome")))
		t.Fatalf("%s: %v (state %q, outcome %q)", what, err, state, outcome)
	}
}

// The console, in a real Chromium, on the project's JavaScript client: it connects,
// streams an answer, survives a drop the server makes in the middle of it (the client
// reconnects and resumes), and shows the whole answer once.
func TestConsoleInBrowser(t *testing.T) {
	ctx := browser(t)
	s := start(t, func(c *server.Config) { c.Agent = agent.Fixture{} })
	sid := newSession(t)
	query := "__slow__ Hello from a real browser, across a drop of the connection"
	if err := chromedp.Do(ctx,
		chromedp.Navigate(s.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("connect")),
		chromedp.SetValue(chromedp.ID("session"), sid),
		chromedp.Click(chromedp.ID("connect")),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the console connects", `document.getElementById("state").textContent === "open"`)
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("query"), query),
		chromedp.Click(chromedp.ID("ask")),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the first chunk shows", `document.getElementById("answer").textContent.length > 0`)
	if !s.DropConnection(sid) {
		t.Fatal("the session has no connection to drop")
	}
	waitJS(t, ctx, "the answer completes", `document.getElementById("outcome").dataset.state !== "streaming"`)
	text := func(id string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(id)))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	answer, outcome, resume := text("answer"), text("outcome"), text("resume")
	connected, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#frames tr.in[data-type="connected"]').length`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "Echo: " + query; answer != want {
		t.Errorf("the page shows %q, want %q", answer, want)
	}
	if connected != 2 {
		t.Errorf("%d connected frames, want 2: the drop and one reconnection", connected)
	}
	if want := "resumed true"; !strings.Contains(resume, want) {
		t.Errorf("after the reconnection the page says %q, want %q", resume, want)
	}
	if !strings.Contains(outcome, "complete:") {
		t.Errorf("outcome %q, want complete", outcome)
	}
	t.Logf("%s; %s", outcome, resume)
}

// With Console off neither the page nor the client is served.
func TestConsoleOff(t *testing.T) {
	for _, on := range []bool{true, false} {
		s := start(t, func(c *server.Config) { c.Console = on })
		for _, path := range []string{"/", "/agentws.js"} {
			code, body := get(t, s.URL+path)
			if on && (code != 200 || len(body) < 100) || !on && code != 404 {
				t.Errorf("console %v: GET %s: %d (%d bytes)", on, path, code, len(body))
			}
		}
	}
}

// The console's other controls, in a real Chromium, against a server with
// authentication: it connects with a token, shows health, drops its own connection
// (the client reconnects and resumes), and cancels a streaming answer.
func TestConsoleControls(t *testing.T) {
	ctx := browser(t)
	s := start(t, func(c *server.Config) {
		c.Auth = &server.Auth{Secret: secret, Issuer: "agentws-tests", Audience: "agentws"}
	})
	if err := chromedp.Do(ctx,
		chromedp.Navigate(s.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("connect")),
		chromedp.SetValue(chromedp.ID("session"), newSession(t)),
		chromedp.SetValue(chromedp.ID("token"), token(t, secret, valid("console-user"))),
		chromedp.Click(chromedp.ID("connect")),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the console connects with the token", `document.getElementById("state").textContent === "open"`)
	waitJS(t, ctx, "health shows", `JSON.parse(document.getElementById("health").textContent).status === "healthy"`)

	// An answer first, so that the reconnection has frames to resume from.
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("query"), "hello"), chromedp.Click(chromedp.ID("ask"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the first answer completes", `document.getElementById("outcome").dataset.state === "complete"`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("drop"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the client reconnects and resumes", `document.querySelectorAll('#frames tr.in[data-type="connected"]').length === 2 && document.getElementById("state").textContent === "open" && document.getElementById("resume").textContent.includes("resumed true")`)

	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("query"), "__slow__ an answer long enough to be cancelled in the middle of it"),
		chromedp.Click(chromedp.ID("ask")),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the answer streams", `document.getElementById("answer").textContent.length > 0`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("cancel"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the query ends", `document.getElementById("outcome").dataset.state !== "streaming"`)
	if outcome, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("outcome"))); err != nil || !strings.HasPrefix(outcome, "error cancelled:") {
		t.Errorf("after cancel the page says %q (%v), want error cancelled", outcome, err)
	}
	if sent, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#frames tr.out[data-type="cancel"]').length`)); err != nil || sent != 1 {
		t.Errorf("%d cancel frames sent (%v), want 1", sent, err)
	}
}
