package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rogpeppe/go-internal/testscript"
	"github.com/rogpeppe/go-internal/txtar"

	"github.com/agentws/agentws/schemas"
)

var update = flag.Bool("update", false, "rewrite the expected output in testdata/script from what the command prints")

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"agentws-validate": func() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs the command-line behaviours in testdata/script.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{Dir: "testdata/script", UpdateScripts: *update, RequireExplicitExec: true})
}

const corpus = "../../testdata/payloads"

// A corpusCase is one invalid payload of testdata/payloads/invalid/TYPE/NAME.txtar: the
// message in its file message.json, the problems it must produce in its comment
// ("want: POINTER: REASON" lines), and "strict: true" when only strict mode rejects it.
type corpusCase struct {
	name    string
	target  string // a message type (its direction is used) or a schema name
	message []byte
	want    []string
	strict  bool
}

func loadInvalid(t *testing.T) []corpusCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(corpus, "invalid", "*", "*.txtar"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no invalid payloads in %s: %v", corpus, err)
	}
	var cases []corpusCase
	for _, f := range files {
		ar, err := txtar.ParseFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c := corpusCase{name: strings.TrimPrefix(f, corpus+"/"), target: filepath.Base(filepath.Dir(f))}
		for _, line := range strings.Split(string(ar.Comment), "\n") {
			if w, ok := strings.CutPrefix(line, "want: "); ok {
				c.want = append(c.want, w)
			}
			c.strict = c.strict || line == "strict: true"
		}
		for _, af := range ar.Files {
			if af.Name == "message.json" {
				c.message = af.Data
			}
		}
		if c.message == nil || len(c.want) == 0 {
			t.Fatalf("%s: want a message.json file and at least one want: line", f)
		}
		cases = append(cases, c)
	}
	return cases
}

// flags returns the command's flags that select what the case is validated against.
func flagsFor(target string) []string {
	if d := schemas.DirectionOf(target); d != "" {
		return []string{"-direction", string(d)}
	}
	return []string{"-schema", target}
}

func validateWithPackage(t *testing.T, target string, strict bool, data []byte) error {
	t.Helper()
	v, err := schemas.NewValidator(schemas.Options{Strict: strict})
	if err != nil {
		t.Fatal(err)
	}
	if d := schemas.DirectionOf(target); d != "" {
		return v.ValidateMessage(d, data)
	}
	return v.Validate(schemas.Schema(target), data)
}

func runCommand(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// Every invalid payload produces exactly its stated problems, through the package and
// through the command; a strict-only case is valid without -strict.
func TestInvalidCorpus(t *testing.T) {
	cases := loadInvalid(t)
	types := map[string]int{}
	for _, c := range cases {
		types[c.target]++
		t.Run(c.name, func(t *testing.T) {
			var verr *schemas.ValidationError
			err := validateWithPackage(t, c.target, true, c.message)
			if !errors.As(err, &verr) {
				t.Fatalf("package: got %v, want a validation error", err)
			}
			var got []string
			for _, p := range verr.Problems {
				got = append(got, p.String())
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("package: problems differ (-want +got):\n%s", diff)
			}

			file := filepath.Join(t.TempDir(), "message.json")
			if err := os.WriteFile(file, c.message, 0o644); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := runCommand(t, append(append([]string{"-strict"}, flagsFor(c.target)...), file)...)
			var wantOut strings.Builder
			for _, w := range c.want {
				fmt.Fprintf(&wantOut, "%s: %s\n", file, w)
			}
			if code != exitInvalid || stdout != wantOut.String() {
				t.Errorf("command: exit %d, want %d; output (-want +got):\n%s\nstderr: %s", code, exitInvalid, cmp.Diff(wantOut.String(), stdout), stderr)
			}

			lenientErr := validateWithPackage(t, c.target, false, c.message)
			code, stdout, _ = runCommand(t, append(flagsFor(c.target), file)...)
			if c.strict && (lenientErr != nil || code != exitValid || stdout != "") {
				t.Errorf("strict-only case: without -strict got %v, exit %d, output %q; want valid", lenientErr, code, stdout)
			}
			if !c.strict && (lenientErr == nil || code != exitInvalid) {
				t.Errorf("without -strict got %v, exit %d; want invalid", lenientErr, code)
			}
		})
	}
	for _, s := range schemas.All() {
		if s != "defs" && s != schemas.ClientMessage && s != schemas.ServerMessage && types[string(s)] < 3 {
			t.Errorf("%s has %d invalid payloads in %s/invalid, want at least 3", s, types[string(s)], corpus)
		}
	}
}

// Every valid payload is valid in strict mode, through the package and the command.
func TestValidCorpus(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(corpus, "valid", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no valid payloads: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			target := ""
			switch name := filepath.Base(f); {
			case strings.HasPrefix(name, "health-"):
				target = "health"
			case strings.HasPrefix(name, "http-error-"):
				target = "http-error"
			}
			args := []string{"-strict", f}
			if target != "" {
				args = []string{"-strict", "-schema", target, f}
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if err := validateWithPackage(t, target, true, data); err != nil {
					t.Errorf("package: %v", err)
				}
			}
			if code, stdout, stderr := runCommand(t, args...); code != exitValid || stdout != "" {
				t.Errorf("command: exit %d, output %q, stderr %q; want exit 0 and no output", code, stdout, stderr)
			}
		})
	}
}

