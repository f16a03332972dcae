package schemas

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// FS holds the schema files, named as in the repository ("query.json", ...).
//
//go:embed *.json
var FS embed.FS

// BaseURL is the base of every schema's $id: a schema file NAME.json has the $id
// BaseURL + "NAME.json".
const BaseURL = "https://agentws.dev/schemas/"

// Schema names a schema file without its extension: "query", "client-message",
// "health", ...
type Schema string

// The schemas that are not a single message type.
const (
	ClientMessage Schema = "client-message"
	ServerMessage Schema = "server-message"
	Health        Schema = "health"
	HTTPError     Schema = "http-error"
	// The bodies of the admin API (extension notice).
	Broadcast       Schema = "broadcast"
	BroadcastResult Schema = "broadcast-result"
	SessionInfo     Schema = "session-info"
	SessionList     Schema = "session-list"
	defsSchema      Schema = "defs"
)

// URL returns the schema's $id.
func (s Schema) URL() string { return BaseURL + string(s) + ".json" }

// File returns the schema's file name in [FS].
func (s Schema) File() string { return string(s) + ".json" }

// Direction says who sends a message.
type Direction string

// The directions of the protocol; Any accepts a message of either direction, chosen by
// its type.
const (
	Client Direction = "client"
	Server Direction = "server"
	Any    Direction = "any"
)

// ParseDirection parses "client", "server" or "any".
func ParseDirection(s string) (Direction, error) {
	switch d := Direction(s); d {
	case Client, Server, Any:
		return d, nil
	}
	return "", fmt.Errorf("unknown direction %q: want client, server or any", s)
}

// All returns the names of every schema file in [FS], sorted.
func All() []Schema {
	names, err := fs.Glob(FS, "*.json")
	if err != nil {
		panic(err) // the pattern is constant and valid
	}
	out := make([]Schema, 0, len(names))
	for _, n := range names {
		out = append(out, Schema(strings.TrimSuffix(path.Base(n), ".json")))
	}
	slices.Sort(out) // by name: broadcast before broadcast-result
	return out
}

// MessageTypes returns the message types of one direction (Client or Server), in the
// order the direction's union schema lists them. For Any it returns both, client first.
func MessageTypes(d Direction) []string {
	switch d {
	case Client:
		return slices.Clone(clientTypes)
	case Server:
		return slices.Clone(serverTypes)
	}
	return slices.Concat(clientTypes, serverTypes)
}

var clientTypes, serverTypes = unionTypes(ClientMessage), unionTypes(ServerMessage)

// unionTypes reads the enum of /properties/type of a union schema.
func unionTypes(s Schema) []string {
	data, err := FS.ReadFile(s.File())
	if err != nil {
		panic(err)
	}
	var doc struct {
		Properties struct {
			Type struct {
				Enum []string `json:"enum"`
			} `json:"type"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(data, &doc); err != nil || len(doc.Properties.Type.Enum) == 0 {
		panic(fmt.Sprintf("schemas: %s has no /properties/type/enum: %v", s.File(), err))
	}
	return doc.Properties.Type.Enum
}

// DirectionOf returns the direction of a message type, or "" for an unknown type.
func DirectionOf(msgType string) Direction {
	switch {
	case slices.Contains(clientTypes, msgType):
		return Client
	case slices.Contains(serverTypes, msgType):
		return Server
	}
	return ""
}
