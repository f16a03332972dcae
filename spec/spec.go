package spec

import (
	"bufio"
	"bytes"
	"embed"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// FS holds PROTOCOL.md, asyncapi.yaml, openapi.src.yaml and openapi.yaml.
//
//go:embed PROTOCOL.md asyncapi.yaml openapi.src.yaml openapi.yaml
var FS embed.FS

// Level is the RFC 2119 level of a rule.
type Level string

// The levels of rules.
const (
	Must   Level = "MUST"
	Should Level = "SHOULD"
	May    Level = "MAY"
)

// Rule is one requirement of PROTOCOL.md.
type Rule struct {
	ID         string // "STREAM-3"
	Level      Level
	Capability string // the capability that makes the rule binding; "" for core rules
	Client     bool   // a rule for clients, which a server harness cannot check
	Section    string // the heading of the section the rule is in
	Text       string // the rule's text, on one line
}

// Area returns the part of the id before the dash: "STREAM" for "STREAM-3".
func (r Rule) Area() string { a, _, _ := strings.Cut(r.ID, "-"); return a }

// Number returns the part of the id after the dash: 3 for "STREAM-3".
func (r Rule) Number() int {
	_, n, _ := strings.Cut(r.ID, "-")
	i, _ := strconv.Atoi(n)
	return i
}

var (
	ruleStart = regexp.MustCompile(`^- \*\*([A-Z]+-[1-9][0-9]*)\*\* \((MUST|SHOULD|MAY)(?:; (client|capability: [a-z][a-z0-9_]*))?\) (.*)$`)
	looksLike = regexp.MustCompile(`^- \*\*[A-Z]+-`)
	version   = regexp.MustCompile(`(?m)^Version ([0-9]+\.[0-9]+)\b`)
)

// Rules parses the rules of PROTOCOL.md, in document order.
func Rules() ([]Rule, error) {
	data, err := FS.ReadFile("PROTOCOL.md")
	if err != nil {
		return nil, err
	}
	return ParseRules(data)
}

// ParseRules parses rules written as in PROTOCOL.md: a list item
// "- **ID** (LEVEL[; client | capability: NAME]) text", continued on indented lines.
func ParseRules(doc []byte) ([]Rule, error) {
	var rules []Rule
	var cur *Rule
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(doc))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#"):
			section = strings.TrimSpace(strings.TrimLeft(line, "#"))
			cur = nil
		case cur != nil && strings.HasPrefix(line, "  ") && strings.TrimSpace(line) != "":
			cur.Text += " " + strings.TrimSpace(line)
		case looksLike.MatchString(line):
			m := ruleStart.FindStringSubmatch(line)
			if m == nil {
				return nil, fmt.Errorf("PROTOCOL.md:%d: malformed rule, want \"- **AREA-N** (LEVEL[; client | capability: NAME]) text\": %s", n, line)
			}
			rules = append(rules, Rule{ID: m[1], Level: Level(m[2]), Section: section, Text: m[4]})
			cur = &rules[len(rules)-1]
			switch tag := m[3]; {
			case tag == "client":
				cur.Client = true
			case tag != "":
				cur.Capability = strings.TrimPrefix(tag, "capability: ")
			}
		default:
			cur = nil
		}
	}
	return rules, sc.Err()
}

// Version returns the protocol version PROTOCOL.md states ("1.1").
func Version() string {
	data, err := FS.ReadFile("PROTOCOL.md")
	if err != nil {
		panic(err)
	}
	m := version.FindSubmatch(data)
	if m == nil {
		panic("spec: PROTOCOL.md states no version")
	}
	return string(m[1])
}
