package schemas

import (
	"regexp"
	"testing"
)

// The patterns the schemas use, and some that are not ^[class]+$.
var regexpPatterns = []string{
	`^[A-Za-z0-9._:~-]+$`,
	`^[a-z][a-z0-9_]*$`,
	`^[0-9]{4}-(0[1-9]|1[0-2])$`,
	`^[a-c]+`,
	`[a-c]+$`,
	`^[^a]+$`,
	`^[é]+$`,
	`^[\x00-\x7f]+$`,
	`^[a-c]*$`,
	`(?i)^[a-c]+$`,
}

// The byte-table matcher matches exactly what Go's regexp does, where it is used;
// the other patterns stay Go's regexps.
func FuzzClassRegexp(f *testing.F) {
	for _, s := range []string{"", "abc", "a-b.c:d~e_f", "ABC", "é", "a\x00", "\xff", "a b", "Ab9", "aé", "\xc3"} {
		f.Add(s)
	}
	compiled := map[string]struct {
		ours interface{ MatchString(string) bool }
		std  *regexp.Regexp
	}{}
	for _, p := range regexpPatterns {
		ours, err := compileRegexp(p)
		if err != nil {
			f.Fatal(err)
		}
		compiled[p] = struct {
			ours interface{ MatchString(string) bool }
			std  *regexp.Regexp
		}{ours, regexp.MustCompile(p)}
	}
	f.Fuzz(func(t *testing.T, s string) {
		for p, c := range compiled {
			if got, want := c.ours.MatchString(s), c.std.MatchString(s); got != want {
				t.Errorf("%s on %q: %v, Go's regexp says %v", p, s, got, want)
			}
		}
	})
}

func TestClassRegexpUsedWhereItApplies(t *testing.T) {
	for p, want := range map[string]bool{
		`^[A-Za-z0-9._:~-]+$`: true, `^[a-z][a-z0-9_]*$`: false, `^[é]+$`: false,
		`^[a-c]*$`: false, `^[a-c]+`: false, `^[^a]+$`: false, `(?i)^[a-c]+$`: true,
	} {
		re, err := compileRegexp(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, got := re.(*classRegexp); got != want {
			t.Errorf("%s: byte table %v, want %v", p, got, want)
		}
	}
}
