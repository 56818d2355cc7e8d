package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/qakka/qakka/client"
)

func newQueueCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "queue",
		Short: "Create, list, show, update and delete queues",
		Long: `Manage queues on a Qakka server.

Every client command reaches the server given by --server (default ` + defaultServer + `,
or the ` + envServer + ` environment variable) over its REST API.`,
		Example: `  qakka queue create orders --visibility-timeout 1m --dead-letter-queue orders-dlq --retry-count 5
  qakka queue list
  qakka queue show orders
  qakka queue update orders --visibility-timeout 2m
  qakka queue delete orders --yes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	o := addClientFlags(cmd)
	cmd.AddCommand(
		newQueueCreateCommand(o),
		newQueueListCommand(o),
		newQueueShowCommand(o),
		newQueueUpdateCommand(o),
		newQueueDeleteCommand(o),
	)
	return cmd
}

// queueFlags are the configuration flags of queue create and queue update.
type queueFlags struct {
	visibilityTimeout time.Duration
	delay             time.Duration
	retryCount        int
	deadLetterQueue   string
	maxMessageSize    byteSize
	retention         time.Duration
	receiveWait       time.Duration
	tags              map[string]string
}

func (q *queueFlags) register(f *pflag.FlagSet) {
	f.DurationVar(&q.visibilityTimeout, "visibility-timeout", 0, "how long a received message stays invisible before it is delivered again, in whole seconds such as 30s or 5m (0: server default)")
	f.DurationVar(&q.delay, "delay", 0, "default delay of each message before it can be received, such as 500ms or 1m")
	f.IntVar(&q.retryCount, "retry-count", 0, "how many times a message may be received again before it moves to the dead-letter queue")
	f.StringVar(&q.deadLetterQueue, "dead-letter-queue", "", "queue that takes messages received more than --retry-count times (empty: none)")
	f.Var(&q.maxMessageSize, "max-message-size", "largest payload, in bytes or with a unit such as 256KiB or 1MiB (0: server default)")
	f.DurationVar(&q.retention, "retention", 0, "how long an unacked message is kept, in whole seconds such as 24h (0: server maximum)")
	f.DurationVar(&q.receiveWait, "receive-wait", 0, "default long-poll wait of a receive, such as 5s (0: server default)")
	f.StringToStringVar(&q.tags, "tag", nil, "label as key=value; repeat for more (replaces all tags on update)")
}

// apply copies the flags that the user set onto q, so that a read-modify-
// write update keeps every field the user did not name.
func (q *queueFlags) apply(f *pflag.FlagSet, dst *client.Queue) error {
	if f.Changed("visibility-timeout") {
		secs, err := wholeSeconds("--visibility-timeout", q.visibilityTimeout)
		if err != nil {
			return err
		}
		dst.HandlingTimeoutSec = secs
	}
	if f.Changed("delay") {
		ms, err := wholeMillis("--delay", q.delay)
		if err != nil {
			return err
		}
		dst.DefaultDelayMs = ms
	}
	if f.Changed("retry-count") {
		if q.retryCount < 0 {
			return fmt.Errorf("invalid --retry-count %d: must not be negative", q.retryCount)
		}
		dst.RetryCount = q.retryCount
	}
	if f.Changed("dead-letter-queue") {
		dst.DeadLetterQueue = q.deadLetterQueue
	}
	if f.Changed("max-message-size") {
		dst.MaxMessageSize = int64(q.maxMessageSize)
	}
	if f.Changed("retention") {
		secs, err := wholeSeconds("--retention", q.retention)
		if err != nil {
			return err
		}
		dst.RetentionSec = secs
	}
	if f.Changed("receive-wait") {
		ms, err := wholeMillis("--receive-wait", q.receiveWait)
		if err != nil {
			return err
		}
		dst.ReceiveWaitMs = ms
	}
	if f.Changed("tag") {
		dst.Tags = q.tags
	}
	return nil
}

// limits describes the flags that the user set for rewordLimit, with the
// queue configuration fields that carry them.
func (q *queueFlags) limits(f *pflag.FlagSet) []flagValue {
	var out []flagValue
	if f.Changed("visibility-timeout") {
		out = append(out, durationFlag("--visibility-timeout", "handlingTimeoutSec", q.visibilityTimeout, time.Second))
	}
	if f.Changed("delay") {
		out = append(out, durationFlag("--delay", "defaultDelayMs", q.delay, time.Millisecond))
	}
	if f.Changed("retry-count") {
		out = append(out, countFlag("--retry-count", "retryCount", int64(q.retryCount)))
	}
	if f.Changed("retention") {
		out = append(out, durationFlag("--retention", "retentionSec", q.retention, time.Second))
	}
	if f.Changed("receive-wait") {
		out = append(out, durationFlag("--receive-wait", "receiveWaitMs", q.receiveWait, time.Millisecond))
	}
	return out
}

func newQueueCreateCommand(o *clientOptions) *cobra.Command {
	var flags queueFlags
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a queue",
		Long: `Create a queue. Settings left out take the server's defaults.

