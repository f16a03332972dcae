package adminapi

// The bundle of spec/openapi.yaml is made here too, as in schemas/httpapi, so that
// this package never generates from a stale one.
//go:generate go run ../../tools/specgen openapi -in ../../spec/openapi.src.yaml -o ../../spec/openapi.yaml
//go:generate go tool oapi-codegen -config cfg.yaml ../../spec/openapi.yaml
