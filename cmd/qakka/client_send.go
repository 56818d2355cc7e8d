package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
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
		regions     string
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

A payload that starts with { or [ but is not valid JSON is rejected unless
--content-type is given, so that a typo in JSON is not sent as text.

With --regions the message is stored in the regions named there instead of
the queue's default destinations (LOCAL when the queue has none): a
comma-separated list of region names and the keywords LOCAL (the server's
own region), REMOTE (every other configured region) and ALL. The server
stores its own copy at once and forwards the others through its durable
outbox, so they arrive later.

A send is never repeated automatically: if the command fails after the
server stored the message, sending again stores a second copy.`,
		Example: `  qakka send orders '{"id": 42, "item": "book"}'
  qakka send orders --file invoice.pdf --content-type application/pdf
  echo 'hello' | qakka send orders
  qakka send orders '{"id": 43}' --delay 30s --expiration 1h
  qakka send orders - < order.json --output json
  qakka send orders '{"id": 44}' --regions LOCAL,eu-west`,
		Args: sendArgs,
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "read the payload from this file")
	f.StringVarP(&contentType, "content-type", "t", "", "content type of the payload (default: detected, see above)")
	f.DurationVar(&delay, "delay", 0, "postpone delivery, such as 10s or 5m (default: the queue's default delay)")
	f.DurationVar(&expiration, "expiration", 0, "drop the message if unacked after this long, in whole seconds such as 1h (default: the queue's retention)")
	f.StringVar(&regions, "regions", "", "regions to store the message in: region names and the keywords LOCAL, REMOTE and ALL, comma-separated, such as LOCAL,eu-west (default: the queue's default destinations)")

	o := addClientFlags(cmd)
	cmd.RunE = runWith(o, nil, func(s *session, args []string) error {
		data, err := readPayload(cmd, args[1:], file)
		if err != nil {
			return err
		}
		opts := client.SendOptions{ContentType: contentType, Regions: regions}
		if opts.ContentType == "" {
			if opts.ContentType, err = detectContentType(data); err != nil {
				return err
			}
		}
		var limits []flagValue
		if cmd.Flags().Changed("delay") {
			if _, err := wholeMillis("--delay", delay); err != nil {
				return err
			}
			opts.Delay = &delay
			limits = append(limits, durationFlag("--delay", "delay", delay, time.Millisecond))
		}
		if _, err := wholeSeconds("--expiration", expiration); err != nil {
			return err
		}
		opts.Expiration = expiration
		limits = append(limits, durationFlag("--expiration", "expiration", expiration, time.Second))

		res, err := s.client.Send(s.ctx, args[0], data, opts)
		if err != nil {
			return rewordLimit(err, limits...)
		}
		if s.jsonOutput() {
			return s.printJSON(res)
		}
		s.printf("Sent %s to queue %q.\n", describeSize(len(data)), args[0])
		rows := [][2]string{
			{"Message ID", res.MessageID},
			{"Queue message ID", res.QueueMessageID},
			{"Content type", opts.ContentType},
			{"Deliver at", formatTime(res.DeliverDate)},
			{"Expires at", formatTime(res.ExpirationDate)},
		}
		if len(res.Regions) > 0 {
			rows = append(rows, [2]string{"Regions", strings.Join(res.Regions, ", ")})
		}
		if len(res.PendingRegions) > 0 {
			rows = append(rows, [2]string{"Pending regions", strings.Join(res.PendingRegions, ", ")})
		}
		printFields(s.out, rows)
		return nil
	})
	return cmd
}

// sendArgs requires QUEUE and allows DATA, and shows an example when
// either is wrong.
func sendArgs(cmd *cobra.Command, args []string) error {
	switch {
	case len(args) == 0:
		return fmt.Errorf("missing QUEUE: usage is 'qakka %s', for example qakka send orders '{\"id\": 42}'", usagePath(cmd))
	case len(args) > 2:
		return fmt.Errorf("too many arguments %q: usage is 'qakka %s', so quote DATA that contains spaces, for example qakka send orders 'hello world'", args[2:], usagePath(cmd))
	}
	return nil
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
// --content-type. It rejects UTF-8 text that starts like JSON, with { or [,
// but is not valid JSON: sent as text, a typo in JSON would go unnoticed
// until a receiver failed to parse it.
func detectContentType(data []byte) (string, error) {
	switch {
	case len(data) > 0 && json.Valid(data):
		return "application/json", nil
	case utf8.Valid(data) && startsLikeJSON(data):
		return "", invalidJSONPayload(data)
	case utf8.Valid(data):
		return "text/plain; charset=utf-8", nil
	}
	return "application/octet-stream", nil
}

// startsLikeJSON reports whether the first character of data, after
// leading whitespace, opens a JSON object or array.
func startsLikeJSON(data []byte) bool {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	return len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[')
}

// invalidJSONPayload explains why a payload that starts like JSON was not
// sent, with the place where its syntax breaks.
func invalidJSONPayload(data []byte) error {
	first := bytes.TrimLeft(data, " \t\r\n")[:1]
	problem := "is not valid JSON"
	var syntax *json.SyntaxError
	if err := json.Unmarshal(data, new(json.RawMessage)); errors.As(err, &syntax) {
		problem = fmt.Sprintf("is not valid JSON at byte %d (%v)", syntax.Offset, syntax)
	}
	return fmt.Errorf("the payload starts with %q but %s: fix the JSON, or give --content-type text/plain to send it as text anyway", first, problem)
}

func describeSize(n int) string {
	if n == 1 {
		return "1 byte"
	}
	return fmt.Sprintf("%d bytes", n)
}
