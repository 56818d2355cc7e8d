package sqsapi

import "net/http"

// ownerActions are the actions whose engine calls need the node that serves
// the queue, in a cluster. Every other action runs on any node: sends are
// stored as incoming entries for the owner, and the rest create, list or
// read queue configurations, which all nodes share through storage.
var ownerActions = map[string]bool{
	"ReceiveMessage":               true,
	"DeleteMessage":                true,
	"DeleteMessageBatch":           true,
	"ChangeMessageVisibility":      true,
	"ChangeMessageVisibilityBatch": true,
	"PurgeQueue":                   true,
	"DeleteQueue":                  true,
	// It reads the queue's message counts.
	"GetQueueAttributes": true,
	// These three update the queue's configuration, which only the owner
	// may change.
	"SetQueueAttributes": true,
	"TagQueue":           true,
	"UntagQueue":         true,
}

// ForwardedHandler returns the handler of the requests that another node of
// a cluster forwarded to this one, the node that serves their queue. It
// serves them as Handler does, except that it checks no signature and never
// calls RouteToOwner. The forwarding node checked the signature, and the
// request arrives without it. Serve this handler only behind an
// authentication of the cluster's nodes.
//
// A forwarded request keeps the client's Host header and X-Amz-Target, so
// queue URLs and errors read as if this node had received it directly.
func (a *API) ForwardedHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.serveHTTP(w, r, fromNode)
	})
}

// routeToOwner offers rq to Config.RouteToOwner when its action needs the
// queue's owner. It returns true when RouteToOwner wrote the reply.
func (a *API) routeToOwner(w http.ResponseWriter, rq *request) bool {
	if a.cfg.RouteToOwner == nil || !ownerActions[rq.action] {
		return false
	}
	// Every action of ownerActions names its queue by QueueUrl, or by the
	// request's path when QueueUrl is empty.
	var in queueURLInput
	if decode(rq, &in) != nil {
		return false
	}
	name, err := a.queueName(rq, in.QueueURL)
	if err != nil {
		// The action returns the same error when it runs here.
		return false
	}
	return a.cfg.RouteToOwner(w, rq.http, name, rq.body)
}