// hundredThousand writes an NDJSON file of n messages (the schemas' examples over and
// over) with invalid messages at the given lines, and returns its name.
func ndjsonFile(t testing.TB, n int, invalidAt map[int]string) string {
	t.Helper()
	var examples [][]byte
	for _, d := range []schemas.Direction{schemas.Client, schemas.Server} {
		for _, typ := range schemas.MessageTypes(d) {
			var doc struct{ Examples []any }
			data, err := schemas.FS.ReadFile(typ + ".json")
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &doc); err != nil {
				t.Fatal(err)
			}
			for _, ex := range doc.Examples {
				b, err := json.Marshal(ex)
				if err != nil {
					t.Fatal(err)
				}
				examples = append(examples, b)
			}
		}
	}
	var buf bytes.Buffer
	for line := 1; line <= n; line++ {
		if bad, ok := invalidAt[line]; ok {
			buf.WriteString(bad)
		} else {
			buf.Write(examples[line%len(examples)])
		}
		buf.WriteByte('\n')
	}
	f := filepath.Join(t.TempDir(), "messages.ndjson")
	if err := os.WriteFile(f, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestHundredThousandMessages(t *testing.T) {
	const n = 100_000
	valid := ndjsonFile(t, n, nil)
	code, stdout, stderr := runCommand(t, "-strict", valid)
	if code != exitValid || stdout != "" || stderr != "agentws-validate: 100000 messages valid\n" {
		t.Errorf("all valid: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	bad := ndjsonFile(t, n, map[int]string{
		1:      `{"type":"query","query":5}`,
		50_001: `{"type":"chunk","content":"x","chunk_number":0,"session_id":"s","timestamp":"2025-10-25T12:34:56Z"}`,
		n:      `not json`,
	})
	code, stdout, stderr = runCommand(t, "-j", "3", bad)
	want := fmt.Sprintf("%[1]s:1: /query: got number, want string\n"+
		"%[1]s:50001: /chunk_number: minimum: got 0, want 1\n"+
		"%[1]s:100000: (root): invalid JSON at byte 2: invalid character 'o' in literal null (expecting 'u')\n", bad)
	if code != exitInvalid || stdout != want || stderr != "agentws-validate: 3 of 100000 messages invalid\n" {
		t.Errorf("three invalid: exit %d, stderr %q, output (-want +got):\n%s", code, stderr, cmp.Diff(want, stdout))
	}
}

// BenchmarkNDJSON measures the command's throughput on NDJSON, reading included.
func BenchmarkNDJSON(b *testing.B) {
	const n = 20_000
	f := ndjsonFile(b, n, nil)
	for _, j := range []int{1, 2} {
		b.Run(fmt.Sprintf("j=%d", j), func(b *testing.B) {
			for b.Loop() {
				var out, errOut bytes.Buffer
				if code := run([]string{"-j", fmt.Sprint(j), f}, nil, &out, &errOut); code != exitValid {
					b.Fatalf("exit %d: %s", code, errOut.String())
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// The README's example runs as it says: its command on testdata/sent.ndjson prints the
// lines the README shows, and exits 1.
func TestREADMEExample(t *testing.T) {
	t.Chdir("../..")
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	code := run([]string{"-direction", "client", "-strict", "testdata/sent.ndjson"}, nil, &out, &errOut)
	if code != exitInvalid {
		t.Errorf("exit status %d, want %d", code, exitInvalid)
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()+errOut.String()), "\n") {
		if !strings.Contains(string(readme), "    "+line+"\n") {
			t.Errorf("the README does not show the line %q", line)
		}
	}
}
