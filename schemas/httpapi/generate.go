package httpapi

//go:generate go run ../../tools/specgen openapi -in ../../spec/openapi.src.yaml -o ../../spec/openapi.yaml
//go:generate go tool oapi-codegen -config cfg.yaml ../../spec/openapi.yaml
