package sqsapi

import (
	"context"
	"encoding/base64"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/qakka/qakka/internal/queue"
	"github.com/qakka/qakka/internal/region"
)

// Limits of listing and tagging, as SQS sets them.
const (
	maxListResults  = 1000
	maxTags         = 50
	maxTagKeyLength = 128
	maxTagValueLen  = 256
	purgeInterval   = 60 * time.Second
)

// sqsNamePattern matches the names SQS allows for standard queues.
var sqsNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)

// queueURL returns the URL of a queue as seen from request r.
func (a *API) queueURL(r *http.Request, name string) string {
	return strings.TrimRight(a.cfg.BaseURL(r), "/") + "/" + a.cfg.AccountID + "/" + name
}

// queueName returns the name of the queue that rq addresses. It reads the
// last two segments, account id and queue name, of the path of queueURL, or
// of the request's path when queueURL is empty, so URLs work under any host
// and path prefix. The queue must exist.
func (a *API) queueName(rq *request, queueURL string) (string, error) {
	path := rq.http.URL.Path
	if queueURL != "" {
		u, err := url.Parse(queueURL)
		if err != nil {
			return "", errInvalidAddress(queueURL)
		}
		path = u.Path
	}
	if path == "" || path == "/" {
		return "", errMissingParameter("QueueUrl")
	}
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(parts) < 2 || parts[len(parts)-1] == "" {
		return "", errInvalidAddress(queueURL)
	}
	account, name := parts[len(parts)-2], parts[len(parts)-1]
	if account != a.cfg.AccountID || !a.visible(name) {
		return "", errQueueDoesNotExist()
	}
	return name, nil
}

// visible reports whether name is a queue that this API serves: a valid
// name of an existing queue that is not an outbox of the transfer log
// between regions.
func (a *API) visible(name string) bool {
	return queue.ValidateName(name) == nil && !region.IsReserved(name) && a.engine.Exists(name)
}

type createQueueInput struct {
	QueueName  string            `json:"QueueName"`
	Attributes map[string]string `json:"Attributes"`
	Tags       map[string]string `json:"tags"`
}

type queueURLOutput struct {
	QueueURL string `json:"QueueUrl"`
}

