package conformance

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/agentws/agentws/spec"
)

// The cases that ship with the harness.
//
//go:embed testdata/*.txtar
var builtin embed.FS

// A Case is one transcript: the rules it checks and what it needs.
type Case struct {
	Name     string     `json:"id"`      // the file name without .txtar
	Summary  string     `json:"summary"` // the first comment line
	Rules    []string   `json:"rules"`
	Level    spec.Level `json:"level"`
	Needs    []string   `json:"needs,omitempty"`    // capabilities
	Settings []string   `json:"settings,omitempty"` // keepalive, session-ttl, ...
	file     string
}

// settingNames are the settings a case may need, each an Options field (admin: the
// admin API's URL and token), or (anonymous) a server without authentication, whose
// users are named by user_id, or (alone) a run with no other case at the same time,
// for a case that reaches every session of the server (a broadcast to all).
var settingNames = []string{"keepalive", "session-ttl", "max-sessions", "query-rate", "shutdown", "token", "anonymous", "admin", "alone"}

// headerKeys are the keys a case's header may have after its summary line.
var headerKeys = []string{"rules", "level", "needs", "settings"}

// Catalog reads the cases of dir ("" for the built-in ones), sorted by name.
func Catalog(dir string) ([]Case, error) {
	if dir == "" {
		return catalogOf(builtin, "testdata", "")
	}
	return catalogOf(os.DirFS(dir), ".", dir)
}

// catalogOf reads the cases in root of fsys; dir is where fsys is on disk, "" for the
// built-in cases.
func catalogOf(fsys fs.FS, root, dir string) ([]Case, error) {
	files, err := fs.Glob(fsys, path.Join(root, "*.txtar"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no cases (*.txtar) in %s", dir)
	}
	var cases []Case
	for _, f := range files {
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		c, err := parseCase(strings.TrimSuffix(path.Base(f), ".txtar"), data)
		if err != nil {
			return nil, err
		}
		c.file = f
		if dir != "" {
			c.file = filepath.Join(dir, f)
		}
		cases = append(cases, c)
	}
	return cases, nil
}

// parseCase reads a case's header: its first comment line is the summary, and lines
// "# rules: A-1, B-2", "# level: MUST", "# needs: fixture" and "# settings: keepalive"
// say what it checks and needs. Any other header line is an error: a misspelt key
// ("# need: fixture") would otherwise be ignored.
func parseCase(name string, data []byte) (Case, error) {
	c := Case{Name: name}
	ar := txtar.Parse(data)
	for i, line := range strings.Split(string(ar.Comment), "\n") {
		text, ok := strings.CutPrefix(line, "#")
		if !ok {
			break
		}
		text = strings.TrimSpace(text)
		key, value, _ := strings.Cut(text, ":")
		list := strings.FieldsFunc(value, func(r rune) bool { return r == ',' || r == ' ' })
		switch key {
		case "rules":
			c.Rules = list
		case "level":
			c.Level = spec.Level(strings.TrimSpace(value))
		case "needs":
			c.Needs = list
		case "settings":
			c.Settings = list
		case "":
			return c, fmt.Errorf("case %s: an empty header line; the header is the summary, then %s", name, strings.Join(headerKeys, ", "))
		default:
			if i > 0 {
				return c, fmt.Errorf("case %s: unknown header key %q in %q (known: %s)", name, key, line, strings.Join(headerKeys, ", "))
			}
			c.Summary = text
		}
	}
	switch {
	case c.Summary == "":
		return c, fmt.Errorf("case %s: the first line must be a # comment that says what it checks", name)
	case len(c.Rules) == 0:
		return c, fmt.Errorf("case %s: no \"# rules:\" line", name)
	case c.Level != spec.Must && c.Level != spec.Should:
		return c, fmt.Errorf("case %s: \"# level:\" must be MUST or SHOULD, not %q", name, c.Level)
	}
	for _, s := range c.Settings {
		if !slices.Contains(settingNames, s) {
			return c, fmt.Errorf("case %s: unknown setting %q (known: %s)", name, s, strings.Join(settingNames, ", "))
		}
	}
	return c, nil
}

// selected reports whether the case is selected by prefixes (all when empty).
func (c Case) selected(prefixes []string) bool {
	if len(prefixes) == 0 {
		return true
	}
	for _, p := range prefixes {
		if strings.HasPrefix(c.Name, p) {
			return true
		}
	}
	return false
}

// skipReason says why the case cannot run against this server, or "". unknown: the
// server's capabilities are not known (its connected did not come), so that a case for
// a server without one cannot tell whether it applies.
func (c Case) skipReason(caps []string, unknown bool, o *Options) string {
	for _, need := range c.Needs {
		if not, ok := strings.CutPrefix(need, "!"); ok && unknown {
			return fmt.Sprintf("checks a server that does not claim capability %q, and this one's capabilities are not known: its first connection got no connected (give them with -capabilities)", not)
		} else if ok && slices.Contains(caps, not) {
			return fmt.Sprintf("checks a server that does not claim capability %q, which this one claims", not)
		} else if !ok && !slices.Contains(caps, need) {
			return fmt.Sprintf("needs capability %q, which the server does not claim (name it with -capabilities to test it)", need)
		}
	}
	for _, s := range c.Settings {
		switch {
		case s == "keepalive" && o.KeepaliveInterval <= 0:
			return "needs the server's keepalive interval: give it with -keepalive"
		case s == "session-ttl" && o.SessionTTL <= 0:
			return "needs the server's session TTL: give it with -session-ttl"
		case s == "max-sessions" && o.MaxSessions <= 0:
			return "needs the server's session limit, and a server of its own: give -max-sessions"
		case s == "query-rate" && o.QueryRate <= 0:
			return "needs the server's query rate and burst: give -query-rate and -query-burst (it spends the whole allowance of the harness's address, or user, so it runs after every other case)"
		case s == "token" && (o.Token == "" || o.ExpiredToken == ""):
			return "needs a valid and an expired bearer token for the server: give -token and -expired-token"
		case s == "anonymous" && slices.Contains(caps, "auth"):
			return "names its users with user_id, so it needs a server with authentication off: with auth, the user is the token's subject (AUTH-2)"
		case s == "admin" && (o.AdminURL == "" || o.AdminToken == ""):
			return "needs the server's admin API (extension notice, section 12.7): give its origin and token with -admin-url and -admin-token"
		case s == "shutdown" && o.Shutdown == nil:
			return "shuts the server down, so it needs a server of its own and a shutdown hook (the in-process run of the reference server has one)"
		}
	}
	return ""
}
