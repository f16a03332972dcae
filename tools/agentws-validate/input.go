package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// A record is one message read from an input, with where it was found.
type record struct {
	file string
	line int // 1-based line of an NDJSON message; 0 for a whole-file message
	data []byte
	size int // when > 0, the message was this many bytes, over -max-bytes, and data is nil
}

// where formats the record's location as FILE or FILE:LINE.
func (r record) where() string {
	if r.line == 0 {
		return r.file
	}
	return fmt.Sprintf("%s:%d", r.file, r.line)
}

// readInput reads the messages of one input (a file name, or "-" for stdin) into p.
func readInput(c *config, name string, stdin io.Reader, p *pipeline) error {
	display, r := name, stdin
	if name == "-" {
		display = "<stdin>"
	} else {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	format := c.format
	if format == "auto" {
		switch filepath.Ext(name) {
		case ".json":
			format = "json"
		case ".ndjson", ".jsonl":
			format = "ndjson"
		}
	}
	lr := newLineReader(r, c.maxBytes)
	if format == "json" {
		lr.keep = false
		return readWhole(display, lr, p)
	}
	// NDJSON, or auto: read the first non-empty line to decide.
	first, n, err := lr.nextNonEmpty()
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: %w", display, err)
	}
	if first.data == nil && first.size == 0 {
		return fmt.Errorf("%s: no message: the input is empty", display)
	}
	if format == "auto" && (first.size > 0 || !json.Valid(first.data) || !lr.moreContent()) {
		return readWhole(display, lr, p)
	}
	lr.keep, lr.consumed = false, nil
	first.file, first.line = display, n
	p.add(first)
	return readLines(display, lr, p)
}

// readWhole reads the input as one message, after what the line reader kept of it.
func readWhole(display string, lr *lineReader, p *pipeline) error {
	data := lr.consumed
	lr.keep, lr.consumed = false, nil
	rest, err := io.ReadAll(io.LimitReader(lr.br, int64(max(lr.max+1-len(data), 0))))
	if err != nil {
		return fmt.Errorf("%s: %w", display, err)
	}
	data = append(data, rest...)
	if size := len(data) + lr.overflow; size > lr.max {
		n, err := io.Copy(io.Discard, lr.br)
		if err != nil {
			return fmt.Errorf("%s: %w", display, err)
		}
		p.add(record{file: display, size: size + int(n)})
		return nil
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return fmt.Errorf("%s: no message: the input is empty", display)
	}
	p.add(record{file: display, data: data})
	return nil
}

// readLines reads the rest of an NDJSON input, one message a line.
func readLines(display string, lr *lineReader, p *pipeline) error {
	for {
		rec, n, err := lr.nextNonEmpty()
		if rec.data != nil || rec.size > 0 {
			rec.file, rec.line = display, n
			p.add(rec)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s:%d: %w", display, n, err)
		}
	}
}

// lineReader reads lines of at most max bytes, counting them. Until the input's format
// is decided it keeps a copy of what it read, so that an input that turns out to be one
// message can be read again whole.
type lineReader struct {
	br       *bufio.Reader
	max      int
	line     int
	keep     bool
	consumed []byte // a copy of what was read, at most max+1 bytes
	overflow int    // bytes read beyond that copy
}

// remember keeps a copy of b while the format is undecided.
func (lr *lineReader) remember(b []byte) {
	if !lr.keep {
		return
	}
	room := max(lr.max+1-len(lr.consumed), 0)
	if len(b) > room {
		lr.overflow += len(b) - room
		b = b[:room]
	}
	lr.consumed = append(lr.consumed, b...)
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10), max: max, keep: true}
}

// nextNonEmpty returns the next line that is not blank, and its number. A line over
// the limit comes back with its size and no data. At the end it returns io.EOF, with
// the last line if there was one.
func (lr *lineReader) nextNonEmpty() (record, int, error) {
	for {
		data, size, err := lr.readLine()
		if size > 0 {
			return record{size: size}, lr.line, err
		}
		if len(bytes.TrimSpace(data)) > 0 {
			return record{data: data}, lr.line, err
		}
		if err != nil {
			return record{}, lr.line, err
		}
	}
}

// readLine returns the next line without its line ending, or, for a line longer than
// the limit, its length and no data (the line is skipped, not kept in memory).
func (lr *lineReader) readLine() (line []byte, size int, err error) {
	lr.line++
	n := 0
	for {
		frag, ferr := lr.br.ReadSlice('\n')
		lr.remember(frag)
		n += len(frag)
		if n <= lr.max+2 { // room for a "\r\n" ending
			line = append(line, frag...)
		}
		if errors.Is(ferr, bufio.ErrBufferFull) {
			continue
		}
		if ferr != nil && !errors.Is(ferr, io.EOF) {
			return nil, 0, ferr
		}
		if n <= lr.max+2 {
			line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
			n = len(line)
		} else {
			n -= len(frag) - len(bytes.TrimRight(frag, "\r\n"))
		}
		if ferr != nil {
			ferr = io.EOF
		}
		if n > lr.max {
			return nil, n, ferr
		}
		return line, 0, ferr
	}
}

// moreContent reports whether anything but white space follows the current position.
func (lr *lineReader) moreContent() bool {
	for {
		b, err := lr.br.Peek(1)
		if err != nil {
			return false
		}
		if !bytes.ContainsAny(b, " \t\r\n") {
			return true
		}
		lr.remember(b)
		if b[0] == '\n' {
			lr.line++
		}
		lr.br.Discard(1)
	}
}
