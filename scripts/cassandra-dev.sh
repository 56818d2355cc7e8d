#!/usr/bin/env bash
# cassandra-dev.sh runs a single-node Cassandra 5.0 for development and tests.
#
# Usage: scripts/cassandra-dev.sh start|stop|status
#
#   start   fetch Cassandra's jars with Maven (once per version), write a
#           minimal configuration, start the node on 127.0.0.1 and wait until
#           it responds to a CQL query. Every start begins with an empty data directory.
#           Starting a node that already responds does nothing.
#   stop    stop the node (SIGTERM, then SIGKILL after a grace period) and
#           wait until the process is gone.
#   status  print whether the node responds to CQL; exit 0 if it does, 1 if not.
#
# Everything lives under .cassandra/ in the repository (git-ignored): the jars
# in lib-<version>/, the node's configuration, data and logs in node/.
#
# Environment:
#   CASSANDRA_VERSION        cassandra-all version (default 5.0.8)
#   CASSANDRA_JAVA_HOME      JDK 17 to run it (default /usr/lib/jvm/java-17-openjdk-amd64);
#                            Cassandra 5.0 runs on Java 11 or 17 only
#   CASSANDRA_CQL_PORT       native protocol port (default 9042)
#   CASSANDRA_STORAGE_PORT   internode port (default 7000)
#   CASSANDRA_HEAP           heap size, -Xms and -Xmx (default 1G)
#   CASSANDRA_START_TIMEOUT  seconds to wait for the node to respond (default 180)
#   CASSANDRA_STOP_TIMEOUT   seconds to wait for a clean stop before SIGKILL (default 30)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="${CASSANDRA_VERSION:-5.0.8}"
java_home="${CASSANDRA_JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}"
cql_port="${CASSANDRA_CQL_PORT:-9042}"
storage_port="${CASSANDRA_STORAGE_PORT:-7000}"
heap="${CASSANDRA_HEAP:-1G}"
start_timeout="${CASSANDRA_START_TIMEOUT:-180}"
stop_timeout="${CASSANDRA_STOP_TIMEOUT:-30}"
dependency_plugin="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

base="$root/.cassandra"
lib="$base/lib-$version"
node="$base/node"
pidfile="$node/cassandra.pid"
outfile="$node/logs/stdout.log"
cqlping="$base/bin/cqlping"

log() { echo "cassandra-dev: $*" >&2; }
die() { log "$*"; exit 1; }

# running prints the node's process id and succeeds when its process lives.
running() {
	[[ -f "$pidfile" ]] || return 1
	local pid
	pid="$(cat "$pidfile")"
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	echo "$pid"
}

build_cqlping() {
	mkdir -p "$base/bin"
	(cd "$root" && go build -o "$cqlping" ./scripts/cqlping) ||
		die "cannot build scripts/cqlping"
}

# ping runs SELECT release_version on the node and prints the version.
ping() {
	"$cqlping" -timeout 5s "127.0.0.1:$cql_port" 2>/dev/null
}

fetch() {
	if [[ -f "$lib/cassandra-all-$version.jar" ]]; then
		return
	fi
	command -v mvn >/dev/null || die "mvn not found; install Maven"
	log "fetching cassandra-all $version and its dependencies with Maven"
	local work="$base/fetch-$version"
	rm -rf "$work" "$lib.tmp"
	mkdir -p "$work"
	cat >"$work/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.qakka</groupId>
  <artifactId>cassandra-dev</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.cassandra</groupId>
      <artifactId>cassandra-all</artifactId>
      <version>$version</version>
    </dependency>
  </dependencies>
</project>
EOF
	# Resolution logs a harmless "[ERROR] 'dependencies.dependency.systemPath'
	# ... jmc5.path" line from system-scoped tooling entries of cassandra-parent.
	if ! mvn -B -q -f "$work/pom.xml" \
		"$dependency_plugin:copy-dependencies" \
		-DoutputDirectory="$lib.tmp" -DincludeScope=runtime \
		</dev/null >"$work/mvn.log" 2>&1; then
		tail -n 40 "$work/mvn.log" >&2
		die "mvn could not fetch cassandra-all $version (full log: $work/mvn.log)"
	fi
	[[ -f "$lib.tmp/cassandra-all-$version.jar" ]] ||
		die "mvn finished but $lib.tmp/cassandra-all-$version.jar is missing"
	mv "$lib.tmp" "$lib"
	rm -rf "$work"
}

