package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/agentws/agentws/schemas"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// Exit codes.
const (
	exitValid   = 0
	exitInvalid = 1
	exitUsage   = 2
)

type config struct {
	direction schemas.Direction
	schema    schemas.Schema // overrides direction when set
	strict    bool
	json      bool
	format    string
	maxBytes  int
	workers   int
	files     []string
}

const usageLine = "usage: agentws-validate [-strict] [-direction client|server|any | -schema NAME] [-json] [-format auto|json|ndjson] [-max-bytes N] [-j N] FILE... | -"

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("agentws-validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, usageLine)
		fs.PrintDefaults()
	}
	c := &config{}
	dir := fs.String("direction", "any", "who sends the messages: `client`, server or any (chosen by each message's type)")
	schema := fs.String("schema", "", "validate against the schema `NAME` instead of a direction: "+schemaNames())
	fs.BoolVar(&c.strict, "strict", false, "also report members that the schema does not define, such as a misspelt field")
	fs.BoolVar(&c.json, "json", false, "print a JSON report on standard output instead of one line per problem")
	fs.StringVar(&c.format, "format", "auto", "how to read the files: `auto`, json (one message a file) or ndjson (one message a line)")
	fs.IntVar(&c.maxBytes, "max-bytes", 16<<20, "the largest message accepted, in `bytes`; a larger one is reported invalid")
	fs.IntVar(&c.workers, "j", runtime.GOMAXPROCS(0), "validate on `N` goroutines")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	dirSet := false
	fs.Visit(func(f *flag.Flag) { dirSet = dirSet || f.Name == "direction" })
	var err error
	if c.direction, err = schemas.ParseDirection(*dir); err != nil {
		return nil, fmt.Errorf("-direction: %w", err)
	}
	switch {
	case *schema != "" && dirSet:
		return nil, errors.New("-schema and -direction exclude each other")
	case *schema != "" && !isSchema(*schema):
		return nil, fmt.Errorf("-schema: unknown schema %q: want one of %s", *schema, schemaNames())
	}
	c.schema = schemas.Schema(*schema)
	if c.format != "auto" && c.format != "json" && c.format != "ndjson" {
		return nil, fmt.Errorf("-format: unknown format %q: want auto, json or ndjson", c.format)
	}
	if c.maxBytes < 1 {
		return nil, fmt.Errorf("-max-bytes: %d is not a positive size", c.maxBytes)
	}
	if c.workers < 1 {
		return nil, fmt.Errorf("-j: %d is not a positive number of goroutines", c.workers)
	}
	c.files = fs.Args()
	if len(c.files) == 0 {
		return nil, errors.New("no input: name files, or - for standard input")
	}
	return c, nil
}

func isSchema(name string) bool {
	for _, s := range schemas.All() {
		if string(s) == name && s != "defs" {
			return true
		}
	}
	return false
}

func schemaNames() string {
	var names []string
	for _, s := range schemas.All() {
		if s != "defs" {
			names = append(names, string(s))
		}
	}
	return strings.Join(names, ", ")
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitValid
	}
	if err != nil {
		fmt.Fprintf(stderr, "agentws-validate: %v\n%s\n", err, usageLine)
		return exitUsage
	}
	v, err := schemas.NewValidator(schemas.Options{Strict: c.strict})
	if err != nil {
		fmt.Fprintf(stderr, "agentws-validate: %v\n", err)
		return exitUsage
	}
	rep := newReporter(c, stdout)
	p := newPipeline(c, v, rep)
	ioFailed := false
	for _, name := range c.files {
		if err := readInput(c, name, stdin, p); err != nil {
			fmt.Fprintf(stderr, "agentws-validate: %v\n", err)
			rep.ioError(err)
			ioFailed = true
		}
	}
	p.close()
	if err := rep.finish(); err != nil {
		fmt.Fprintf(stderr, "agentws-validate: %v\n", err)
		return exitUsage
	}
	fmt.Fprintln(stderr, rep.summary())
	switch {
	case ioFailed:
		return exitUsage
	case rep.invalid > 0:
		return exitInvalid
	}
	return exitValid
}