func (a *API) createQueue(ctx context.Context, rq *request) (any, error) {
	var in createQueueInput
	if err := decode(rq, &in); err != nil {
		return nil, err
	}
	if in.QueueName == "" {
		return nil, errMissingParameter("QueueName")
	}
	if strings.HasSuffix(in.QueueName, ".fifo") {
		return nil, errUnsupportedOperation("%s", unsupportedFifoExplanation)
	}
	if !sqsNamePattern.MatchString(in.QueueName) {
		return nil, errInvalidParameterValue("Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length. %q is not a valid queue name.", in.QueueName)
	}
	if err := validateTags(in.Tags); err != nil {
		return nil, err
	}

	a.adminMu.Lock()
	defer a.adminMu.Unlock()

	cfg := a.newQueueConfig(in.QueueName)
	if err := a.applyAttributes(&cfg, in.Attributes); err != nil {
		return nil, err
	}
	if err := a.checkDeadLetterQueue(&cfg); err != nil {
		return nil, err
	}
	if len(in.Tags) > 0 {
		cfg.Tags = maps.Clone(in.Tags)
	}

	stored, created, err := a.engine.CreateQueue(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if !created {
		// SQS returns an existing queue's URL only when every given
		// attribute has the value the queue has.
		updated := stored
		if err := a.applyAttributes(&updated, in.Attributes); err != nil {
			return nil, err
		}
		if !a.sameAttributes(&stored, &updated, in.Attributes) {
			return nil, errQueueNameExists(in.QueueName)
		}
	}
	return queueURLOutput{QueueURL: a.queueURL(rq.http, in.QueueName)}, nil
}

type getQueueURLInput struct {
	QueueName              string `json:"QueueName"`
	QueueOwnerAWSAccountID string `json:"QueueOwnerAWSAccountId"`
}

func (a *API) getQueueURL(ctx context.Context, rq *request) (any, error) {
	var in getQueueURLInput
	if err := decode(rq, &in); err != nil {
		return nil, err
	}
	if in.QueueName == "" {
		return nil, errMissingParameter("QueueName")
	}
	if in.QueueOwnerAWSAccountID != "" && in.QueueOwnerAWSAccountID != a.cfg.AccountID {
		return nil, errQueueDoesNotExist()
	}
	if !a.visible(in.QueueName) {
		return nil, errQueueDoesNotExist()
	}
	return queueURLOutput{QueueURL: a.queueURL(rq.http, in.QueueName)}, nil
}

type listQueuesInput struct {
	QueueNamePrefix string `json:"QueueNamePrefix"`
	MaxResults      *int64 `json:"MaxResults"`
	NextToken       string `json:"NextToken"`
}

type listQueuesOutput struct {
	QueueURLs []string `json:"QueueUrls,omitempty"`
	NextToken string   `json:"NextToken,omitempty"`
}

func (a *API) listQueues(ctx context.Context, rq *request) (any, error) {
	var in listQueuesInput
	if err := decode(rq, &in); err != nil {
		return nil, err
	}
	cfgs, err := a.engine.Queues(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(cfgs))
	for _, c := range cfgs {
		if strings.HasPrefix(c.Name, in.QueueNamePrefix) && !region.IsReserved(c.Name) {
			names = append(names, c.Name)
		}
	}
	page, next, apiErr := paginate(names, in.MaxResults, in.NextToken)
	if apiErr != nil {
		return nil, apiErr
	}
	out := listQueuesOutput{NextToken: next}
	for _, name := range page {
		out.QueueURLs = append(out.QueueURLs, a.queueURL(rq.http, name))
	}
	return out, nil
}

// paginate returns one page of sorted names. Without maxResults it returns
// up to 1000 names and no token, as SQS does.
func paginate(names []string, maxResults *int64, token string) ([]string, string, *apiError) {
	limit := maxListResults
	if maxResults != nil {
		if *maxResults < 1 || *maxResults > maxListResults {
			return nil, "", errInvalidParameterValue("Value %d for parameter MaxResults is invalid. Reason: MaxResults must be an integer between 1 and %d.", *maxResults, maxListResults)
		}
		limit = int(*maxResults)
	}
	slices.Sort(names)
	if token != "" {
		after, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil {
			return nil, "", errInvalidParameterValue("Invalid NextToken value %q: pass the NextToken of the previous reply unchanged.", token)
		}
		i, _ := slices.BinarySearch(names, string(after)+"\x00")
		names = names[i:]
	}
	if len(names) <= limit {
		return names, "", nil
	}
	page := names[:limit]
	if maxResults == nil {
		return page, "", nil
	}
	return page, base64.RawURLEncoding.EncodeToString([]byte(page[len(page)-1])), nil
}

type queueURLInput struct {
	QueueURL string `json:"QueueUrl"`
}

func (a *API) deleteQueue(ctx context.Context, rq *request) (any, error) {
	var in queueURLInput
	if err := decode(rq, &in); err != nil {
		return nil, err
	}
	name, err := a.queueName(rq, in.QueueURL)
	if err != nil {
		return nil, err
	}
	a.adminMu.Lock()
	defer a.adminMu.Unlock()
	if err := a.engine.DeleteQueue(ctx, name); err != nil {
		return nil, err
	}
	a.purgeMu.Lock()
	delete(a.lastPurge, name)
	a.purgeMu.Unlock()
	return nil, nil
}

type getQueueAttributesInput struct {
	QueueURL       string   `json:"QueueUrl"`
	AttributeNames []string `json:"AttributeNames"`
}

type attributesOutput struct {
	Attributes map[string]string `json:"Attributes,omitempty"`
}

func (a *API) getQueueAttributes(ctx context.Context, rq *request) (any, error) {
	var in getQueueAttributesInput
	if err := decode(rq, &in); err != nil {
		return nil, err
	}
	name, err := a.queueName(rq, in.QueueURL)
	if err != nil {
		return nil, err
	}

	var names []string
	for _, n := range in.AttributeNames {
		switch {
		case n == attrAll:
			names = append(names, readableAttributes...)
		case slices.Contains(readableAttributes, n):
			names = append(names, n)
		case knownUnsetAttributes[n]:
		default:
			return nil, errInvalidAttributeName("Unknown Attribute %s.", n)
		}
	}
	if len(names) == 0 {
		return attributesOutput{}, nil
	}

	cfg, err := a.engine.Queue(ctx, name)
	if err != nil {
		return nil, err
	}
	var stats queue.Stats
	if slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "Approximate") }) {
		if stats, err = a.engine.Stats(ctx, name); err != nil {
			return nil, err
		}
	}
	out := attributesOutput{Attributes: make(map[string]string, len(names))}
	for _, n := range names {
		switch n {
		case attrApproxMessages:
			out.Attributes[n] = formatInt(stats.Available)
		case attrApproxNotVisible:
			out.Attributes[n] = formatInt(stats.Inflight)
		case attrApproxDelayed:
			out.Attributes[n] = formatInt(stats.Delayed)
		default:
			if v, ok := a.configAttribute(&cfg, n); ok && v != "" {
				out.Attributes[n] = v
			}
		}
	}
	return out, nil
}

