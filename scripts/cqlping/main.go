// Command cqlping checks that a Cassandra node responds to CQL queries.
//
// It connects to one host, runs SELECT release_version FROM system.local and
// prints the version. It exits with status 1 and a message on stderr when the
// node does not respond within the timeout.
//
// Usage:
//
//	cqlping [-timeout 5s] [host:port]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

func main() {
	timeout := flag.Duration("timeout", 5*time.Second, "how long to wait for the response")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: cqlping [-timeout 5s] [host:port]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 1 {
		flag.Usage()
		os.Exit(2)
	}
	host := "127.0.0.1:9042"
	if flag.NArg() == 1 {
		host = flag.Arg(0)
	}
	version, err := ping(host, *timeout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cqlping: %s: %v\n", host, err)
		os.Exit(1)
	}
	fmt.Println(version)
}

func ping(host string, timeout time.Duration) (string, error) {
	cluster := gocql.NewCluster(host)
	cluster.ConnectTimeout = timeout
	cluster.Timeout = timeout
	cluster.NumConns = 1
	// Only the named host: the node may advertise other addresses.
	cluster.DisableInitialHostLookup = true
	session, err := cluster.CreateSession()
	if err != nil {
		return "", err
	}
	defer session.Close()

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var version string
	err = session.Query("SELECT release_version FROM system.local").
		ScanContext(ctx, &version)
	if err != nil {
		return "", err
	}
	return version, nil
}
