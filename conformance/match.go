package conformance

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Patterns are JSON values matched against frames. An object matches a frame that has
// every member it names, with a matching value (other members are ignored, as receivers
// ignore unknown fields); other values match by equality, except strings that start
// with @, which are placeholders:
//
//	@any           any value, present
//	@absent        the member is absent
//	@string        any string; @number, @integer, @bool, @object, @array likewise
//	@timestamp     an RFC 3339 date-time
//	@re:EXPR       a string matching the regular expression
//	@capture:NAME  any value, stored in the script's variable NAME
//	@@text         the literal string @text
//
// match reports how got differs from the pattern want, "" when it matches, and stores
// captures in captured.
func match(want, got any, path string, captured map[string]string) string {
	if s, ok := want.(string); ok && strings.HasPrefix(s, "@") && !strings.HasPrefix(s, "@@") {
		return matchPlaceholder(s, got, path, captured)
	}
	return matchLiteral(want, got, path, captured)
}

var timestampPattern = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})?$`)

// matchLiteral matches objects member by member, arrays item by item, and other
// values by equality (an @@ string standing for one starting with @).
func matchLiteral(want, got any, path string, captured map[string]string) string {
	if s, ok := want.(string); ok && strings.HasPrefix(s, "@@") {
		want = s[1:]
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: got %s, want an object", at(path), show(got))
		}
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			gv, present := g[k]
			if w[k] == "@absent" {
				if present {
					return fmt.Sprintf("%s/%s: got %s, want no such member", path, k, show(gv))
				}
				continue
			}
			if !present {
				return fmt.Sprintf("%s/%s: missing, want %s", path, k, show(w[k]))
			}
			if d := match(w[k], gv, path+"/"+k, captured); d != "" {
				return d
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: got %s, want %s", at(path), show(got), show(want))
		}
		for i := range w {
			if d := match(w[i], g[i], fmt.Sprintf("%s/%d", path, i), captured); d != "" {
				return d
			}
		}
		return ""
	}
	if !equal(want, got) {
		return fmt.Sprintf("%s: got %s, want %s", at(path), show(got), show(want))
	}
	return ""
}

func matchPlaceholder(p string, got any, path string, captured map[string]string) string {
	ok := true
	switch {
	case p == "@any":
	case p == "@string":
		_, ok = got.(string)
	case p == "@number":
		_, ok = got.(float64)
	case p == "@integer":
		_, ok = num(got)
	case p == "@bool":
		_, ok = got.(bool)
	case p == "@object":
		_, ok = got.(map[string]any)
	case p == "@array":
		_, ok = got.([]any)
	case p == "@timestamp":
		s, isStr := got.(string)
		ok = isStr && timestampPattern.MatchString(s)
	case strings.HasPrefix(p, "@re:"):
		re, err := regexp.Compile(p[len("@re:"):])
		if err != nil {
			return fmt.Sprintf("%s: bad pattern %q: %v", at(path), p, err)
		}
		s, isStr := got.(string)
		ok = isStr && re.MatchString(s)
	case strings.HasPrefix(p, "@capture:"):
		captured[p[len("@capture:"):]] = scalar(got)
	default:
		return fmt.Sprintf("%s: unknown placeholder %q", at(path), p)
	}
	if !ok {
		return fmt.Sprintf("%s: got %s, want %s", at(path), show(got), p)
	}
	return ""
}

func at(path string) string {
	if path == "" {
		return "(frame)"
	}
	return path
}

func equal(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func show(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return truncate(string(data), 200)
}

// scalar formats a captured value for a script variable.
func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return show(v)
}

// diffViews returns what a failure shows as expected and received: the pattern with
// each placeholder that matched replaced by the value it matched, and the value cut to
// the members the pattern names, so that a diff of the two shows only what is wrong.
func diffViews(want, got any) (any, any) {
	if s, ok := want.(string); ok && strings.HasPrefix(s, "@") && !strings.HasPrefix(s, "@@") {
		if matchPlaceholder(s, got, "", map[string]string{}) == "" {
			return got, got
		}
		return want, got
	}
	w, wok := want.(map[string]any)
	g, gok := got.(map[string]any)
	if !wok || !gok {
		return want, got
	}
	wv, gv := map[string]any{}, map[string]any{}
	for k, pv := range w {
		actual, present := g[k]
		switch {
		case pv == "@absent" && !present:
		case pv == "@absent":
			wv[k], gv[k] = "(absent)", actual
		case !present:
			wv[k] = pv
		default:
			wv[k], gv[k] = diffViews(pv, actual)
		}
	}
	return wv, gv
}
