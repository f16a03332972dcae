package msg

//go:generate go run ../../tools/specgen messages -o messages.gen.yaml ../client-message.json ../server-message.json
//go:generate go tool oapi-codegen -config cfg.yaml messages.gen.yaml
