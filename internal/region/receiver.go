package region

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/qakka/qakka/internal/queue"
)

// maxTransferEntries bounds the entries of one transfer request.
const maxTransferEntries = 1000

// TransferHandler returns the handler of POST TransferPath, the endpoint
// that other regions send their outbox entries to. It requires the
// credentials of Config.Accept on every request, and rejects every request
// with 403 when none are configured. It stores each message with its
// messageId, so a request that is sent again stores nothing twice.
func (r *Router) TransferHandler() http.Handler {
	wantUser := sha256.Sum256([]byte(r.cfg.Accept.Username))
	wantPass := sha256.Sum256([]byte(r.cfg.Accept.Password))
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !r.Accepting() {
			writeJSON(w, http.StatusForbidden, errorBody{Message: "transfers from other regions are off on this server: configure the credentials that other regions present"})
			return
		}
		// Both values are compared in constant time, over their digests so
		// that the comparison does not reveal their lengths either.
		user, pass, ok := req.BasicAuth()
		gotUser := sha256.Sum256([]byte(user))
		gotPass := sha256.Sum256([]byte(pass))
		userOK := subtle.ConstantTimeCompare(gotUser[:], wantUser[:])
		passOK := subtle.ConstantTimeCompare(gotPass[:], wantPass[:])
		if !ok || userOK&passOK != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="qakka-regions"`)
			writeJSON(w, http.StatusUnauthorized, errorBody{Message: "authentication required: send the credentials this region accepts from other regions"})
			return
		}
		if req.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeJSON(w, http.StatusMethodNotAllowed, errorBody{Message: "method " + req.Method + " is not allowed on " + TransferPath + "; use POST"})
			return
		}
		r.serveTransfer(w, req)
	})
}

func (r *Router) serveTransfer(w http.ResponseWriter, req *http.Request) {
	var treq TransferRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, r.cfg.MaxBodyBytes))
	if err := dec.Decode(&treq); err != nil {
		var maxBytes *http.MaxBytesError
		if errors.As(err, &maxBytes) {
			writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Message: fmt.Sprintf("transfer request is over the limit of %d bytes", maxBytes.Limit)})
			return
		}
		writeJSON(w, http.StatusBadRequest, errorBody{Message: "invalid transfer request: " + err.Error()})
		return
	}
	if err := r.checkTransfer(&treq); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Message: "invalid transfer request: " + err.Error()})
		return
	}

	results := r.storeTransfer(req.Context(), &treq)
	if r.log.Enabled(req.Context(), slog.LevelDebug) {
		r.log.Debug("transfer received", slog.String("source_region", treq.Source), slog.Int("entries", len(treq.Entries)))
	}
	writeJSON(w, http.StatusOK, TransferResponse{Results: results})
}

func (r *Router) checkTransfer(treq *TransferRequest) error {
	if err := ValidateName(treq.Source); err != nil {
		return fmt.Errorf("source: %w", err)
	}
	if treq.Source == r.cfg.Local {
		return fmt.Errorf("source region %q is this region: a region does not send to itself; check the endpoints of the sending server's remote regions", treq.Source)
	}
	if treq.Now.IsZero() {
		return errors.New("now is missing")
	}
	if len(treq.Entries) == 0 || len(treq.Entries) > maxTransferEntries {
		return fmt.Errorf("%d entries: send 1 to %d", len(treq.Entries), maxTransferEntries)
	}
	return nil
}

// storeTransfer applies the queue-config entries of a request in order,
// then stores its messages with one engine send per queue and batch. It
// returns one result per entry.
func (r *Router) storeTransfer(ctx context.Context, treq *TransferRequest) []EntryResult {
	results := make([]EntryResult, len(treq.Entries))
	byQueue := map[string][]int{}
	var queues []string
	for i := range treq.Entries {
		env := &treq.Entries[i]
		if err := env.validate(); err != nil {
			results[i] = EntryResult{Status: http.StatusBadRequest, Message: err.Error()}
			continue
		}
		if env.Kind == KindQueueConfig {
			results[i] = resultOf(r.applyConfig(ctx, env.Config, treq.Source))
			continue
		}
		if _, ok := byQueue[env.Queue]; !ok {
			queues = append(queues, env.Queue)
		}
		byQueue[env.Queue] = append(byQueue[env.Queue], i)
	}
	for _, name := range queues {
		r.storeMessages(ctx, treq, name, byQueue[name], results)
	}
	return results
}

// applyConfig creates a queue from a transferred configuration, or
// replaces the configuration of the existing queue.
func (r *Router) applyConfig(ctx context.Context, w *QueueConfig, source string) error {
	cfg := w.config()
	stored, created, err := r.engine.CreateQueue(ctx, cfg)
	if err != nil {
		return err
	}
	if created {
		r.log.Info("queue created from another region", slog.String("queue", cfg.Name), slog.String("source_region", source))
		return nil
	}
	if sameConfig(wireConfig(&stored), w) {
		return nil
	}
	_, err = r.engine.UpdateQueue(ctx, cfg)
	return err
}

func sameConfig(a, b *QueueConfig) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}

// storeMessages stores the message entries idx of queue name, creating the
// queue first when it is missing here.
func (r *Router) storeMessages(ctx context.Context, treq *TransferRequest, name string, idx []int, results []EntryResult) {
	if err := r.ensureQueue(ctx, treq, name, idx); err != nil {
		for _, i := range idx {
			results[i] = resultOf(err)
		}
		return
	}

	msgs := make([]queue.SendRequest, 0, len(idx))
	sent := make([]int, 0, len(idx))
	for _, i := range idx {
		m, ok := r.sendRequest(&treq.Entries[i], treq.Now)
		if !ok {
			results[i] = EntryResult{Status: http.StatusGone, Message: "message expired before it arrived"}
			continue
		}
		if err := r.engine.ValidateSend(ctx, name, &m); err != nil {
			results[i] = resultOf(err)
			continue
		}
		msgs = append(msgs, m)
		sent = append(sent, i)
	}

	maxBatch := r.engine.Options().MaxBatch
	for len(msgs) > 0 {
		n := min(len(msgs), maxBatch)
		res, err := r.engine.Send(ctx, name, msgs[:n])
		for j, i := range sent[:n] {
			if err != nil {
				results[i] = resultOf(err)
				continue
			}
			results[i] = EntryResult{Status: http.StatusOK, Duplicate: res[j].Duplicate}
		}
		msgs, sent = msgs[n:], sent[n:]
	}
}

// ensureQueue creates queue name when it does not exist here, from the
// configuration carried by its first entry that has one. A configuration
// this server cannot take (its limits may be lower) gives way to the
// defaults, because a message is never dropped for want of its queue.
func (r *Router) ensureQueue(ctx context.Context, treq *TransferRequest, name string, idx []int) error {
	if r.engine.Exists(name) {
		return nil
	}
	cfg := queue.Config{Name: name}
	if i := slices.IndexFunc(idx, func(i int) bool { return treq.Entries[i].Config != nil }); i >= 0 {
		cfg = treq.Entries[idx[i]].Config.config()
	}
	_, created, err := r.engine.CreateQueue(ctx, cfg)
	var invalid *queue.InvalidError
	if errors.As(err, &invalid) {
		r.log.Warn("configuration of a queue from another region is invalid here; creating the queue with the defaults",
			slog.String("queue", name), slog.String("source_region", treq.Source), slog.Any("error", err))
		_, created, err = r.engine.CreateQueue(ctx, queue.Config{Name: name})
	}
	if err != nil {
		return err
	}
	if created {
		r.log.Info("queue created from another region", slog.String("queue", name), slog.String("source_region", treq.Source))
	}
	return nil
}

// sendRequest returns the local send of a message entry, with its delay
// and expiration measured from the sender's clock at the time of the
// request. It returns false when the message has expired.
func (r *Router) sendRequest(env *Envelope, now time.Time) (queue.SendRequest, bool) {
	maxTTL := r.engine.Options().MaxTTL
	expiration := min(env.ExpiresAt.Sub(now), maxTTL)
	if expiration <= 0 {
		return queue.SendRequest{}, false
	}
	// The delay must end before the expiration, which this server's
	// maximum TTL may have shortened.
	delay := min(max(env.DeliverAt.Sub(now), 0), expiration-time.Nanosecond)
	return queue.SendRequest{
		ContentType: env.ContentType,
		Data:        env.Data,
		Attributes:  env.Attributes,
		Delay:       &delay,
		Expiration:  expiration,
		MessageID:   env.MessageID,
		SentAt:      env.SentAt,
	}, true
}

// resultOf maps the error of one entry to its result, with the status the
// REST API would give it.
func resultOf(err error) EntryResult {
	if err == nil {
		return EntryResult{Status: http.StatusOK}
	}
	var (
		invalid  *queue.InvalidError
		tooLarge *queue.TooLargeError
	)
	status := http.StatusInternalServerError
	switch {
	case errors.As(err, &invalid):
		status = http.StatusBadRequest
	case errors.As(err, &tooLarge):
		status = http.StatusRequestEntityTooLarge
	case errors.Is(err, queue.ErrQueueNotFound):
		status = http.StatusNotFound
	case errors.Is(err, queue.ErrUnavailable), errors.Is(err, queue.ErrClosed),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		status = http.StatusServiceUnavailable
	}
	return EntryResult{Status: status, Message: err.Error()}
}

type errorBody struct {
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Every value written here is a plain wire type, so this is a bug.
		panic(fmt.Sprintf("region: encode %T: %v", v, err))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
