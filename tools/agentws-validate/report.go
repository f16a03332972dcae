package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/agentws/agentws/schemas"
)

// reportVersion is the version of the -json report's format.
const reportVersion = 1

// jsonReport is what -json prints.
type jsonReport struct {
	Version   int             `json:"version"`
	Direction string          `json:"direction,omitempty"`
	Schema    string          `json:"schema,omitempty"`
	Strict    bool            `json:"strict"`
	Valid     bool            `json:"valid"`
	Messages  int             `json:"messages"`
	Invalid   int             `json:"invalid"`
	Results   []invalidResult `json:"results"`
	Errors    []string        `json:"errors,omitempty"`
}

type invalidResult struct {
	File     string            `json:"file"`
	Line     int               `json:"line,omitempty"`
	Schema   string            `json:"schema,omitempty"`
	Problems []schemas.Problem `json:"problems"`
}

// A reporter counts results and prints the problems. It is used by one goroutine.
type reporter struct {
	c        *config
	w        *bufio.Writer
	messages int
	invalid  int
	results  []invalidResult
	errors   []string
	werr     error
}

func newReporter(c *config, w io.Writer) *reporter {
	return &reporter{c: c, w: bufio.NewWriter(w), results: []invalidResult{}}
}

func (r *reporter) result(rec record, err error) {
	r.messages++
	if err == nil {
		return
	}
	r.invalid++
	var verr *schemas.ValidationError
	if !errors.As(err, &verr) {
		verr = &schemas.ValidationError{Problems: []schemas.Problem{{Message: err.Error(), Code: "internal"}}}
	}
	if r.c.json {
		r.results = append(r.results, invalidResult{File: rec.file, Line: rec.line, Schema: string(verr.Schema), Problems: verr.Problems})
		return
	}
	for _, p := range verr.Problems {
		if _, err := fmt.Fprintf(r.w, "%s: %s\n", rec.where(), p); err != nil && r.werr == nil {
			r.werr = err
		}
	}
}

// ioError records an input that could not be read.
func (r *reporter) ioError(err error) { r.errors = append(r.errors, err.Error()) }

// finish prints the JSON report, if asked for, and flushes the output.
func (r *reporter) finish() error {
	if r.c.json {
		rep := jsonReport{
			Version: reportVersion, Schema: string(r.c.schema), Strict: r.c.strict,
			Valid: r.invalid == 0 && len(r.errors) == 0, Messages: r.messages, Invalid: r.invalid,
			Results: r.results, Errors: r.errors,
		}
		if r.c.schema == "" {
			rep.Direction = string(r.c.direction)
		}
		enc := json.NewEncoder(r.w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	}
	if err := r.w.Flush(); err != nil {
		return err
	}
	return r.werr
}

func (r *reporter) summary() string {
	if r.invalid == 0 {
		return fmt.Sprintf("agentws-validate: %d %s valid", r.messages, plural(r.messages, "message", "messages"))
	}
	return fmt.Sprintf("agentws-validate: %d of %d %s invalid", r.invalid, r.messages, plural(r.messages, "message", "messages"))
}

func sizeMessage(size, limit int) string {
	return fmt.Sprintf("message of %d bytes is over the -max-bytes limit of %d", size, limit)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
