package spec

import "time"

// Settings are the settings of a server that the protocol leaves to it and that the
// conformance harness must be told of another server.
type Settings struct {
	ListenAddress      string
	BufferSize         int           // frames per session (BUF-3, SEQ-2)
	BufferBytes        int           // bytes per session (BUF-7)
	SessionTTL         time.Duration // after an abrupt drop (BUF-1, BUF-6)
	KeepaliveInterval  time.Duration // KA-1
	MaxMessageBytes    int           // the client message size limit (ENV-7)
	QueueDepth         int           // queries waiting behind the running one (STREAM-8)
	DrainTimeout       time.Duration // SHUT-3
	RememberedQueryIDs int           // finished query ids per session (QID-4)
	MaxSessions        int           // sessions held at once (HS-10)
}

// Defaults returns the defaults of the reference server, table 15.4 of PROTOCOL.md:
// the one source of the reference server's defaults and of the harness's assumptions
// (a test ties them to the table).
func Defaults() Settings {
	return Settings{
		ListenAddress:      ":8050",
		BufferSize:         100,
		BufferBytes:        1 << 20,
		SessionTTL:         5 * time.Minute,
		KeepaliveInterval:  30 * time.Second,
		MaxMessageBytes:    1 << 20,
		QueueDepth:         16,
		DrainTimeout:       30 * time.Second,
		RememberedQueryIDs: 100,
		MaxSessions:        10000,
	}
}