type setQueueAttributesInput struct {
	QueueURL   string            `json:"QueueUrl"`
	Attributes map[string]string `json:"Attributes"`
}

func (a *API) setQueueAttributes(ctx context.Context, rq *request) (any, error) {
	var in setQueueAttributesInput
	if err := decode(rq, &in); err != nil {
		return nil, err
	}
	name, err := a.queueName(rq, in.QueueURL)
	if err != nil {
		return nil, err
	}
	if len(in.Attributes) == 0 {
		return nil, errMissingParameter("Attributes")
	}
	return nil, a.updateQueue(ctx, name, func(cfg *queue.Config) error {
		if err := a.applyAttributes(cfg, in.Attributes); err != nil {
			return err
		}
		if err := a.checkDeadLetterQueue(cfg); err != nil {
			return err
		}
		return nil
	})
}

// updateQueue reads a queue's configuration, changes it and stores it.
// NOTE: the engine has no compare-and-swap for configurations, so a change
// made through the REST API between the read and the write is lost.
func (a *API) updateQueue(ctx context.Context, name string, change func(*queue.Config) error) error {
	a.adminMu.Lock()
	defer a.adminMu.Unlock()
	cfg, err := a.engine.Queue(ctx, name)
	if err != nil {
		return err
	}
	if err := change(&cfg); err != nil {
		return err
	}
	_, err = a.engine.UpdateQueue(ctx, cfg)
	return err
}

func (a *API) purgeQueue(ctx context.Context, rq *request) (any, error) {
	var in queueURLInput
	if err := decode(rq, &in); err != nil {
		return nil, err
	}
	name, err := a.queueName(rq, in.QueueURL)
	if err != nil {
		return nil, err
	}

	now := a.cfg.Now()
	a.purgeMu.Lock()
	last, ok := a.lastPurge[name]
	if ok && now.Sub(last) < purgeInterval {
		a.purgeMu.Unlock()
		return nil, errPurgeQueueInProgress(name)
	}
	a.lastPurge[name] = now
	for q, t := range a.lastPurge {
		if now.Sub(t) >= purgeInterval {
			delete(a.lastPurge, q)
		}
	}
	a.purgeMu.Unlock()

	if _, err := a.engine.Purge(ctx, name); err != nil {
		return nil, err
	}
	return nil, nil
}

type tagQueueInput struct {
	QueueURL string            `json:"QueueUrl"`
	Tags     map[string]string `json:"Tags"`
}