write_config() {
	rm -rf "$node"
	mkdir -p "$node/logs" "$node/data"
	cat >"$node/cassandra.yaml" <<EOF
cluster_name: qakka-dev
num_tokens: 1
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:$storage_port"
listen_address: 127.0.0.1
rpc_address: 127.0.0.1
storage_port: $storage_port
native_transport_port: $cql_port
start_native_transport: true
commitlog_sync: periodic
commitlog_sync_period: 10000ms
commitlog_segment_size: 32MiB
data_file_directories:
  - $node/data/data
commitlog_directory: $node/data/commitlog
hints_directory: $node/data/hints
saved_caches_directory: $node/data/saved_caches
cdc_raw_directory: $node/data/cdc_raw
auto_snapshot: false
# Qakka commits a queue's round of requests as one logged batch, which can
# exceed the default thresholds of 5KiB (warn) and 50KiB (fail): see
# internal/storage/cassandrastore/doc.go.
batch_size_warn_threshold: 64KiB
batch_size_fail_threshold: 128KiB
EOF
	cat >"$node/logback.xml" <<'EOF'
<configuration scan="false">
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>${cassandra.logdir}/system.log</file>
    <encoder>
      <pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern>
    </encoder>
  </appender>
  <root level="INFO">
    <appender-ref ref="FILE"/>
  </root>
</configuration>
EOF
}

launch() {
	local java="$java_home/bin/java"
	[[ -x "$java" ]] || die "$java not found; Cassandra 5.0 needs Java 17 (set CASSANDRA_JAVA_HOME)"
	local jamm
	jamm="$(ls "$lib"/jamm-*.jar 2>/dev/null | head -n 1)"
	[[ -n "$jamm" ]] || die "no jamm jar in $lib"
	local opts=(
		"-Xms$heap" "-Xmx$heap"
		-Xss256k
		-XX:+ExitOnOutOfMemoryError
		-XX:+UseG1GC
		-XX:+PerfDisableSharedMem
		-XX:+UseThreadPriorities
		"-XX:HeapDumpPath=$node/logs"
		-ea -da:net.openhft...
		"-javaagent:$jamm"
		-Djava.net.preferIPv4Stack=true
		-Dchronicle.analytics.disable=true
		-Djdk.attach.allowAttachSelf=true
		--add-exports java.base/jdk.internal.misc=ALL-UNNAMED
		--add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
		--add-exports java.management/com.sun.jmx.remote.security=ALL-UNNAMED
		--add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
		--add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
		--add-exports java.sql/java.sql=ALL-UNNAMED
		--add-exports java.base/java.lang.ref=ALL-UNNAMED
		--add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
		--add-exports jdk.attach/sun.tools.attach=ALL-UNNAMED
		--add-exports jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
		--add-opens jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
		--add-opens java.base/java.lang.module=ALL-UNNAMED
		--add-opens java.base/jdk.internal.loader=ALL-UNNAMED
		--add-opens java.base/jdk.internal.ref=ALL-UNNAMED
		--add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
		--add-opens java.base/jdk.internal.math=ALL-UNNAMED
		--add-opens java.base/jdk.internal.module=ALL-UNNAMED
		--add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
		--add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
		--add-opens java.base/sun.nio.ch=ALL-UNNAMED
		--add-opens java.base/java.io=ALL-UNNAMED
		--add-opens java.base/java.lang.reflect=ALL-UNNAMED
		--add-opens java.base/java.lang=ALL-UNNAMED
		--add-opens java.base/java.util=ALL-UNNAMED
		--add-opens java.base/java.nio=ALL-UNNAMED
		--add-opens java.base/java.nio.charset=ALL-UNNAMED
		-Dio.netty.tryReflectionSetAccessible=true
		-Dio.netty.allocator.useCacheForAllThreads=true
		-Dio.netty.allocator.maxOrder=11
		"-Dcassandra.config=file://$node/cassandra.yaml"
		"-Dcassandra.storagedir=$node/data"
		"-Dcassandra.logdir=$node/logs"
		"-Dlogback.configurationFile=$node/logback.xml"
		-Dcassandra-foreground=yes
		-Dcassandra.unsafesystem=true
		-Dcassandra.skip_wait_for_gossip_to_settle=0
		"-Djava.io.tmpdir=$node/tmp"
		-cp "$lib/*"
		org.apache.cassandra.service.CassandraDaemon
	)
	mkdir -p "$node/tmp"
	# nohup execs java, so $! is the JVM itself and stop can signal it.
	MALLOC_ARENA_MAX=4 nohup "$java" "${opts[@]}" </dev/null >"$outfile" 2>&1 &
	echo $! >"$pidfile"
}

