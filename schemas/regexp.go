package schemas

import (
	"regexp"
	"regexp/syntax"

	"github.com/agentws/agentws/schemas/internal/jsonschema"
)

// compileRegexp is the validator's regexp engine (jsonschema.Compiler.UseRegexpEngine):
// Go's regexp, as the library's own default, but for the patterns the schemas use most,
// one character class repeated over the whole text (^[A-Za-z0-9._:~-]+$, the ids),
// which it matches with a table of bytes: the same strings, without a regexp's
// machinery for each id of each frame.
func compileRegexp(pattern string) (jsonschema.Regexp, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	if set, ok := byteClass(pattern); ok {
		return &classRegexp{pattern: pattern, set: set}, nil
	}
	return re, nil
}

// byteClass returns the bytes of pattern when it is ^[class]+$ with an ASCII class:
// a text matches when it is not empty and each of its bytes is in the class.
func byteClass(pattern string) (set [256]bool, ok bool) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return set, false
	}
	re = re.Simplify()
	if re.Op != syntax.OpConcat || len(re.Sub) != 3 ||
		re.Sub[0].Op != syntax.OpBeginText || re.Sub[2].Op != syntax.OpEndText ||
		re.Sub[1].Op != syntax.OpPlus || re.Sub[1].Sub[0].Op != syntax.OpCharClass {
		return set, false
	}
	class := re.Sub[1].Sub[0].Rune // pairs of inclusive ranges
	for i := 0; i+1 < len(class); i += 2 {
		lo, hi := class[i], class[i+1]
		if hi > 0x7f { // a class beyond ASCII matches runes, not bytes
			return set, false
		}
		for r := lo; r <= hi; r++ {
			set[r] = true
		}
	}
	return set, true
}

// A classRegexp matches ^[class]+$ with a table of the class's bytes.
type classRegexp struct {
	pattern string
	set     [256]bool
}

func (c *classRegexp) MatchString(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !c.set[s[i]] {
			return false
		}
	}
	return true
}

func (c *classRegexp) String() string { return c.pattern }
