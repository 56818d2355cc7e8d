package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/qakka/qakka/client"
)

func newStatsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stats QUEUE",
		Short: "Show a queue's message counts and event totals",
		Example: `  qakka stats orders
  qakka stats orders --output json`,
		Args: exactArgs("QUEUE"),
	}
	o := addClientFlags(cmd)
	cmd.RunE = runWith(o, nil, func(s *session, args []string) error {
		st, err := s.client.Stats(s.ctx, args[0])
		if err != nil {
			return err
		}
		if s.jsonOutput() {
			return s.printJSON(st)
		}
		oldest := "-"
		if st.OldestAvailableAgeMs > 0 {
			oldest = formatDuration((time.Duration(st.OldestAvailableAgeMs) * time.Millisecond).Round(time.Second))
		}
		s.printf("Queue %q\n\n", st.QueueName)
		printFields(s.out, [][2]string{
			{"Available", fmt.Sprint(st.Available)},
			{"Inflight", fmt.Sprint(st.Inflight)},
			{"Delayed", fmt.Sprint(st.Delayed)},
			{"In dead-letter queue", fmt.Sprint(st.DeadLettered)},
			{"Oldest available", oldest},
		})
		t := st.Totals
		s.printf("\nTotals since creation\n\n")
		printFields(s.out, [][2]string{
			{"Sent", fmt.Sprint(t.Sent)},
			{"Received", fmt.Sprint(t.Received)},
			{"Acked", fmt.Sprint(t.Acked)},
			{"Nacked", fmt.Sprint(t.Nacked)},
			{"Timed out", fmt.Sprint(t.TimedOut)},
			{"Expired", fmt.Sprint(t.Expired)},
			{"Dead-lettered", fmt.Sprint(t.DeadLettered)},
			{"Redriven", fmt.Sprint(t.Redriven)},
			{"Purged", fmt.Sprint(t.Purged)},
		})
		return nil
	})
	return cmd
}

func newAuditCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit QUEUE MESSAGE_ID",
		Short: "Show the life of a message, step by step",
		Long: `Show every recorded event of a message: sent, received, acked, nacked,
extended, timed out, dead-lettered, redriven, expired or purged. MESSAGE_ID
is the message ID, which stays the same across deliveries, not the queue
message ID.`,
		Example: `  qakka audit orders 0192f1c4-7d2a-7b3e-9c1d-2f4e5a6b7c8d
  qakka audit orders 0192f1c4-7d2a-7b3e-9c1d-2f4e5a6b7c8d --output json`,
		Args: exactArgs("QUEUE", "MESSAGE_ID"),
	}
	o := addClientFlags(cmd)
	cmd.RunE = runWith(o, nil, func(s *session, args []string) error {
		trail, err := s.client.Audit(s.ctx, args[0], args[1])
		if err != nil {
			return err
		}
		if s.jsonOutput() {
			return s.printJSON(trail)
		}
		if len(trail.Events) == 0 {
			s.printf("No events recorded for message %s.\n", args[1])
			return nil
		}
		tw := newTable(s.out)
		fmt.Fprintf(tw, "TIME\tACTION\tQUEUE\tQUEUE MESSAGE ID\tRECEIVES\tDETAIL\n")
		for _, e := range trail.Events {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n",
				time.UnixMilli(e.Date).Local().Format("2006-01-02 15:04:05.000"),
				e.Action, e.QueueName, orDash(e.QueueMessageID), e.ReceiveCount, e.Detail)
		}
		return tw.Flush()
	})
	return cmd
}

func newPeekCommand() *cobra.Command {
	var opts client.PeekOptions
	cmd := &cobra.Command{
		Use:   "peek QUEUE",
		Short: "List messages in a queue without receiving them",
		Long: `List a queue's messages without changing them, one page at a time. When more
remain, the command prints the --cursor that reads the next page.`,
		Example: `  qakka peek orders
  qakka peek orders --state inflight --limit 50
  qakka peek orders --cursor <cursor from the previous page>`,
		Args: exactArgs("QUEUE"),
	}
	f := cmd.Flags()
	f.StringVar(&opts.State, "state", "", "list only messages in this state: available, delayed, inflight or moving")
	f.IntVar(&opts.Limit, "limit", 0, "list at most this many messages (0: server default)")
	f.StringVar(&opts.Cursor, "cursor", "", "continue from the cursor printed by the previous page")
	o := addClientFlags(cmd)
	cmd.RunE = runWith(o, nil, func(s *session, args []string) error {
		if opts.Limit < 0 {
			return fmt.Errorf("invalid --limit %d: must not be negative", opts.Limit)
		}
		page, err := s.client.Peek(s.ctx, args[0], opts)
		if err != nil {
			return err
		}
		if s.jsonOutput() {
			return s.printJSON(page)
		}
		if len(page.Entries) == 0 {
			s.printf("No messages in queue %q.\n", args[0])
			return nil
		}
		tw := newTable(s.out)
		fmt.Fprintf(tw, "STATE\tQUEUE MESSAGE ID\tMESSAGE ID\tRECEIVES\tSIZE\tCONTENT TYPE\tSENT\tDUE\n")
		for _, e := range page.Entries {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n",
				e.State, e.QueueMessageID, e.MessageID, e.ReceiveCount, byteSize(e.Size),
				e.ContentType, formatShortTime(e.SentDate), formatShortTime(e.DueDate))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if page.Next != "" {
			s.printf("\nMore messages: qakka peek %s --cursor %s\n", args[0], page.Next)
		}
		return nil
	})
	return cmd
}

func formatShortTime(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).Local().Format("2006-01-02 15:04:05")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