log_tail() {
	local f
	for f in "$node/logs/system.log" "$outfile"; do
		if [[ -s "$f" ]]; then
			echo "---- last lines of $f ----" >&2
			tail -n 60 "$f" >&2
		fi
	done
}

start() {
	build_cqlping
	if version_seen="$(ping)"; then
		log "a node already responds on 127.0.0.1:$cql_port (release $version_seen)"
		return
	fi
	local pid
	if pid="$(running)"; then
		log "node process $pid exists but does not respond yet; waiting"
	else
		fetch
		write_config
		launch
		pid="$(cat "$pidfile")"
		log "started process $pid; waiting up to ${start_timeout}s for CQL on 127.0.0.1:$cql_port"
	fi
	local started=$SECONDS
	while ((SECONDS - started < start_timeout)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			log_tail
			die "the node exited during startup (logs in $node/logs)"
		fi
		# Probe the port first: building a driver session for every poll
		# of a closed port is needlessly slow.
		if (exec 3<>"/dev/tcp/127.0.0.1/$cql_port") 2>/dev/null; then
			if version_seen="$(ping)"; then
				log "node responds on 127.0.0.1:$cql_port (release $version_seen) after $((SECONDS - started))s"
				return
			fi
		fi
		sleep 1
	done
	log_tail
	die "the node did not respond to CQL within ${start_timeout}s; stop it with: $0 stop"
}

stop() {
	local pid
	if ! pid="$(running)"; then
		rm -f "$pidfile"
		log "no node running"
		return
	fi
	log "stopping process $pid"
	kill -TERM "$pid" 2>/dev/null || true
	local started=$SECONDS
	while kill -0 "$pid" 2>/dev/null; do
		if ((SECONDS - started >= stop_timeout)); then
			log "process $pid still runs after ${stop_timeout}s; sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			started=$SECONDS
			while kill -0 "$pid" 2>/dev/null; do
				((SECONDS - started < 10)) || die "process $pid survives SIGKILL"
				sleep 0.2
			done
			break
		fi
		sleep 0.5
	done
	rm -f "$pidfile"
	log "stopped"
}

status() {
	build_cqlping
	local pid version_seen
	if version_seen="$(ping)"; then
		echo "running: 127.0.0.1:$cql_port responds (release $version_seen)"
		return 0
	fi
	if pid="$(running)"; then
		echo "starting or unhealthy: process $pid runs but 127.0.0.1:$cql_port does not respond"
	else
		echo "stopped: nothing responds on 127.0.0.1:$cql_port"
	fi
	return 1
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
*)
	echo "usage: $0 start|stop|status" >&2
	exit 2
	;;
esac
