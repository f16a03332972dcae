package server_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/agentws/agentws/reference/server"
	"github.com/agentws/agentws/schemas/httpapi"
)

var secret = []byte("a secret for the tests")

func token(t *testing.T, key []byte, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func valid(sub string) jwt.MapClaims {
	return jwt.MapClaims{"sub": sub, "exp": time.Now().Add(time.Hour).Unix(), "iss": "agentws-tests", "aud": "agentws"}
}

// AUTH-1 to AUTH-3: a valid bearer token, in the header or the access_token parameter,
// admits; anything else is refused with 401; the session's user is the token's subject.
func TestAuth(t *testing.T) {
	s := start(t, func(c *server.Config) {
		c.Auth = &server.Auth{Secret: secret, Issuer: "agentws-tests", Audience: "agentws"}
	})
	alice := token(t, secret, valid("alice"))
	sid := newSession(t)

	_, hello := s.connect(t, "session_id="+sid+"&access_token="+alice)
	if !slices.Contains(hello["capabilities"].([]any), any("auth")) {
		t.Errorf("capabilities %v: want auth", hello["capabilities"])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, s.wsURL("session_id="+sid+"&user_id=alice"), &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + alice}},
	})
	if err != nil {
		t.Fatalf("the Authorization header: %v", err)
	}
	ws.CloseNow()

	expired := valid("alice")
	expired["exp"] = time.Now().Add(-time.Hour).Unix()
	noExp := valid("alice")
	delete(noExp, "exp")
	otherIssuer := valid("alice")
	otherIssuer["iss"] = "someone"
	otherAudience := valid("alice")
	otherAudience["aud"] = "another-service"
	for name, q := range map[string]string{
		"no token":       "session_id=" + newSession(t),
		"not a JWT":      "session_id=" + newSession(t) + "&access_token=not-a-jwt",
		"wrong key":      "session_id=" + newSession(t) + "&access_token=" + token(t, []byte("another secret"), valid("alice")),
		"expired":        "session_id=" + newSession(t) + "&access_token=" + token(t, secret, expired),
		"no exp":         "session_id=" + newSession(t) + "&access_token=" + token(t, secret, noExp),
		"other issuer":   "session_id=" + newSession(t) + "&access_token=" + token(t, secret, otherIssuer),
		"other audience": "session_id=" + newSession(t) + "&access_token=" + token(t, secret, otherAudience),
		"no subject":     "session_id=" + newSession(t) + "&access_token=" + token(t, secret, jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix(), "iss": "agentws-tests", "aud": "agentws"}),
	} {
		if status, he := s.refused(t, q, nil); status != http.StatusUnauthorized || he.Code != httpapi.HTTPErrorCodeUnauthorized {
			t.Errorf("%s: got %d %s, want 401 unauthorized", name, status, he.Code)
		}
	}

	// AUTH-2: a user_id other than the subject, and another subject for alice's session.
	if status, he := s.refused(t, "session_id="+newSession(t)+"&user_id=bob&access_token="+alice, nil); status != http.StatusForbidden || he.Code != httpapi.HTTPErrorCodeUserMismatch {
		t.Errorf("user_id bob with alice's token: %d %s", status, he.Code)
	}
	bob := token(t, secret, valid("bob"))
	if status, he := s.refused(t, "session_id="+sid+"&access_token="+bob, nil); status != http.StatusForbidden || he.Code != httpapi.HTTPErrorCodeUserMismatch {
		t.Errorf("bob joining alice's session: %d %s", status, he.Code)
	}
}
