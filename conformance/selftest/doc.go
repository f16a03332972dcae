// Package selftest holds the conformance harness's own tests: the harness against
// deliberately broken and hostile servers, its catalogue, its reports, and the
// reference server run as a separate process. They live apart from package
// conformance so that a user's go test ./conformance -args -url … runs the
// conformance cases and nothing else.
package selftest
