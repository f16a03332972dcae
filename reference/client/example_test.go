package client_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/agentws/agentws/reference/client"
	"github.com/agentws/agentws/reference/server"
)

func Example() {
	// The reference server on its defaults (fixture agent), for the example's sake.
	cfg := server.DefaultConfig()
	srv, _ := server.New(cfg)
	defer srv.Close()
	ts := httptest.NewServer(srv)
	defer ts.Close()
	endpoint := "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws"

	ctx := context.Background()
	c, err := client.Dial(ctx, endpoint, client.Options{SessionID: "example"})
	if err != nil {
		fmt.Println(err) // refused: the status and the code of the refusal
		return
	}
	defer c.Close()
	q := c.Query(ctx, "What is the capital of France?")
	for chunk, err := range q.Chunks() {
		if err != nil {
			fmt.Println("\nnot answered in full:", err) // gap, no_resume, replaced, ...
			return
		}
		fmt.Print(chunk)
	}
	fmt.Println()
	// Output: Echo: What is the capital of France?
}
