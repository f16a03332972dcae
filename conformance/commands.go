package conformance

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
)

// A command is a verb of the transcripts.
type command struct {
	usage   string // "send NAME JSON"
	summary string // one line for the command reference
	run     func(ts *testscript.TestScript, st *caseState, args []string)
}

// commands holds every verb, by name; README.md's command reference is generated from
// it (go test ./conformance -run TestCommandReference -update). It is filled in init:
// the commands' usage errors read it.
var commands map[string]command

func init() { commands = commandTable() }

func commandTable() map[string]command {
	return map[string]command{
		"admin": {
			usage:   "admin [-status N] [-auth none|wrong|client] [-body JSON] [-within DURATION] [-wait DURATION] METHOD PATH [PATTERN]",
			summary: "a request to the server's admin API (-admin-url, then PATH such as /admin/sessions/$SID), with the admin token (-auth: none, a wrong one, or the run's client token) and the JSON body, answered within DURATION (the frame timeout); its status (200 unless -status), its body valid against the path's schema (broadcast-result, session-list, session-info, http-error; none for 204), and matching PATTERN; with -wait, the request is repeated every 20ms until it is answered so, for at most that DURATION (a state the server reaches in a moment, such as a session detached after a drop)",
			run:     cmdAdmin,
		},
		"compare": {
			usage:   "compare A OP B",
			summary: "compares two integers, each a number or a sum such as $SEQ+1; OP is one of == != < <= > >=",
			run:     cmdCompare,
		},
		"drain": {
			usage:   "drain [-idle DURATION] [-within DURATION] [-count PATTERN] [-last PATTERN | -until PATTERN] NAME",
			summary: "reads frames on NAME until none comes for -idle (500ms), which must happen within -within (four frame timeouts), or with -until up to the first frame matching PATTERN (each frame within the frame timeout, all within -within), which need not wait for quiet; sets $DRAINED (frames), $DRAINED_BYTES and $DRAINED_MATCHES (frames matching -count); the last frame must match -last",
			run:     cmdDrain,
		},
		"close": {
			usage:   "close NAME [CODE]",
			summary: "closes connection NAME with a close handshake (code 1000 unless given); unanswered within the frame timeout, the connection is ended abruptly",
			run:     cmdClose,
		},
		"closed": {
			usage:   "closed [-skip] [-within DURATION] NAME CODE|abrupt|any",
			summary: "the connection ends within DURATION (the frame timeout), frames skipped included: with a close frame of CODE, without one (abrupt), or either way (any); -skip first discards the frames that come before",
			run:     cmdClosed,
		},
		"drop": {
			usage:   "drop NAME",
			summary: "ends connection NAME abruptly, without a close frame: what was sent still reaches the server (the harness ends its side of the TCP connection, waits at most the frame timeout for the server to end its own, then closes)",
			run:     cmdDrop,
		},
		"expect": {
			usage:   "expect [-keepalive] [-within DURATION] [-lacks TEXT]... NAME PATTERN",
			summary: "the next frame on NAME, within DURATION (the frame timeout), matches PATTERN (see Patterns), and contains none of the TEXTs (such as another session's id); keepalive frames are skipped unless -keepalive, and do not extend the wait; notice frames are not skipped",
			run:     cmdExpect,
		},
		"expectfile": {
			usage:   "expectfile [-keepalive] [-skip TYPE] NAME FILE",
			summary: "the next frame on NAME (after any frames of type TYPE, all within the frame timeout) matches the pattern in the archive's FILE; with -update, an empty or failing pattern is rewritten from the reference server's frame",
			run:     cmdExpectFile,
		},
		"http": {
			usage:   "http [-status N] [-within DURATION] [-lacks TEXT]... METHOD PATH [PATTERN]",
			summary: "an HTTP request to the server (with -token, carrying it), answered within DURATION (the frame timeout); its status (200 unless -status) and JSON body (matching PATTERN, and containing none of the TEXTs); a /health body answered with 200 is validated against health.json and joins the run-wide checks",
			run:     cmdHTTP,
		},
		"nothing": {
			usage:   "nothing NAME DURATION",
			summary: "no frame but keepalive arrives on NAME for DURATION",
			run:     cmdNothing,
		},
		"open": {
			usage:   "open NAME QUERY [HEADER:VALUE...]",
			summary: "opens connection NAME to the endpoint with the query string QUERY (session_id=$SID...), upgraded within the frame timeout; the first frame stays queued for expect; with -token, outside the auth cases, the request carries Authorization: Bearer TOKEN",
			run:     cmdOpen,
		},
		"openmany": {
			usage:   "openmany PREFIX COUNT QUERY",
			summary: "opens COUNT connections named PREFIX1, PREFIX2, ... as open does; $I in QUERY is the connection's number; each must get connected within the frame timeout",
			run:     cmdOpenMany,
		},
		"pause": {
			usage:   "pause DURATION",
			summary: "waits, at most a minute; only for times the protocol itself defines (a TTL, the fixture's pace)",
			run:     cmdPause,
		},
		"refused": {
			usage:   "refused [-http] [-status N] [-code CODE] [-lacks TEXT]... QUERY [HEADER:VALUE...]",
			summary: "a connection with QUERY is refused, within the frame timeout: by an HTTP error before the upgrade (of status N, with a JSON body of code CODE, when given, and containing none of the TEXTs), or by a close 1008 before any frame unless -http",
			run:     cmdRefused,
		},
		"sendmany": {
			usage:   "sendmany NAME COUNT JSON",
			summary: "sends JSON COUNT times on NAME; $I in JSON is the copy's number, from 1",
			run:     cmdSendMany,
		},
		"shutdown": {
			usage:   "shutdown",
			summary: "tells the server to shut down, through the run's shutdown hook (cases that need it run on a server of their own)",
			run:     cmdShutdown,
		},
		"send": {
			usage:   "send NAME JSON",
			summary: "sends JSON (after $VARIABLE expansion) as a text frame on NAME",
			run:     cmdSend,
		},
		"sendbig": {
			usage:   "sendbig NAME BYTES",
			summary: "sends a query frame of exactly BYTES bytes on NAME",
			run:     cmdSendBig,
		},
		"sendbinary": {
			usage:   "sendbinary NAME TEXT",
			summary: "sends TEXT as a binary frame on NAME",
			run:     cmdSendBinary,
		},
		"sendraw": {
			usage:   "sendraw NAME TEXT",
			summary: "sends TEXT, which need not be JSON, as a text frame on NAME",
			run:     cmdSendRaw,
		},
		"skipto": {
			usage:   "skipto [-keepalive] [-within DURATION] NAME PATTERN",
			summary: "discards frames on NAME until one matches PATTERN, each frame within the frame timeout and all within DURATION (four frame timeouts); keepalive frames are skipped unless -keepalive, and do not extend the waits",
			run:     cmdSkipTo,
		},
		"stream": {
			usage:   "stream [-text TEXT] [-end complete|error] [-code CODE] [-within DURATION] NAME",
			summary: "reads one whole stream on NAME, query_start to complete or error, each frame within the frame timeout and the whole within DURATION (four frame timeouts); checks the stream rules, the joined text (-text), how it ends (-end, complete unless given) and the error's code; notice frames before or inside the stream are skipped (NOTICE-2); sets $STREAM_TEXT, $STREAM_CHUNKS, $STREAM_NOTICES (the notices skipped) and $STREAM_NOTICE_IDS (their notice_id, comma-separated)",
			run:     cmdStream,
		},
		"wsping": {
			usage:   "wsping NAME",
			summary: "sends a WebSocket ping control frame on NAME; the pong must come within the frame timeout",
			run:     cmdWSPing,
		},
	}
}

