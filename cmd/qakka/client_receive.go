package main

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/qakka/qakka/client"
)

// receivedMessage is one message as receive prints it with --output json:
// the delivery plus where its payload went.
type receivedMessage struct {
	client.QueueMessage
	// Text is a fetched payload that is valid UTF-8.
	Text string `json:"text,omitempty"`
	// Base64 is any other fetched payload.
	Base64 string `json:"base64,omitempty"`
	// File is the path where --save-dir stored the payload.
	File string `json:"file,omitempty"`
}

func newReceiveCommand() *cobra.Command {
	var (
		count      int
		wait       time.Duration
		visibility time.Duration
		saveDir    string
	)
	cmd := &cobra.Command{
		Use:   "receive QUEUE",
		Short: "Receive messages from a queue",
		Long: `Receive up to --count messages and print them. Each received message is
invisible to other receivers until its visibility timeout ends; ack it with
'qakka ack QUEUE ID' using its queue message ID, or it is delivered again.

JSON payloads arrive inline. Other payloads are fetched and printed: text as
it is, binary data as base64. With --save-dir every payload is written to a
file in that directory named after its queue message ID instead.`,
		Example: `  qakka receive orders
  qakka receive orders --count 10 --wait 5s
  qakka receive orders --visibility 5m --output json
  qakka receive thumbnails --save-dir ./incoming`,
		Args: exactArgs("QUEUE"),
	}
	f := cmd.Flags()
	f.IntVarP(&count, "count", "n", 1, "receive at most this many messages")
	f.DurationVarP(&wait, "wait", "w", 0, "wait this long for a first message when none is available, such as 10s (default: the queue's receive wait)")
	f.DurationVar(&visibility, "visibility", 0, "keep the messages invisible to other receivers this long, in whole seconds such as 2m (default: the queue's visibility timeout)")
	f.StringVarP(&saveDir, "save-dir", "d", "", "write each payload to a file in this directory, named after its queue message ID")

	o := addClientFlags(cmd)
	waitFlag := func() time.Duration { return max(wait, 0) }
	cmd.RunE = runWith(o, waitFlag, func(s *session, args []string) error {
		if count < 1 {
			return fmt.Errorf("invalid --count %d: must be at least 1", count)
		}
		opts := client.ReceiveOptions{Count: count}
		limits := []flagValue{countFlag("--count", "count", int64(count))}
		if cmd.Flags().Changed("wait") {
			if _, err := wholeMillis("--wait", wait); err != nil {
				return err
			}
			opts.Wait = &wait
			limits = append(limits, durationFlag("--wait", "wait", wait, time.Millisecond))
		}
		if _, err := wholeSeconds("--visibility", visibility); err != nil {
			return err
		}
		opts.Visibility = visibility
		limits = append(limits, durationFlag("--visibility", "visibility", visibility, time.Second))
		if saveDir != "" {
			if err := os.MkdirAll(saveDir, 0o755); err != nil {
				return fmt.Errorf("create --save-dir: %w", err)
			}
		}

		msgs, err := s.client.Receive(s.ctx, args[0], opts)
		if err != nil {
			return rewordLimit(err, limits...)
		}
		out := make([]receivedMessage, 0, len(msgs))
		for _, m := range msgs {
			rm, err := loadPayload(s, m, saveDir)
			if err != nil {
				return err
			}
			out = append(out, rm)
		}

		if s.jsonOutput() {
			return s.printJSON(out)
		}
		printReceived(s, args[0], out)
		return nil
	})
	return cmd
}

// loadPayload fetches the payload of a message that did not come inline,
// and saves it under dir when dir is set.
func loadPayload(s *session, m client.QueueMessage, dir string) (receivedMessage, error) {
	rm := receivedMessage{QueueMessage: m}
	if m.Href == "" && dir == "" {
		return rm, nil
	}

	data, _, err := s.client.Payload(s.ctx, m)
	if err != nil {
		return rm, err
	}
	if dir != "" {
		// The id names the file, and it comes from the server: accept only
		// the characters of a UUID, so that it cannot leave dir.
		if !isFileSafeID(m.QueueMessageID) {
			return rm, fmt.Errorf("save payload: queueMessageId %q from the server is not a UUID", m.QueueMessageID)
		}
		path := filepath.Join(dir, m.QueueMessageID)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return rm, fmt.Errorf("save payload of %s: %w", m.QueueMessageID, err)
		}
		rm.File = path
		rm.Data = ""
		return rm, nil
	}
	if utf8.Valid(data) {
		rm.Text = string(data)
	} else {
		rm.Base64 = base64.StdEncoding.EncodeToString(data)
	}
	return rm, nil
}

// isFileSafeID reports whether id is made of hexadecimal digits and
// dashes only, as a UUID is.
func isFileSafeID(id string) bool {
	if id == "" {
		return false
	}
	for _, r := range id {
		if !strings.ContainsRune("0123456789abcdefABCDEF-", r) {
			return false
		}
	}
	return true
}

func printReceived(s *session, queue string, msgs []receivedMessage) {
	if len(msgs) == 0 {
		s.printf("No messages available in queue %q.\n", queue)
		return
	}
	for i, m := range msgs {
		if i > 0 {
			s.printf("\n")
		}
		rows := [][2]string{
			{"Queue message ID", m.QueueMessageID},
			{"Message ID", m.MessageID},
			{"Content type", m.ContentType},
			{"Receive count", fmt.Sprint(m.ReceiveCount)},
			{"Sent", formatTime(m.SentDate)},
			{"Visible until", formatTime(m.VisibleUntil)},
		}
		if m.SourceQueue != "" {
			rows = append(rows, [2]string{"Dead-lettered from", m.SourceQueue})
		}

		// A payload of several lines goes below the fields, indented, so
		// that it does not break their alignment.
		var block string
		switch {
		case m.File != "":
			rows = append(rows, [2]string{"Saved to", m.File})
		case m.Base64 != "":
			rows = append(rows, [2]string{"Data (base64)", m.Base64})
		default:
			text := m.Data
			if m.Href != "" {
				text = m.Text
			}
			text = strings.TrimSuffix(text, "\n")
			if strings.Contains(text, "\n") {
				rows = append(rows, [2]string{"Data", ""})
				block = "  " + strings.ReplaceAll(text, "\n", "\n  ") + "\n"
			} else {
				rows = append(rows, [2]string{"Data", text})
			}
		}
		printFields(s.out, rows)
		s.printf("%s", block)
	}
}
