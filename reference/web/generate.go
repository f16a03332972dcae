package web

//go:generate go run ../../tools/tsgen -o messages.gen.d.ts ../../schemas/client-message.json ../../schemas/server-message.json