func (a *API) tagQueue(ctx context.Context, rq *request) (any, error) {
	var in tagQueueInput
	if err := decode(rq, &in); err != nil {
		return nil, err
	}
	name, err := a.queueName(rq, in.QueueURL)
	if err != nil {
		return nil, err
	}
	if len(in.Tags) == 0 {
		return nil, errMissingParameter("Tags")
	}
	if err := validateTags(in.Tags); err != nil {
		return nil, err
	}
	return nil, a.updateQueue(ctx, name, func(cfg *queue.Config) error {
		tags := maps.Clone(cfg.Tags)
		if tags == nil {
			tags = make(map[string]string, len(in.Tags))
		}
		maps.Copy(tags, in.Tags)
		if len(tags) > maxTags {
			return errInvalidParameterValue("Too many tags: a queue can have at most %d tags, and this request would leave it with %d.", maxTags, len(tags))
		}
		cfg.Tags = tags
		return nil
	})
}

type untagQueueInput struct {
	QueueURL string   `json:"QueueUrl"`
	TagKeys  []string `json:"TagKeys"`
}

func (a *API) untagQueue(ctx context.Context, rq *request) (any, error) {
	var in untagQueueInput
	if err := decode(rq, &in); err != nil {
		return nil, err
	}
	name, err := a.queueName(rq, in.QueueURL)
	if err != nil {
		return nil, err
	}
	if len(in.TagKeys) == 0 {
		return nil, errMissingParameter("TagKeys")
	}
	return nil, a.updateQueue(ctx, name, func(cfg *queue.Config) error {
		tags := maps.Clone(cfg.Tags)
		for _, k := range in.TagKeys {
			delete(tags, k)
		}
		cfg.Tags = tags
		return nil
	})
}

type listQueueTagsOutput struct {
	Tags map[string]string `json:"Tags,omitempty"`
}

func (a *API) listQueueTags(ctx context.Context, rq *request) (any, error) {
	var in queueURLInput
	if err := decode(rq, &in); err != nil {
		return nil, err
	}
	name, err := a.queueName(rq, in.QueueURL)
	if err != nil {
		return nil, err
	}
	cfg, err := a.engine.Queue(ctx, name)
	if err != nil {
		return nil, err
	}
	return listQueueTagsOutput{Tags: cfg.Tags}, nil
}

// validateTags checks tags against the SQS limits.
func validateTags(tags map[string]string) *apiError {
	if len(tags) > maxTags {
		return errInvalidParameterValue("Too many tags: a queue can have at most %d tags; the request has %d.", maxTags, len(tags))
	}
	for k, v := range tags {
		switch {
		case k == "" || len(k) > maxTagKeyLength:
			return errInvalidParameterValue("Tag key %q is invalid: use 1 to %d characters.", k, maxTagKeyLength)
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			return errInvalidParameterValue("Tag key %q is invalid: the prefix aws: is reserved.", k)
		case len(v) > maxTagValueLen:
			return errInvalidParameterValue("The value of tag %q is longer than %d characters.", k, maxTagValueLen)
		}
	}
	return nil
}

type listDeadLetterSourceQueuesInput struct {
	QueueURL   string `json:"QueueUrl"`
	MaxResults *int64 `json:"MaxResults"`
	NextToken  string `json:"NextToken"`
}

type listDeadLetterSourceQueuesOutput struct {
	QueueURLs []string `json:"queueUrls"`
	NextToken string   `json:"NextToken,omitempty"`
}

func (a *API) listDeadLetterSourceQueues(ctx context.Context, rq *request) (any, error) {
	var in listDeadLetterSourceQueuesInput
	if err := decode(rq, &in); err != nil {
		return nil, err
	}
	name, err := a.queueName(rq, in.QueueURL)
	if err != nil {
		return nil, err
	}
	cfgs, err := a.engine.Queues(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, c := range cfgs {
		if c.DeadLetterQueue == name {
			names = append(names, c.Name)
		}
	}
	page, next, apiErr := paginate(names, in.MaxResults, in.NextToken)
	if apiErr != nil {
		return nil, apiErr
	}
	out := listDeadLetterSourceQueuesOutput{QueueURLs: []string{}, NextToken: next}
	for _, n := range page {
		out.QueueURLs = append(out.QueueURLs, a.queueURL(rq.http, n))
	}
	return out, nil
}

func formatInt(n int64) string { return strconv.FormatInt(n, 10) }
