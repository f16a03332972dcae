package schemas

import (
	"encoding/json"
	"unicode/utf16"
	"unicode/utf8"
)

// parseFast is Decode's fast path: one pass over data, which builds the same value as
// decodeStd (objects as map[string]any, arrays as []any, numbers as json.Number of
// their literal) and refuses exactly the texts decodeStd refuses (not UTF-8, not one
// JSON value, a repeated member name), and also a text nested deeper than
// maxFastDepth; it says only that it refused: Decode then asks decodeStd, which explains
// why (FuzzParseFast holds the two to this).
//
// The strings of a small text are cut from one copy of it: a value kept from it keeps
// up to copyOnceLimit bytes alive. A larger text's strings are copied one by one.
func parseFast(data []byte) (any, bool) {
	if !utf8.Valid(data) {
		return nil, false
	}
	p := parser{data: data}
	if len(data) <= copyOnceLimit {
		p.text = string(data)
	}
	p.skipSpace()
	v, ok := p.value()
	if !ok {
		return nil, false
	}
	p.skipSpace()
	if p.i != len(data) {
		return nil, false
	}
	return v, true
}

const (
	// maxFastDepth bounds the recursion of parseFast; deeper texts go to decodeStd,
	// whose own bound (encoding/json's) is 10000.
	maxFastDepth = 1000
	// copyOnceLimit is the largest text whose strings parseFast cuts from one copy.
	copyOnceLimit = 4096
)

type parser struct {
	data  []byte
	text  string // data as a string, or "" when strings are copied one by one
	i     int    // the next byte to read
	depth int    // the objects and arrays open at i
}

// member is one member of an object being read.
type member struct {
	name  string
	value any
}

// cut returns data[from:to] as a string.
func (p *parser) cut(from, to int) string {
	if p.text != "" {
		return p.text[from:to]
	}
	return string(p.data[from:to])
}

func (p *parser) skipSpace() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) value() (any, bool) {
	if p.i >= len(p.data) {
		return nil, false
	}
	switch c := p.data[p.i]; c {
	case '{':
		return p.object()
	case '[':
		return p.array()
	case '"':
		s, ok := p.string()
		if !ok {
			return nil, false
		}
		return s, true
	case 't':
		return true, p.literal("true")
	case 'f':
		return false, p.literal("false")
	case 'n':
		return nil, p.literal("null")
	default:
		if c == '-' || '0' <= c && c <= '9' {
			return p.number()
		}
	}
	return nil, false
}

func (p *parser) literal(lit string) bool {
	if len(p.data)-p.i < len(lit) || string(p.data[p.i:p.i+len(lit)]) != lit {
		return false
	}
	p.i += len(lit)
	return true
}

func (p *parser) object() (any, bool) {
	p.i++ // {
	if p.depth++; p.depth > maxFastDepth {
		return nil, false
	}
	var buf [8]member
	members := buf[:0]
	p.skipSpace()
	if p.i < len(p.data) && p.data[p.i] == '}' {
		p.i++
		p.depth--
		return map[string]any{}, true
	}
	for {
		if p.i >= len(p.data) || p.data[p.i] != '"' {
			return nil, false
		}
		name, ok := p.string()
		if !ok {
			return nil, false
		}
		p.skipSpace()
		if p.i >= len(p.data) || p.data[p.i] != ':' {
			return nil, false
		}
		p.i++
		p.skipSpace()
		v, ok := p.value()
		if !ok {
			return nil, false
		}
		members = append(members, member{name, v})
		p.skipSpace()
		if p.i >= len(p.data) {
			return nil, false
		}
		c := p.data[p.i]
		p.i++
		if c == '}' {
			break
		}
		if c != ',' {
			return nil, false
		}
		p.skipSpace()
	}
	p.depth--
	obj := make(map[string]any, len(members))
	for _, m := range members {
		obj[m.name] = m.value
	}
	if len(obj) != len(members) {
		return nil, false // a repeated name: decodeStd names it
	}
	return obj, true
}

func (p *parser) array() (any, bool) {
	p.i++ // [
	if p.depth++; p.depth > maxFastDepth {
		return nil, false
	}
	var buf [8]any
	elems := buf[:0]
	p.skipSpace()
	if p.i < len(p.data) && p.data[p.i] == ']' {
		p.i++
		p.depth--
		return []any{}, true
	}
	for {
		v, ok := p.value()
		if !ok {
			return nil, false
		}
		elems = append(elems, v)
		p.skipSpace()
		if p.i >= len(p.data) {
			return nil, false
		}
		c := p.data[p.i]
		p.i++
		if c == ']' {
			break
		}
		if c != ',' {
			return nil, false
		}
		p.skipSpace()
	}
	p.depth--
	return append([]any(nil), elems...), true
}

// number reads a number as JSON (RFC 8259 section 6) writes it, and keeps its literal.
func (p *parser) number() (any, bool) {
	start, d := p.i, p.data
	if d[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(d) && d[p.i] == '0':
		p.i++
	case p.i < len(d) && '1' <= d[p.i] && d[p.i] <= '9':
		p.digits()
	default:
		return nil, false
	}
	if p.i < len(d) && d[p.i] == '.' {
		p.i++
		if !p.digits() {
			return nil, false
		}
	}
	if p.i < len(d) && (d[p.i] == 'e' || d[p.i] == 'E') {
		p.i++
		if p.i < len(d) && (d[p.i] == '+' || d[p.i] == '-') {
			p.i++
		}
		if !p.digits() {
			return nil, false
		}
	}
	return json.Number(p.cut(start, p.i)), true
}

// digits reads one or more decimal digits.
func (p *parser) digits() bool {
	start := p.i
	for p.i < len(p.data) && '0' <= p.data[p.i] && p.data[p.i] <= '9' {
		p.i++
	}
	return p.i > start
}

// string reads a string, its escapes decoded as encoding/json decodes them (a lone
// surrogate becomes U+FFFD).
func (p *parser) string() (string, bool) {
	p.i++ // "
	start := p.i
	for p.i < len(p.data) {
		switch c := p.data[p.i]; {
		case c == '"':
			p.i++
			return p.cut(start, p.i-1), true
		case c == '\\':
			return p.escaped(start)
		case c < 0x20:
			return "", false
		}
		p.i++
	}
	return "", false
}

// escaped reads the rest of a string that has an escape at i and began at start.
func (p *parser) escaped(start int) (string, bool) {
	d := p.data
	out := append(make([]byte, 0, p.i-start+32), d[start:p.i]...)
	for p.i < len(d) {
		c := d[p.i]
		switch {
		case c == '"':
			p.i++
			return string(out), true
		case c < 0x20:
			return "", false
		case c != '\\':
			out = append(out, c)
			p.i++
			continue
		}
		if p.i+1 >= len(d) {
			return "", false
		}
		switch e := d[p.i+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hex4(d[p.i:])
			if r < 0 {
				return "", false
			}
			if utf16.IsSurrogate(r) {
				if pair := utf16.DecodeRune(r, hex4(d[p.i+6:])); pair != utf8.RuneError {
					out = utf8.AppendRune(out, pair)
					p.i += 12
					continue
				}
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
			p.i += 6
			continue
		default:
			return "", false
		}
		p.i += 2
	}
	return "", false
}

// hex4 reads the escape \uXXXX at the start of b, or returns -1.
func hex4(b []byte) rune {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range b[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}
