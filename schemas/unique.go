package schemas

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// checkUnique reports an object of doc, decoded from data, that has two members of the
// same name (ENV-1, as I-JSON, RFC 7493 section 2.3, requires). encoding/json keeps the
// last of them, another decoder may keep the first: a validator and a server that
// disagree on which one counts could each check a different message.
//
// Every member of the text has one colon outside strings, and every member that
// survives decoding is one key of a map: the two counts differ exactly when a name
// repeats. Only then is the text walked again to name the member.
func checkUnique(data []byte, doc any) error {
	if colons(data) == keys(doc) {
		return nil
	}
	return findDuplicate(data)
}

// colons counts the colons outside strings of a valid JSON text.
func colons(data []byte) int {
	n, inString := 0, false
	for i := 0; i < len(data); i++ {
		switch c := data[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case !inString && c == ':':
			n++
		}
	}
	return n
}

// keys counts the keys of every map in a decoded value.
func keys(doc any) int {
	switch v := doc.(type) {
	case map[string]any:
		n := len(v)
		for _, e := range v {
			n += keys(e)
		}
		return n
	case []any:
		n := 0
		for _, e := range v {
			n += keys(e)
		}
		return n
	}
	return 0
}

// A level is an object or array being walked by findDuplicate.
type level struct {
	names   map[string]bool // the member names seen so far; nil for an array
	pointer string          // the level's JSON pointer
	key     string          // the member or index being read, escaped for a pointer
	index   int             // an array's next index
	wantKey bool            // an object's next string token is a member name
}

// findDuplicate walks a valid JSON text and reports its first repeated member name.
func findDuplicate(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var stack []*level
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // the text was decoded before: this is its end
		}
		var top *level
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if s, isStr := tok.(string); isStr && top != nil && top.wantKey {
			if top.names[s] {
				return single("", top.pointer+"/"+escapePointer(s), CodeInvalidJSON, "invalid JSON: duplicate member name %q", s)
			}
			top.names[s], top.key, top.wantKey = true, escapePointer(s), false
			continue
		}
		if top != nil && top.names == nil && tok != json.Delim(']') {
			top.key = strconv.Itoa(top.index)
			top.index++
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &level{names: map[string]bool{}, pointer: childPointer(top), wantKey: true})
		case json.Delim('['):
			stack = append(stack, &level{pointer: childPointer(top)})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) > 0 {
				stack[len(stack)-1].wantKey = stack[len(stack)-1].names != nil
			}
		default:
			if top != nil {
				top.wantKey = top.names != nil
			}
		}
	}
}

func childPointer(parent *level) string {
	if parent == nil {
		return ""
	}
	return parent.pointer + "/" + parent.key
}