A name has 1 to 80 letters, digits, '-', '_' or '.'. Creating a queue that
already exists changes nothing and says so.`,
		Example: `  qakka queue create orders
  qakka queue create orders-dlq
  qakka queue create orders --visibility-timeout 1m --retry-count 5 --dead-letter-queue orders-dlq
  qakka queue create thumbnails --max-message-size 4MiB --retention 48h`,
		Args: exactArgs("NAME"),
	}
	flags.register(cmd.Flags())
	cmd.RunE = runWith(o, nil, func(s *session, args []string) error {
		q := client.Queue{Name: args[0]}
		if err := flags.apply(cmd.Flags(), &q); err != nil {
			return err
		}
		stored, created, err := s.client.CreateQueue(s.ctx, q)
		if err != nil {
			return rewordLimit(err, flags.limits(cmd.Flags())...)
		}

		if s.jsonOutput() {
			return s.printJSON(struct {
				Created bool         `json:"created"`
				Queue   client.Queue `json:"queue"`
			}{created, stored})
		}
		if created {
			s.printf("Created queue %q.\n", stored.Name)
		} else {
			s.printf("Queue %q already exists; nothing changed (use 'qakka queue update' to change it).\n", stored.Name)
		}
		return nil
	})
	return cmd
}

func newQueueListCommand(o *clientOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the names of all queues",
		Example: `  qakka queue list
  qakka queue list --output json`,
		Args: cobra.NoArgs,
	}
	cmd.RunE = runWith(o, nil, func(s *session, _ []string) error {
		names, err := s.client.ListQueues(s.ctx)
		if err != nil {
			return err
		}
		slices.Sort(names)

		if s.jsonOutput() {
			return s.printJSON(names)
		}
		if len(names) == 0 {
			s.printf("No queues. Create one with 'qakka queue create NAME'.\n")
			return nil
		}
		for _, n := range names {
			s.printf("%s\n", n)
		}
		return nil
	})
	return cmd
}

func newQueueShowCommand(o *clientOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "show NAME",
		Aliases: []string{"get"},
		Short:   "Show a queue's configuration",
		Example: `  qakka queue show orders
  qakka queue show orders --output json`,
		Args: exactArgs("NAME"),
	}
	cmd.RunE = runWith(o, nil, func(s *session, args []string) error {
		q, err := s.client.GetQueue(s.ctx, args[0])
		if err != nil {
			return err
		}
		if s.jsonOutput() {
			return s.printJSON(q)
		}
		printQueue(s, q)
		return nil
	})
	return cmd
}

func newQueueUpdateCommand(o *clientOptions) *cobra.Command {
	var flags queueFlags
	cmd := &cobra.Command{
		Use:   "update NAME",
		Short: "Change some settings of a queue",
		Long: `Change the settings named by flags and keep all others.

