package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/qakka/qakka/client"
)

func newAckCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ack QUEUE ID...",
		Short: "Acknowledge received messages, deleting them",
		Long: `Acknowledge one or more received messages by their queue message IDs, which
deletes them. An ID stops working when the message's visibility timeout ends
and it is delivered again under a new ID.

With several IDs, each is acked on its own: the command reports every one
that failed and exits with status 1 if any did.

An ack is never repeated automatically: a repeat of an ack that succeeded
would report the message as not inflight.`,
		Example: `  qakka ack orders 0192f1c4-7d2a-7b3e-9c1d-2f4e5a6b7c8d
  qakka ack orders ID1 ID2 ID3
  qakka receive orders --output json | jq -r '.[].queueMessageId' | xargs qakka ack orders`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return fmt.Errorf("missing %s: usage is 'qakka ack QUEUE ID...'", []string{"QUEUE and ID", "ID"}[len(args)])
			}
			return nil
		},
	}
	o := addClientFlags(cmd)
	cmd.RunE = runWith(o, nil, func(s *session, args []string) error {
		queue, ids := args[0], args[1:]
		if len(ids) == 1 {
			if err := s.client.Ack(s.ctx, queue, ids[0]); err != nil {
				return err
			}
			if s.jsonOutput() {
				return s.printJSON(client.BatchAckResponse{Count: 1, Results: []client.BatchAckResult{{QueueMessageID: ids[0], Status: 200}}})
			}
			s.printf("Acked message %s.\n", ids[0])
			return nil
		}

		res, err := s.client.AckBatch(s.ctx, queue, ids)
		if err != nil {
			return err
		}
		failed := len(res.Results) - res.Count
		if s.jsonOutput() {
			if err := s.printJSON(res); err != nil {
				return err
			}
		} else {
			for _, r := range res.Results {
				if r.Status != 200 {
					fmt.Fprintf(s.errOut, "qakka: ack %s: %s\n", r.QueueMessageID, r.Message)
				}
			}
			s.printf("Acked %d of %d messages.\n", res.Count, len(ids))
		}
		if failed > 0 {
			return errors.New(plural(failed, "message was", "messages were") + " not acked")
		}
		return nil
	})
	return cmd
}

func newNackCommand() *cobra.Command {
	var delay time.Duration
	cmd := &cobra.Command{
		Use:   "nack QUEUE ID",
		Short: "Return a received message to its queue",
		Long: `Return a received message to its queue without processing it, so that it can
be received again, after --delay if given. The message gets a new queue
message ID. Once it was received more often than the queue's retry count, it
moves to the dead-letter queue instead, if the queue has one.`,
		Example: `  qakka nack orders 0192f1c4-7d2a-7b3e-9c1d-2f4e5a6b7c8d
  qakka nack orders 0192f1c4-7d2a-7b3e-9c1d-2f4e5a6b7c8d --delay 1m`,
		Args: exactArgs("QUEUE", "ID"),
	}
	cmd.Flags().DurationVar(&delay, "delay", 0, "make the message available again after this long, such as 30s")
	o := addClientFlags(cmd)
	cmd.RunE = runWith(o, nil, func(s *session, args []string) error {
		if _, err := wholeMillis("--delay", delay); err != nil {
			return err
		}
		res, err := s.client.Nack(s.ctx, args[0], args[1], delay)
		if err != nil {
			return rewordLimit(err, durationFlag("--delay", "delay", delay, time.Millisecond))
		}
		if s.jsonOutput() {
			return s.printJSON(res)
		}
		switch {
		case res.DeadLettered:
			s.printf("Message %s moved to the dead-letter queue.\n", args[1])
		case res.QueueMessageID == "":
			s.printf("Message %s expired and was dropped.\n", args[1])
		default:
			s.printf("Returned message %s to queue %q.\n", args[1], args[0])
			printFields(s.out, [][2]string{
				{"New queue message ID", res.QueueMessageID},
				{"Available at", formatTime(res.DeliverDate)},
			})
		}
		return nil
	})
	return cmd
}

func newExtendCommand() *cobra.Command {
	var visibility time.Duration
	cmd := &cobra.Command{
		Use:   "extend QUEUE ID --visibility DURATION",
		Short: "Keep a received message invisible for longer",
		Long: `Set the deadline of a received message to --visibility from now, for work that
takes longer than the visibility timeout. The queue message ID stays valid.`,
		Example: `  qakka extend orders 0192f1c4-7d2a-7b3e-9c1d-2f4e5a6b7c8d --visibility 10m`,
		Args:    exactArgs("QUEUE", "ID"),
	}
	cmd.Flags().DurationVar(&visibility, "visibility", 0, "new visibility from now, in whole seconds such as 90s or 10m (required)")
	_ = cmd.MarkFlagRequired("visibility")
	o := addClientFlags(cmd)
	cmd.RunE = runWith(o, nil, func(s *session, args []string) error {
		secs, err := wholeSeconds("--visibility", visibility)
		if err != nil {
			return err
		}
		if secs < 1 {
			return fmt.Errorf("invalid --visibility %s: must be at least 1s", visibility)
		}
		res, err := s.client.Extend(s.ctx, args[0], args[1], visibility)
		if err != nil {
			return rewordLimit(err, durationFlag("--visibility", "visibility", visibility, time.Second))
		}
		if s.jsonOutput() {
			return s.printJSON(res)
		}
		s.printf("Message %s is invisible until %s.\n", args[1], formatTime(res.VisibleUntil))
		return nil
	})
	return cmd
}

// plural returns "1 <one>" or "n <many>".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
