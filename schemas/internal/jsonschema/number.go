// Added for agentws (see README.md): not part of github.com/santhosh-tekuri/jsonschema/v6.

package jsonschema

import (
	"encoding/json"
	"math"
	"math/big"
)

// Upstream gives each number the value of the rational that its fmt.Sprint text
// denotes (new(big.Rat).SetString(fmt.Sprint(v))). The functions here find that value
// without the text or the rational when they can be sure of it, and say so; when they
// cannot, the caller does what upstream does.

// exactInt64 returns the value of number v when it is an integer that an int64 holds
// and that is certain without v's text.
func exactInt64(v any) (int64, bool) {
	switch v := v.(type) {
	case json.Number:
		n, isInt, fits, ok := plainDecimal(string(v))
		return n, ok && isInt && fits
	case int:
		return int64(v), true
	case int8:
		return int64(v), true
	case int16:
		return int64(v), true
	case int32:
		return int64(v), true
	case int64:
		return v, true
	case uint:
		return int64(v), uint64(v) <= math.MaxInt64
	case uint8:
		return int64(v), true
	case uint16:
		return int64(v), true
	case uint32:
		return int64(v), true
	case uint64:
		return int64(v), v <= math.MaxInt64
	case float64:
		// The shortest text that gives back an integral float64 below 2^53 is that
		// integer's: the integers there are all float64s, one apart at most.
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return int64(v), true
		}
	case float32:
		if f := float64(v); f == math.Trunc(f) && math.Abs(f) < 1<<24 {
			return int64(f), true
		}
	}
	return 0, false
}

// knownInteger reports whether number v is an integer (isInteger's answer), when that
// is certain without v's text.
func knownInteger(v any) (isInt, known bool) {
	if _, ok := exactInt64(v); ok {
		return true, true
	}
	switch v := v.(type) {
	case json.Number:
		_, isInt, _, ok := plainDecimal(string(v))
		return isInt, ok
	case float64:
		// A finite float64 with a fraction is below 2^52 in magnitude; an integer
		// there is a float64 itself, so the shortest text that gives back v is no
		// integer.
		if !math.IsInf(v, 0) && !math.IsNaN(v) && v != math.Trunc(v) {
			return false, true
		}
	case float32:
		if f := float64(v); !math.IsInf(f, 0) && !math.IsNaN(f) && f != math.Trunc(f) {
			return false, true
		}
	}
	return false, false
}

// plainDecimal parses s when it is -?[0-9]+(\.[0-9]+)? (ok): it reports whether its
// value is an integer (no digit but 0 after the point), and that integer when an int64
// holds it for certain (fits: 18 digits at most before the point).
func plainDecimal(s string) (n int64, isInt, fits, ok bool) {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	start := i
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		n = n*10 + int64(s[i]-'0') // wraps past 18 digits, which fits rules out
		i++
	}
	digits := i - start
	if digits == 0 {
		return 0, false, false, false
	}
	isInt = true
	if i < len(s) && s[i] == '.' {
		i++
		frac := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			if s[i] != '0' {
				isInt = false
			}
			i++
		}
		if i == frac {
			return 0, false, false, false
		}
	}
	if i != len(s) {
		return 0, false, false, false
	}
	if start == 1 {
		n = -n
	}
	return n, isInt, isInt && digits <= 18, true
}

// ratInt64 returns r when it is an integer that an int64 holds.
func ratInt64(r *big.Rat) (int64, bool) {
	if !r.IsInt() || !r.Num().IsInt64() {
		return 0, false
	}
	return r.Num().Int64(), true
}