The command reads the queue's configuration, changes the named fields and
writes it back. An update that runs at the same time as another one may
undo the other's changes.`,
		Example: `  qakka queue update orders --visibility-timeout 2m
  qakka queue update orders --dead-letter-queue "" --retry-count 0
  qakka queue update orders --tag team=billing --tag tier=gold`,
		Args: exactArgs("NAME"),
	}
	flags.register(cmd.Flags())
	cmd.RunE = runWith(o, nil, func(s *session, args []string) error {
		if !anyChanged(cmd.Flags(), "visibility-timeout", "delay", "retry-count", "dead-letter-queue",
			"max-message-size", "retention", "receive-wait", "tag") {
			return fmt.Errorf("nothing to update: name at least one setting, such as --visibility-timeout (see 'qakka queue update --help')")
		}
		q, err := s.client.GetQueue(s.ctx, args[0])
		if err != nil {
			return err
		}
		if err := flags.apply(cmd.Flags(), &q); err != nil {
			return err
		}
		q.Name = args[0]
		stored, err := s.client.UpdateQueue(s.ctx, q)
		if err != nil {
			return rewordLimit(err, flags.limits(cmd.Flags())...)
		}

		if s.jsonOutput() {
			return s.printJSON(stored)
		}
		s.printf("Updated queue %q.\n", stored.Name)
		printQueue(s, stored)
		return nil
	})
	return cmd
}

func newQueueDeleteCommand(o *clientOptions) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "delete NAME --yes",
		Short: "Delete a queue and every message in it",
		Long: `Delete a queue and every message in it. This cannot be undone, so the
command runs only with --yes.`,
		Example: `  qakka queue delete orders --yes`,
		Args:    exactArgs("NAME"),
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "confirm the deletion")
	cmd.RunE = runWith(o, nil, func(s *session, args []string) error {
		if !yes {
			return fmt.Errorf("deletion of queue %q and its messages needs --yes to confirm", args[0])
		}
		if err := s.client.DeleteQueue(s.ctx, args[0]); err != nil {
			return err
		}
		if s.jsonOutput() {
			return s.printJSON(struct {
				Deleted string `json:"deleted"`
			}{args[0]})
		}
		s.printf("Deleted queue %q.\n", args[0])
		return nil
	})
	return cmd
}

// printQueue writes a queue's configuration as aligned lines.
func printQueue(s *session, q client.Queue) {
	orDefault := func(zero bool, value, def string) string {
		if zero {
			return def
		}
		return value
	}
	dlq := orDefault(q.DeadLetterQueue == "", q.DeadLetterQueue, "(none)")
	rows := [][2]string{
		{"Name", q.Name},
		{"Visibility timeout", orDefault(q.HandlingTimeoutSec == 0, formatDuration(time.Duration(q.HandlingTimeoutSec)*time.Second), "server default")},
		{"Default delay", formatDuration(time.Duration(q.DefaultDelayMs) * time.Millisecond)},
		{"Retry count", fmt.Sprint(q.RetryCount)},
		{"Dead-letter queue", dlq},
		{"Max message size", orDefault(q.MaxMessageSize == 0, byteSize(q.MaxMessageSize).String(), "server default")},
		{"Retention", orDefault(q.RetentionSec == 0, formatDuration(time.Duration(q.RetentionSec)*time.Second), "server maximum")},
		{"Receive wait", orDefault(q.ReceiveWaitMs == 0, formatDuration(time.Duration(q.ReceiveWaitMs)*time.Millisecond), "server default")},
	}
	if q.Regions != "" {
		rows = append(rows, [2]string{"Regions", q.Regions})
	}
	if q.DefaultDestinations != "" {
		rows = append(rows, [2]string{"Default destinations", q.DefaultDestinations})
	}
	if len(q.Tags) > 0 {
		var tags []string
		for _, k := range slices.Sorted(maps.Keys(q.Tags)) {
			tags = append(tags, k+"="+q.Tags[k])
		}
		rows = append(rows, [2]string{"Tags", strings.Join(tags, ", ")})
	}
	if q.CreateDate != 0 {
		rows = append(rows, [2]string{"Created", formatTime(q.CreateDate)})
	}
	if q.UpdateDate != 0 {
		rows = append(rows, [2]string{"Updated", formatTime(q.UpdateDate)})
	}
	printFields(s.out, rows)
}

func anyChanged(f *pflag.FlagSet, names ...string) bool {
	for _, n := range names {
		if f.Changed(n) {
			return true
		}
	}
	return false
}
