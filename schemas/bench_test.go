package schemas_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/agentws/agentws/schemas"
	"github.com/agentws/agentws/schemas/msg"
)

var typicalChunk = []byte(`{"type":"chunk","content":"The capital of France is Paris, which is also its largest city.","chunk_number":12,"session_id":"sess-7f3a9c","timestamp":"2025-10-25T12:34:56.789Z","query_id":"q-42","seq":57}`)

// BenchmarkValidateChunk measures messages validated per second for a typical chunk,
// parsing included: the work a server or the validator command does per frame.
func BenchmarkValidateChunk(b *testing.B) {
	for _, bc := range []struct {
		name   string
		dir    schemas.Direction
		strict bool
	}{
		{"server", schemas.Server, false},
		{"server-strict", schemas.Server, true},
		{"any", schemas.Any, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			v := newValidator(b, bc.strict)
			b.SetBytes(int64(len(typicalChunk)))
			b.ReportAllocs()
			for b.Loop() {
				if err := v.ValidateMessage(bc.dir, typicalChunk); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkDecodeChunk is the parsing part of BenchmarkValidateChunk alone.
func BenchmarkDecodeChunk(b *testing.B) {
	b.SetBytes(int64(len(typicalChunk)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := schemas.Decode(typicalChunk); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateDecodedChunk is the schema part of BenchmarkValidateChunk alone.
func BenchmarkValidateDecodedChunk(b *testing.B) {
	v := newValidator(b, false)
	doc, err := schemas.Decode(typicalChunk)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := v.ValidateMessageValue(schemas.Server, doc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeClient measures the server's path for a query frame, a typical one and
// one of 1 MiB: DecodeClient (parse, validate, bind the validated document), beside the
// path it replaced (validate, then encoding/json on the frame again).
func BenchmarkDecodeClient(b *testing.B) {
	for _, size := range []int{40, 1 << 20} {
		frame := []byte(`{"type":"query","query":"` + strings.Repeat("q", size) + `","query_id":"q-42"}`)
		v := newValidator(b, false)
		b.Run(fmt.Sprintf("bind/%d", size), func(b *testing.B) {
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.DecodeClient(frame); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("validate-then-unmarshal/%d", size), func(b *testing.B) {
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				var q msg.Query
				if err := v.ValidateMessage(schemas.Client, frame); err != nil {
					b.Fatal(err)
				}
				if err := json.Unmarshal(frame, &q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBindChunk is binding a decoded chunk to its generated Go type, as a client
// that acts on what it validated does (agentws-load, the conformance harness).
func BenchmarkBindChunk(b *testing.B) {
	doc, err := schemas.Decode(typicalChunk)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var c msg.Chunk
		if err := schemas.Bind(doc, &c); err != nil {
			b.Fatal(err)
		}
	}
}