// scriptCommands adapts the commands to testscript: each rejects bad usage with its
// usage line, and fails with any MUST rule the frame checks found meanwhile.
func scriptCommands() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	out := map[string]func(*testscript.TestScript, bool, []string){}
	for name, cmd := range commands {
		out[name] = func(ts *testscript.TestScript, neg bool, args []string) {
			st := ts.Value(stateKey{}).(*caseState)
			if neg {
				ts.Fatalf("usage: %s (! is not supported)", cmd.usage)
			}
			cmd.run(ts, st, args)
			st.stopOnFindings(ts)
		}
	}
	return out
}

func usage(ts *testscript.TestScript, name string) {
	table := commands
	if st, _ := ts.Value(stateKey{}).(*caseState); st != nil && st.srv != nil {
		table = clientCommands
	}
	ts.Fatalf("usage: %s", table[name].usage)
}

// parse parses a command's flags; it fails with the usage line on an error or when
// the number of arguments is outside [min, max] (max -1: no limit).
func parse(ts *testscript.TestScript, name string, args []string, min, max int, define func(fs *flag.FlagSet)) []string {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if define != nil {
		define(fs)
	}
	if err := fs.Parse(args); err != nil || fs.NArg() < min || (max >= 0 && fs.NArg() > max) {
		usage(ts, name)
	}
	return fs.Args()
}

// expand replaces $VAR and ${VAR} in a quoted argument with the script's variables.
func expand(ts *testscript.TestScript, s string) string { return os.Expand(s, ts.Getenv) }

func connNamed(ts *testscript.TestScript, st *caseState, name string) *conn {
	c, ok := st.conns[name]
	if !ok {
		ts.Fatalf("no connection named %s: open it first", name)
	}
	return c
}

// CommandReference returns the Markdown table of the commands, from their usage lines:
// the command reference of README.md.
func CommandReference() string { return commandReference(commands) }

// ClientCommandReference returns the Markdown table of the client cases' commands.
func ClientCommandReference() string { return commandReference(clientCommands) }

func commandReference(commands map[string]command) string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("| command | what it does |\n|---|---|\n")
	for _, n := range names {
		esc := strings.NewReplacer("|", "\\|")
		fmt.Fprintf(&b, "| `%s` | %s |\n", esc.Replace(commands[n].usage), esc.Replace(commands[n].summary))
	}
	return b.String()
}
