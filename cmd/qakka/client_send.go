package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/qakka/qakka/client"
)

func newSendCommand() *cobra.Command {
	var (
		file        string
		contentType string
		delay       time.Duration
		expiration  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "send QUEUE [DATA]",
		Short: "Send a message to a queue",
		Long: `Send one message to a queue and print its ids once the server has stored it.

The payload is DATA, the contents of --file PATH, or standard input when DATA
is "-" or left out and standard input is not a terminal.

Without --content-type, a payload that is valid JSON is sent as
application/json (receivers get it inline), other UTF-8 text as
text/plain; charset=utf-8, and anything else as application/octet-stream.

A send is never repeated automatically: if the command fails after the
server stored the message, sending again stores a second copy.`,
		Example: `  qakka send orders '{"id": 42, "item": "book"}'
  qakka send orders --file invoice.pdf --content-type application/pdf
  echo 'hello' | qakka send orders
  qakka send orders '{"id": 43}' --delay 30s --expiration 1h
  qakka send orders - < order.json --output json`,
		Args: cobra.RangeArgs(1, 2),
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "read the payload from this file")
	f.StringVarP(&contentType, "content-type", "t", "", "content type of the payload (default: detected, see above)")
	f.DurationVar(&delay, "delay", 0, "postpone delivery, such as 10s or 5m (default: the queue's default delay)")
	f.DurationVar(&expiration, "expiration", 0, "drop the message if unacked after this long, in whole seconds such as 1h (default: the queue's retention)")

	o := addClientFlags(cmd)
	cmd.RunE = runWith(o, nil, func(s *session, args []string) error {
		data, err := readPayload(cmd, args[1:], file)
		if err != nil {
			return err
		}
		opts := client.SendOptions{ContentType: contentType}
		if opts.ContentType == "" {
			opts.ContentType = detectContentType(data)
		}
		if cmd.Flags().Changed("delay") {
			if _, err := wholeMillis("--delay", delay); err != nil {
				return err
			}
			opts.Delay = &delay
		}
		if _, err := wholeSeconds("--expiration", expiration); err != nil {
			return err
		}
		opts.Expiration = expiration

		res, err := s.client.Send(s.ctx, args[0], data, opts)
		if err != nil {
			return err
		}
		if s.jsonOutput() {
			return s.printJSON(res)
		}
		s.printf("Sent %s to queue %q.\n", describeSize(len(data)), args[0])
		printFields(s.out, [][2]string{
			{"Message ID", res.MessageID},
			{"Queue message ID", res.QueueMessageID},
			{"Content type", opts.ContentType},
			{"Deliver at", formatTime(res.DeliverDate)},
			{"Expires at", formatTime(res.ExpirationDate)},
		})
		return nil
	})
	return cmd
}

// readPayload returns the payload from the DATA argument, the file or
// standard input, and rejects an ambiguous or missing source.
func readPayload(cmd *cobra.Command, rest []string, file string) ([]byte, error) {
	arg, hasArg := "", len(rest) > 0
	if hasArg {
		arg = rest[0]
	}
	switch {
	case file != "" && hasArg:
		return nil, fmt.Errorf("give the payload either as DATA or with --file, not both")
	case file != "":
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read --file: %w", err)
		}
		return data, nil
	case hasArg && arg != "-":
		return []byte(arg), nil
	}

	in := cmd.InOrStdin()
	if !hasArg && isTerminal(in) {
		return nil, errors.New("missing message: give DATA, --file PATH, or pipe the payload on standard input")
	}
	data, err := io.ReadAll(in)
	if err != nil {
		return nil, fmt.Errorf("read standard input: %w", err)
	}
	return data, nil
}

// isTerminal reports whether r is a character device such as a terminal,
// from which a payload is not read unless asked for with "-".
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// detectContentType chooses the content type of a payload given without
// --content-type.
func detectContentType(data []byte) string {
	switch {
	case len(data) > 0 && json.Valid(data):
		return "application/json"
	case utf8.Valid(data):
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}

func describeSize(n int) string {
	if n == 1 {
		return "1 byte"
	}
	return fmt.Sprintf("%d bytes", n)
}
