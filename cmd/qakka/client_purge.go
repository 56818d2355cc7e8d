package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newPurgeCommand() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "purge QUEUE --yes",
		Short: "Delete every message in a queue and keep the queue",
		Long: `Delete every available, delayed and inflight message of a queue. The queue
and its settings stay. This cannot be undone, so the command runs only with
--yes.`,
		Example: `  qakka purge orders --yes`,
		Args:    exactArgs("QUEUE"),
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "confirm the purge")
	o := addClientFlags(cmd)
	cmd.RunE = runWith(o, nil, func(s *session, args []string) error {
		if !yes {
			return fmt.Errorf("purge of queue %q needs --yes to confirm", args[0])
		}
		res, err := s.client.Purge(s.ctx, args[0])
		if err != nil {
			return err
		}
		if s.jsonOutput() {
			return s.printJSON(res)
		}
		s.printf("Purged %s from queue %q.\n", plural(int(res.Count), "message", "messages"), args[0])
		return nil
	})
	return cmd
}

func newRedriveCommand() *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "redrive QUEUE",
		Short: "Move dead-lettered messages back to their source queues",
		Long: `Move messages from a dead-letter queue back to the queues they came from,
where they can be received again. Messages whose source queue no longer
exists stay where they are and are counted as skipped.`,
		Example: `  qakka redrive orders-dlq
  qakka redrive orders-dlq --max 100`,
		Args: exactArgs("QUEUE"),
	}
	cmd.Flags().IntVar(&limit, "max", 0, "move at most this many messages (0: all)")
	o := addClientFlags(cmd)
	cmd.RunE = runWith(o, nil, func(s *session, args []string) error {
		if limit < 0 {
			return fmt.Errorf("invalid --max %d: must not be negative", limit)
		}
		res, err := s.client.Redrive(s.ctx, args[0], limit)
		if err != nil {
			return err
		}
		if s.jsonOutput() {
			return s.printJSON(res)
		}
		s.printf("Moved %s back to their source queues", plural(res.Moved, "message", "messages"))
		if res.Skipped > 0 {
			s.printf("; skipped %d without a source queue", res.Skipped)
		}
		s.printf(".\n")
		return nil
	})
	return cmd
}
