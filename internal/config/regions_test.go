package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadRegionsFromYAMLMap(t *testing.T) {
	path := writeFile(t, `
region: east
region-username: regions
region-password-file: /run/secrets/regions
region-request-timeout: 5s
region-remotes:
  west:
    endpoints: [http://127.0.0.1:8082, http://127.0.0.1:8092]
  north:
    endpoints: http://127.0.0.1:8083
    username: north-user
    password: north-secret
`)
	res, err := load(t, []string{"--config", path}, nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := Regions{
		Username:       "regions",
		PasswordFile:   "/run/secrets/regions",
		RequestTimeout: 5 * time.Second,
		Remotes: []RemoteRegion{
			{Name: "north", Endpoints: []string{"http://127.0.0.1:8083"}, Username: "north-user", Password: "north-secret"},
			{Name: "west", Endpoints: []string{"http://127.0.0.1:8082", "http://127.0.0.1:8092"}},
		},
	}
	if !reflect.DeepEqual(res.Config.Regions, want) {
		t.Errorf("regions = %+v\nwant %+v", res.Config.Regions, want)
	}
}

func TestLoadRegionsFromList(t *testing.T) {
	want := []RemoteRegion{
		{Name: "west", Endpoints: []string{"http://127.0.0.1:8082", "http://127.0.0.1:8092"}},
		{Name: "north", Endpoints: []string{"http://127.0.0.1:8083"}},
	}
	const list = "west=http://127.0.0.1:8082,north=http://127.0.0.1:8083,west=http://127.0.0.1:8092"
	auth := []string{"--region-username=regions", "--region-password=secret"}
	tests := []struct {
		name    string
		args    []string
		environ []string
	}{
		{"flag", append([]string{"--region-remotes=" + list}, auth...), nil},
		{"repeated flag", append([]string{"--region-remotes=west=http://127.0.0.1:8082", "--region-remotes=north=http://127.0.0.1:8083,west=http://127.0.0.1:8092"}, auth...), nil},
		{"environment", auth, []string{"QAKKA_REGION_REMOTES=" + list}},
		{"YAML list", []string{"--config", writeFile(t, "region-remotes: [west=http://127.0.0.1:8082, north=http://127.0.0.1:8083, west=http://127.0.0.1:8092]\n")}, []string{"QAKKA_REGION_USERNAME=regions", "QAKKA_REGION_PASSWORD=secret"}},
		{"flag beats file map", append([]string{"--region-remotes=" + list, "--config", writeFile(t, "region-remotes:\n  south:\n    endpoints: [http://127.0.0.1:9000]\n")}, auth...), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := load(t, tt.args, tt.environ)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !reflect.DeepEqual(res.Config.Regions.Remotes, want) {
				t.Errorf("remotes = %+v, want %+v", res.Config.Regions.Remotes, want)
			}
		})
	}
}

func TestLoadRegionsErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"element without endpoint", "region-username: u\nregion-password: p\nregion-remotes: [west]\n", "name=endpoint"},
		{"unknown key", "region-username: u\nregion-password: p\nregion-remotes:\n  west:\n    endpoint: http://h:1\n", `unknown key "endpoint"`},
		{"not a map", "region-username: u\nregion-password: p\nregion-remotes:\n  west: http://h:1\n", `region "west"`},
		{"own region", "region: east\nregion-username: u\nregion-password: p\nregion-remotes: [east=http://h:1]\n", "own region"},
		{"bad name", "region-username: u\nregion-password: p\nregion-remotes: [ALL=http://h:1]\n", "keywords"},
		{"bad endpoint", "region-username: u\nregion-password: p\nregion-remotes: [west=h:1]\n", "invalid endpoint"},
		{"no credentials", "region-remotes: [west=http://h:1]\n", `region "west" has no credentials`},
		{"password only", "region-password: p\n", "without region-username"},
		{"username only", "region-username: u\n", "without a password"},
		{"both passwords", "region-username: u\nregion-password: p\nregion-password-file: /f\n", "both set"},
		{"bad region", "region: a.b\n", `invalid region "a.b"`},
		{"zero timeout", "region-request-timeout: 0s\n", "region-request-timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, []string{"--config", writeFile(t, tt.yaml)}, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestYAMLRoundTripRegions(t *testing.T) {
	c := Default()
	c.Queue.Region = "east"
	c.Regions = Regions{
		Username:       "regions",
		PasswordFile:   "/run/secrets/regions",
		RequestTimeout: 7 * time.Second,
		Remotes: []RemoteRegion{
			{Name: "north", Endpoints: []string{"https://north.example:8443"}, Username: "n", PasswordFile: "/run/secrets/north"},
			{Name: "west", Endpoints: []string{"http://127.0.0.1:8082", "http://127.0.0.1:8092"}},
		},
	}
	out := c.YAML()
	res, err := load(t, []string{"--config", writeFile(t, string(out))}, nil)
	if err != nil {
		t.Fatalf("Load of the printed configuration: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(res.Config, c) {
		t.Errorf("read back %+v\nwant %+v", res.Config.Regions, c.Regions)
	}
}

func TestYAMLHidesRegionPasswords(t *testing.T) {
	c := Default()
	c.Regions.Username, c.Regions.Password = "regions", "shared-secret"
	c.Regions.Remotes = []RemoteRegion{{Name: "west", Endpoints: []string{"http://h:1"}, Username: "w", Password: "west-secret"}}
	out := string(c.YAML())
	for _, secret := range []string{"shared-secret", "west-secret"} {
		if strings.Contains(out, secret) {
			t.Errorf("printed configuration contains the password %q", secret)
		}
	}
	for _, note := range []string{"# region-password is set and not shown.", "# region-remotes: the password of west is set and not shown."} {
		if !strings.Contains(out, note) {
			t.Errorf("printed configuration lacks %q:\n%s", note, out)
		}
	}
}
