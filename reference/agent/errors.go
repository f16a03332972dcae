package agent

import "errors"

// A PublicError is an agent failure whose Public text may be shown to clients. Its
// Error text, for the server's log, may carry what clients must not see: upstream
// URLs, dial errors, an upstream's own error text.
type PublicError interface {
	error
	Public() string
}

// Public returns the text of err that a client may see: its PublicError's, or a
// generic text for an error that has none.
func Public(err error) string {
	var p PublicError
	if errors.As(err, &p) {
		return p.Public()
	}
	return "the agent failed"
}

// failure is a PublicError: public for clients, detail for the log, and its kind,
// which says whether a try may be repeated and names its outcome (OpenAI.Observe).
type failure struct {
	kind   string // "failed", or unreachable, timeout, refused (with status), misconfigured
	status int    // the upstream's HTTP status, for refused
	public string
	detail error
}

// The kinds of failure that are not plain "failed".
const (
	kindUnreachable   = "unreachable"
	kindTimeout       = "timeout"
	kindRefused       = "refused"
	kindMisconfigured = "misconfigured"
)

func (f *failure) Error() string {
	if f.detail == nil {
		return f.public
	}
	return f.public + ": " + f.detail.Error()
}

func (f *failure) Public() string { return f.public }
func (f *failure) Unwrap() error  { return f.detail }
