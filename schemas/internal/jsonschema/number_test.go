// Added for agentws (see README.md): not part of github.com/santhosh-tekuri/jsonschema/v6.

package jsonschema

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// TestNumberFastPaths holds exactInt64 and knownInteger to upstream's value of a
// number, the rational of its fmt.Sprint text: when they say they are sure, they agree
// with it.
func TestNumberFastPaths(t *testing.T) {
	values := []any{
		json.Number("0"), json.Number("-0"), json.Number("0.0"), json.Number("-0.000"), json.Number("007"),
		json.Number("1.5"), json.Number("1e2"), json.Number("1E+2"), json.Number("1.0e0"), json.Number("0x10"),
		json.Number("+5"), json.Number("1_000"), json.Number("1."), json.Number(".5"), json.Number(""), json.Number("-"),
		json.Number("1/2"), json.Number("999999999999999999"), json.Number("-999999999999999999"),
		json.Number("9223372036854775807"), json.Number("9223372036854775808"), json.Number("123456789012345678901234567890"),
		json.Number("123456789012345678901234567890.000"), json.Number("123456789012345678901234567890.001"),
		json.Number("1e400"), json.Number("NaN"), json.Number(" 1"),
		0, -1, math.MaxInt, math.MinInt, int8(math.MinInt8), int16(math.MaxInt16), int32(math.MinInt32), int64(math.MaxInt64),
		uint(math.MaxUint), uint(math.MaxInt64), uint8(255), uint16(65535), uint32(math.MaxUint32), uint64(math.MaxUint64), uint64(1 << 63),
		0.0, math.Copysign(0, -1), 0.5, -1.5, 1e20, 1e21, 1e22, 1 << 53, 1<<53 - 1, -(1<<53 - 1), 1<<53 + 2, 1 << 60, 1e300,
		math.MaxFloat64, math.SmallestNonzeroFloat64, 4503599627370495.5, 0.1, 1e-7,
		math.Inf(1), math.Inf(-1), math.NaN(),
		float32(0), float32(0.1), float32(16777215), float32(16777216), float32(16777218), float32(1e30), float32(8388607.5),
		float32(math.Inf(1)), float32(math.NaN()),
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		f := math.Float64frombits(rng.Uint64())
		values = append(values, f, float32(f), math.Trunc(f), math.Ldexp(rng.Float64(), rng.IntN(70)), math.Trunc(math.Ldexp(rng.Float64(), rng.IntN(70))),
			float32(math.Trunc(math.Ldexp(rng.Float64(), rng.IntN(30)))), int64(rng.Uint64()), rng.Uint64(),
			json.Number(fmt.Sprint(int64(rng.Uint64()))), json.Number(fmt.Sprint(rng.Uint64())),
			json.Number(fmt.Sprintf("%d.%03d", rng.IntN(1000)-500, rng.IntN(3)*rng.IntN(1000))))
	}
	for _, v := range values {
		rat, parsed := new(big.Rat).SetString(fmt.Sprint(v))
		if n, ok := exactInt64(v); ok {
			if !parsed || !rat.IsInt() || rat.Cmp(new(big.Rat).SetInt64(n)) != 0 {
				t.Errorf("exactInt64(%T %v) = %d, but upstream's value is %v (parsed %v)", v, v, n, rat, parsed)
			}
		}
		if isInt, known := knownInteger(v); known && isInt != (parsed && rat.IsInt()) {
			t.Errorf("knownInteger(%T %v) = %v, but upstream's value is %v (parsed %v)", v, v, isInt, rat, parsed)
		}
	}
}
