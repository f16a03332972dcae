package conformance

// The admin command: requests to the server's admin API (extension notice, section
// 12.7 of spec/PROTOCOL.md).

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/agentws/agentws/schemas"
)

// maxAdminBody bounds what the harness reads of an admin answer: a page of 1000
// sessions (ADMIN-3) takes well under it.
const maxAdminBody = 4 << 20

func cmdAdmin(ts *testscript.TestScript, st *caseState, args []string) {
	status, within, auth := http.StatusOK, st.opts.FrameTimeout, ""
	var wait time.Duration
	var body *string
	args = parse(ts, "admin", args, 2, 3, func(fs *flag.FlagSet) {
		fs.IntVar(&status, "status", status, "")
		fs.DurationVar(&within, "within", within, "")
		fs.DurationVar(&wait, "wait", 0, "")
		fs.StringVar(&auth, "auth", "", "")
		fs.Func("body", "", func(s string) error { body = &s; return nil })
	})
	if !strings.HasPrefix(expand(ts, args[1]), "/admin/") || wait < 0 || wait > time.Minute {
		usage(ts, "admin")
	}
	if st.opts.AdminURL == "" || st.opts.AdminToken == "" {
		ts.Fatalf("admin: the run has no admin API: give -admin-url and -admin-token, and the case the setting admin")
	}
	// With -wait, the request is repeated until it is answered as wanted: the state it
	// asks of (a session detached after a drop) may take the server a moment.
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(adminPoll)
	defer tick.Stop()
	for {
		failure, captured := adminRequest(ts, st, args, status, within, auth, body)
		if failure == "" {
			for k, v := range captured {
				ts.Setenv(k, v)
			}
			return
		}
		if !time.Now().Before(deadline) {
			if wait > 0 {
				failure += fmt.Sprintf(" (for %v)", wait)
			}
			ts.Fatalf("%s", failure)
		}
		select {
		case <-tick.C:
		case <-st.ctx.Done():
			ts.Fatalf("%s: %v", failure, context.Cause(st.ctx))
		}
	}
}

// adminPoll is how often admin -wait repeats its request.
const adminPoll = 20 * time.Millisecond

// adminRequest makes one request of the admin command and says how its answer is not
// what was wanted ("" when it is), with the captures of its pattern.
func adminRequest(ts *testscript.TestScript, st *caseState, args []string, status int, within time.Duration, auth string, body *string) (string, map[string]string) {
	method, path := args[0], expand(ts, args[1])
	what := method + " " + path
	ctx, cancel := context.WithTimeout(st.ctx, within)
	defer cancel()
	var content io.Reader
	if body != nil {
		content = strings.NewReader(expand(ts, *body))
	}
	req, err := http.NewRequestWithContext(ctx, method, st.opts.AdminURL+path, content)
	if err != nil {
		usage(ts, "admin")
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token := adminCredential(ts, st, auth); token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Sprintf("admin %s: %v (the answer must come within %v)", what, err, within), nil
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminBody))
	if err != nil {
		return fmt.Sprintf("admin %s: the body did not come within %v: %v", what, within, err), nil
	}
	st.wire.note("admin", fmt.Sprintf("%s (auth %s): %s %s", what, authName(auth), resp.Status, truncate(string(data), 500)))
	if resp.StatusCode != status {
		return fmt.Sprintf("admin %s: %s, want %d: %s", what, resp.Status, status, truncate(string(data), 300)), nil
	}
	schema, rule := adminSchema(method, path, resp.StatusCode)
	if schema != "" {
		if err := st.v.Validate(schema, data); err != nil {
			st.finding(rule, "admin %s: the %d answer breaks %s: %v: %s", what, resp.StatusCode, schema.File(), err, truncate(string(data), 300))
		}
	}
	captured := map[string]string{}
	if len(args) < 3 {
		return "", captured
	}
	var got any
	if err := json.Unmarshal(data, &got); err != nil {
		return fmt.Sprintf("admin %s: the body is not JSON: %q", what, truncate(string(data), 300)), nil
	}
	if d := match(pattern(ts, args[2]), got, "", captured); d != "" {
		return fmt.Sprintf("admin %s: %s\nbody: %s", what, d, truncate(string(data), 500)), nil
	}
	return "", captured
}

// adminCredential returns the bearer token of an admin request: the admin token,
// none (-auth none), a wrong one (-auth wrong), or the run's client token (-auth
// client, which is not an admin credential: ADMIN-1).
func adminCredential(ts *testscript.TestScript, st *caseState, auth string) string {
	switch auth {
	case "":
		return st.opts.AdminToken
	case "none":
		return ""
	case "wrong":
		return "not-the-admin-token-" + st.opts.AdminToken
	case "client":
		if st.opts.Token == "" {
			ts.Fatalf("admin -auth client: the run has no client token: give -token, and the case the setting token")
		}
		return st.opts.Token
	}
	usage(ts, "admin")
	return ""
}

func authName(auth string) string {
	if auth == "" {
		return "admin token"
	}
	return auth
}

// adminSchema returns the schema of an admin answer of status to method on path (the
// path of the request, its query included), and the rule that promises it; "" for an
// answer without a body (204) or of a path the spec does not define.
func adminSchema(method, path string, status int) (schemas.Schema, string) {
	path, _, _ = strings.Cut(path, "?")
	var rule string
	one := strings.HasPrefix(path, "/admin/sessions/") && len(path) > len("/admin/sessions/")
	switch {
	case method == http.MethodPost && path == "/admin/broadcast":
		rule = "ADMIN-2"
	case method == http.MethodGet && (path == "/admin/sessions" || one):
		rule = "ADMIN-3"
	case method == http.MethodDelete && one:
		rule = "ADMIN-4"
	default:
		return "", ""
	}
	switch {
	case status == http.StatusUnauthorized:
		return schemas.HTTPError, "ADMIN-1"
	case status >= 400:
		return schemas.HTTPError, rule
	case status == http.StatusNoContent:
		return "", ""
	case rule == "ADMIN-2":
		return schemas.BroadcastResult, rule
	case rule == "ADMIN-3" && one:
		return schemas.SessionInfo, rule
	case rule == "ADMIN-3":
		return schemas.SessionList, rule
	}
	return "", ""
}
