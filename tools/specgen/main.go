package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "specgen:", err)
		os.Exit(2)
	}
}

const usage = `usage: specgen messages -o FILE SCHEMA.json...
       specgen openapi -in FILE -o FILE`

func run(args []string, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	fs := flag.NewFlagSet("specgen "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "output `file`")
	switch args[0] {
	case "messages":
		if err := fs.Parse(args[1:]); err != nil || *out == "" || fs.NArg() == 0 {
			return errors.New(usage)
		}
		doc, err := messagesDoc(fs.Args())
		if err != nil {
			return err
		}
		names := make([]string, fs.NArg())
		for i, a := range fs.Args() {
			names[i] = filepath.Base(a)
		}
		return writeYAML(*out, doc, "from "+strings.Join(names, ", ")+" and the JSON Schemas they reference")
	case "openapi":
		in := fs.String("in", "", "OpenAPI `file` to bundle")
		if err := fs.Parse(args[1:]); err != nil || *in == "" || *out == "" || fs.NArg() > 0 {
			return errors.New(usage)
		}
		doc, err := bundle(*in)
		if err != nil {
			return err
		}
		return writeYAML(*out, doc, fmt.Sprintf("from %s and the JSON Schemas it references", filepath.Base(*in)))
	}
	return errors.New(usage)
}
