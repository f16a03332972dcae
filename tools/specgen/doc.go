// Command specgen derives OpenAPI 3.0 documents from the protocol's JSON Schemas, so
// that oapi-codegen can generate Go code from them and nothing is written twice.
//
// The JSON Schemas in schemas/ (draft 2020-12) are the source of truth. OpenAPI 3.0,
// the only version oapi-codegen reads, has its own schema dialect; specgen converts
// between the two and refuses any keyword it cannot convert exactly.
//
//	specgen messages -o FILE SCHEMA.json...
//		writes an OpenAPI 3.0 document whose components are the given schemas and
//		every schema they reference, the input of the generated message types.
//	specgen openapi -in FILE -o FILE
//		bundles an OpenAPI 3.0 document whose $refs name schema files
//		("../schemas/health.json") into a self-contained one.
//
// Both outputs start with a "Code generated ... DO NOT EDIT." line. See the Makefile's
// generate target.
package main
