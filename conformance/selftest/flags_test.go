package selftest_test

import "flag"

var flagUpdate = flag.Bool("update", false, "rewrite the command reference of conformance/README.md")
