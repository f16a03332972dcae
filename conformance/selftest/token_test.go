package selftest_test

import (
	"testing"
	"time"

	"github.com/agentws/agentws/conformance"
	"github.com/agentws/agentws/conformance/internal/reftest"
	"github.com/agentws/agentws/reference/server"
)

// With -token, a server with authentication on passes the whole catalogue: every
// case's connections and HTTP requests carry the token. Only the cases that need a
// server of their own (shutdown, session limit) or name their users with user_id
// (anonymous) are skipped, each saying why.
func TestTokenAuthenticatesEveryCase(t *testing.T) {
	secret := []byte("the token test's secret")
	url, _ := reftest.Start(t, func(cfg *server.Config) { cfg.Auth = &server.Auth{Secret: secret} })
	opts := reftest.Options(url)
	opts.Token = reftest.Sign(t, secret, time.Hour)
	opts.ExpiredToken = reftest.Sign(t, secret, -time.Hour)
	rep, err := conformance.Run(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Totals.Fail != 0 || rep.Totals.Warn != 0 {
		t.Errorf("%s against a server with authentication on:\n%s", rep.Tally(), failures(rep))
	}
	for _, c := range rep.Cases {
		if c.Verdict == conformance.Skip {
			t.Logf("skipped %s: %s", c.Name, c.Reason)
		}
	}
	for _, name := range []string{"auth_required", "auth_subject", "auth_expired", "stream_echo", "health_body", "hs_origin"} {
		for _, c := range rep.Cases {
			if c.Name == name && c.Verdict != conformance.Pass {
				t.Errorf("%s: %s, want pass", name, c.Verdict)
			}
		}
	}
}
