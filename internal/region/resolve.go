package region

import (
	"slices"
	"strconv"
	"strings"

	"github.com/qakka/qakka/internal/queue"
)

// Destinations are the regions a send or a queue configuration goes to.
type Destinations struct {
	// Local is true when the local region is one of them.
	Local bool
	// Remotes lists the other regions, in name order.
	Remotes []string
}

// Names lists every destination: the local region first, then the remote
// regions in name order.
func (d Destinations) Names(local string) []string {
	out := make([]string, 0, len(d.Remotes)+1)
	if d.Local {
		out = append(out, local)
	}
	return append(out, d.Remotes...)
}

// Resolve returns the regions that spec names. spec is a comma-separated
// list of region names and the keywords LOCAL (this region), ALL (every
// configured region) and REMOTE (every configured region but this one).
// An empty spec means LOCAL. field names the parameter in the error, a
// *queue.InvalidError that lists the configured regions, which an unknown
// name or an empty list element causes.
func (r *Router) Resolve(field, spec string) (Destinations, error) {
	var d Destinations
	if strings.TrimSpace(spec) == "" {
		d.Local = true
		return d, nil
	}
	remote := make(map[string]bool, len(r.remotes))
	for part := range strings.SplitSeq(spec, ",") {
		name := strings.TrimSpace(part)
		switch {
		case name == KeywordLocal || name == r.cfg.Local:
			d.Local = true
		case name == KeywordAll:
			d.Local = true
			for _, rm := range r.remotes {
				remote[rm.name] = true
			}
		case name == KeywordRemote:
			for _, rm := range r.remotes {
				remote[rm.name] = true
			}
		case r.remote(name) != nil:
			remote[name] = true
		case name == "":
			return Destinations{}, &queue.InvalidError{Field: field, Value: spec,
				Reason: "has an empty element: use a comma-separated list of " + r.knownRegions()}
		default:
			return Destinations{}, &queue.InvalidError{Field: field, Value: spec,
				Reason: "names the unknown region " + strconv.Quote(name) + ": use " + r.knownRegions()}
		}
	}
	for _, rm := range r.remotes {
		if remote[rm.name] {
			d.Remotes = append(d.Remotes, rm.name)
		}
	}
	return d, nil
}

// knownRegions lists what a regions parameter may name, for error
// messages.
func (r *Router) knownRegions() string {
	names := []string{strconv.Quote(r.cfg.Local) + " (local)"}
	for _, rm := range r.remotes {
		names = append(names, strconv.Quote(rm.name))
	}
	return "LOCAL, ALL, REMOTE or a configured region: " + strings.Join(names, ", ")
}

// Regions lists the configured regions, the local one first.
func (r *Router) Regions() []string {
	out := []string{r.cfg.Local}
	for _, rm := range r.remotes {
		out = append(out, rm.name)
	}
	return slices.Clip(out)
}
