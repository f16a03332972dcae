package server

import (
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Auth turns on bearer-token authentication, the auth capability (spec/PROTOCOL.md
// rules AUTH-1 to AUTH-3): every connection needs a valid JWT, in the Authorization
// header or, for browsers, the access_token parameter, and the session's user is the
// token's subject.
type Auth struct {
	Secret    []byte           // verifies HS256 tokens
	PublicKey crypto.PublicKey // verifies RS256 or ES256 tokens (*rsa.PublicKey, *ecdsa.PublicKey)
	Issuer    string           // when set, the iss a token must have
	Audience  string           // when set, an aud a token must have
}

// leeway is the clock skew allowed for exp and nbf (AUTH-3).
const leeway = 60 * time.Second

func (a *Auth) check() error {
	if len(a.Secret) == 0 && a.PublicKey == nil {
		return errors.New("authentication needs a secret or a public key")
	}
	return nil
}

// parse verifies a JWT (AUTH-3); the token itself is never logged.
func (a *Auth) parse(raw string) (*jwt.Token, error) {
	var methods []string
	if len(a.Secret) > 0 {
		methods = append(methods, "HS256")
	}
	if a.PublicKey != nil {
		methods = append(methods, "RS256", "ES256")
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(methods), jwt.WithLeeway(leeway), jwt.WithExpirationRequired()}
	if a.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(a.Issuer))
	}
	if a.Audience != "" {
		opts = append(opts, jwt.WithAudience(a.Audience))
	}
	token, err := jwt.Parse(raw, func(t *jwt.Token) (any, error) {
		if t.Method.Alg() == "HS256" {
			return a.Secret, nil
		}
		return a.PublicKey, nil
	}, opts...)
	if err != nil {
		return nil, fmt.Errorf("the bearer token is not valid: %w", err)
	}
	return token, nil
}

// subject returns the subject of the request's token, or why there is no valid one.
// The token itself is never logged.
func (a *Auth) subject(r *http.Request) (string, error) {
	raw := r.URL.Query().Get("access_token")
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "", errors.New("the Authorization header is not \"Bearer <token>\"")
		}
		raw = strings.TrimSpace(token)
	}
	if raw == "" {
		return "", errors.New("a bearer token is required, in the Authorization header or the access_token parameter")
	}
	token, err := a.parse(raw)
	if err != nil {
		return "", err
	}
	sub, err := token.Claims.GetSubject()
	if err != nil || sub == "" {
		return "", errors.New("the bearer token has no subject (sub)")
	}
	if !idSyntax.MatchString(sub) {
		return "", fmt.Errorf("the token's subject %q is not 1 to 128 characters of A-Z a-z 0-9 . _ : ~ -", sub)
	}
	return sub, nil
}
