package spec

import "time"

// Settings are the settings that the protocol leaves to a server, with the values of
// the reference server in table 15.4: the conformance harness must be told those of
// another server.
type Settings struct {
	ListenAddress      string
	BufferSize         int           // frames per session (BUF-3, SEQ-2)
	BufferBytes        int           // bytes per session (BUF-7)
	SessionTTL         time.Duration // after an abrupt drop (BUF-1, BUF-6)
	KeepaliveInterval  time.Duration // KA-1
	MaxMessageBytes    int           // the client message size limit (ENV-7)
	QueueDepth         int           // queries waiting behind the running one (STREAM-8)
	QueueBytes         int           // bytes of their text per session (STREAM-8)
	DrainTimeout       time.Duration // SHUT-3
	RememberedQueryIDs int           // finished query ids per session (QID-4)
	RememberedBytes    int           // bytes of their terminal frames per session (QID-4)
	MaxSessions        int           // sessions held at once (HS-10)
	MaxMemoryBytes     int           // bytes held for all clients together (BUF-7)

	// Connection hygiene: bounds on what one client may hold, and on how long an HTTP
	// connection may take or sit idle before it is closed.
	MaxConnsPerIP     int           // connections at once per client address (HS-14)
	MaxConnsPerUser   int           // connections at once per user (HS-14)
	QueryRate         float64       // queries a second per client: user, or address without auth (STREAM-11)
	QueryBurst        int           // queries at once per client beyond the rate (STREAM-11)
	ReadHeaderTimeout time.Duration // to read a request's headers
	ReadTimeout       time.Duration // to read a whole request
	HTTPWriteTimeout  time.Duration // to write a plain HTTP answer
	IdleTimeout       time.Duration // a keep-alive connection waiting for its next request
	MaxHeaderBytes    int           // a request's line and headers
}

// Defaults returns the defaults of the reference server, table 15.4 of PROTOCOL.md:
// the one source of the reference server's defaults and of the harness's assumptions
// (a test ties them to the table).
func Defaults() Settings {
	return Settings{
		ListenAddress:      "localhost:8050",
		BufferSize:         100,
		BufferBytes:        1 << 20,
		SessionTTL:         5 * time.Minute,
		KeepaliveInterval:  30 * time.Second,
		MaxMessageBytes:    1 << 20,
		QueueDepth:         16,
		QueueBytes:         1 << 20,
		DrainTimeout:       30 * time.Second,
		RememberedQueryIDs: 100,
		RememberedBytes:    4 << 20,
		MaxSessions:        10000,
		MaxMemoryBytes:     1 << 30,
		MaxConnsPerIP:      128,
		MaxConnsPerUser:    32,
		QueryRate:          5,
		QueryBurst:         200,
		ReadHeaderTimeout:  10 * time.Second,
		ReadTimeout:        30 * time.Second,
		HTTPWriteTimeout:   30 * time.Second,
		IdleTimeout:        30 * time.Second,
		MaxHeaderBytes:     32 << 10,
	}
}
