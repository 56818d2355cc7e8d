package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/qakka/qakka/internal/region"
)

// Regions configures sends to other regions and the transfers this server
// accepts from them.
type Regions struct {
	// Username and Password (or PasswordFile) are the inter-region
	// credentials. Other regions must present them to send transfers
	// here, and this server presents them to every remote region that
	// sets no credentials of its own. Without a username, this server
	// rejects transfers from other regions.
	Username     string
	Password     string
	PasswordFile string
	// Remotes are the regions this server sends to.
	Remotes []RemoteRegion
	// RequestTimeout bounds one POST of outbox entries to one endpoint of
	// a remote region. Default 30s.
	RequestTimeout time.Duration
}

// RemoteRegion is one region this server sends to. Credentials left empty
// are those of Regions.
type RemoteRegion struct {
	Name string
	// Endpoints are base URLs of the region's servers.
	Endpoints    []string
	Username     string
	Password     string
	PasswordFile string
}

// Validate reports every invalid region option. local is the name of this
// server's region.
func (r *Regions) Validate(local string) error {
	var errs []error
	if r.Password != "" && r.PasswordFile != "" {
		errs = append(errs, errors.New("region-password and region-password-file are both set: set only one"))
	}
	hasPassword := r.Password != "" || r.PasswordFile != ""
	if r.Username == "" && hasPassword {
		errs = append(errs, errors.New("a region password is set without region-username: set both, or neither to reject transfers from other regions"))
	}
	if r.Username != "" && !hasPassword {
		errs = append(errs, fmt.Errorf("region-username %q is set without a password: set region-password or region-password-file", r.Username))
	}
	if strings.Contains(r.Username, ":") {
		errs = append(errs, invalid("region-username", r.Username, "basic authentication does not allow ':' in a username"))
	}
	if r.RequestTimeout <= 0 {
		errs = append(errs, invalid("region-request-timeout", r.RequestTimeout, "use a positive duration such as 30s"))
	}

	seen := map[string]bool{}
	for i := range r.Remotes {
		rm := &r.Remotes[i]
		if err := region.ValidateName(rm.Name); err != nil {
			errs = append(errs, fmt.Errorf("region-remotes: %w", err))
			continue
		}
		if rm.Name == local {
			errs = append(errs, fmt.Errorf("region-remotes names %q, this server's own region: list only the other regions", rm.Name))
		}
		if seen[rm.Name] {
			errs = append(errs, fmt.Errorf("region-remotes names %q twice in its map form: list each region once", rm.Name))
		}
		seen[rm.Name] = true
		errs = append(errs, r.validateRemote(rm))
	}
	return errors.Join(errs...)
}

func (r *Regions) validateRemote(rm *RemoteRegion) error {
	var errs []error
	if len(rm.Endpoints) == 0 {
		errs = append(errs, fmt.Errorf("region-remotes: region %q has no endpoints: give the base URL of at least one of its servers", rm.Name))
	}
	for _, e := range rm.Endpoints {
		if err := region.ValidateEndpoint(e); err != nil {
			errs = append(errs, fmt.Errorf("region-remotes: region %q: %w", rm.Name, err))
		}
	}
	if rm.Password != "" && rm.PasswordFile != "" {
		errs = append(errs, fmt.Errorf("region-remotes: region %q sets both password and password-file: set only one", rm.Name))
	}
	hasPassword := rm.Password != "" || rm.PasswordFile != ""
	if rm.Username == "" && r.Username == "" || !hasPassword && r.Password == "" && r.PasswordFile == "" {
		errs = append(errs, fmt.Errorf("region-remotes: region %q has no credentials: set region-username and region-password, or username and password for the region", rm.Name))
	}
	if strings.Contains(rm.Username, ":") {
		errs = append(errs, fmt.Errorf("region-remotes: region %q: basic authentication does not allow ':' in the username %q", rm.Name, rm.Username))
	}
	return errors.Join(errs...)
}

// remoteKeys are the keys of one region in the map form of region-remotes.
var remoteKeys = []string{"endpoints", "username", "password", "password-file"}

// parseRemotes reads region-remotes. In a flag, an environment variable or
// a YAML list it is a list of name=endpoint elements, where a name given
// twice gets both endpoints. In YAML it can also be a map from region name
// to its endpoints and credentials.
func parseRemotes(v any) ([]RemoteRegion, error) {
	if m, ok := v.(map[string]any); ok {
		return parseRemoteMap(m)
	}
	elems, err := toStrings(v)
	if err != nil {
		return nil, fmt.Errorf("%w, or a YAML map of regions", err)
	}
	var out []RemoteRegion
	for _, e := range elems {
		name, endpoint, ok := strings.Cut(e, "=")
		name, endpoint = strings.TrimSpace(name), strings.TrimSpace(endpoint)
		if !ok || name == "" || endpoint == "" {
			return nil, fmt.Errorf("%q is not a remote region: use name=endpoint, such as west=https://qakka-west.example.com:8080", e)
		}
		i := slices.IndexFunc(out, func(r RemoteRegion) bool { return r.Name == name })
		if i < 0 {
			out = append(out, RemoteRegion{Name: name})
			i = len(out) - 1
		}
		out[i].Endpoints = append(out[i].Endpoints, endpoint)
	}
	return out, nil
}

func parseRemoteMap(m map[string]any) ([]RemoteRegion, error) {
	if len(m) == 0 {
		return nil, nil
	}
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	slices.Sort(names)

	out := make([]RemoteRegion, 0, len(names))
	for _, name := range names {
		fields, ok := m[name].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("region %q: give a map with %s", name, strings.Join(remoteKeys, ", "))
		}
		rm := RemoteRegion{Name: name}
		for key, v := range fields {
			var err error
			switch key {
			case "endpoints":
				rm.Endpoints, err = toStrings(v)
			case "username":
				rm.Username, err = toString(v)
			case "password":
				rm.Password, err = toString(v)
			case "password-file":
				rm.PasswordFile, err = toString(v)
			default:
				err = fmt.Errorf("unknown key %q: use %s", key, strings.Join(remoteKeys, ", "))
			}
			if err != nil {
				return nil, fmt.Errorf("region %q: %s: %w", name, key, err)
			}
		}
		out = append(out, rm)
	}
	return out, nil
}

// formatRemotes writes region-remotes in the YAML map form, leaving out
// passwords.
func formatRemotes(remotes []RemoteRegion) string {
	if len(remotes) == 0 {
		return "{}"
	}
	var parts []string
	for _, rm := range remotes {
		fields := []string{"endpoints: " + formatValue(&rm.Endpoints)}
		if rm.Username != "" {
			fields = append(fields, "username: "+quote(rm.Username))
		}
		if rm.PasswordFile != "" {
			fields = append(fields, "password-file: "+quote(rm.PasswordFile))
		}
		parts = append(parts, quote(rm.Name)+": {"+strings.Join(fields, ", ")+"}")
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// isMapOption reports whether an option takes a YAML map, whose nested
// keys the file layer accepts under the option's name.
func isMapOption(o option) bool {
	_, ok := o.field(&Config{}).(*[]RemoteRegion)
	return ok
}
