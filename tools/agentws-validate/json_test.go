package main

import "encoding/json"

var (
	jsonUnmarshal = json.Unmarshal
	jsonMarshal   = json.Marshal
)
