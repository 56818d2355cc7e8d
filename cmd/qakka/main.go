// Command qakka runs a Qakka server (qakka serve) and talks to one as a
// client (queue, send, receive, ack and the other subcommands).
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "qakka:", err)
		os.Exit(1)
	}
}
