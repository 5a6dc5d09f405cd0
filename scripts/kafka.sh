#!/usr/bin/env bash
# A real single-node Apache Kafka 4.x broker (KRaft, combined broker+controller) on 127.0.0.1 for
# tests and CI, without Docker: the jars come from Maven (scripts/kafka/pom.xml), Java 17+ runs them.
#
#   scripts/kafka.sh start    resolve the jars once, format a fresh data dir, start the broker, wait
#                             until it answers; the last line of stdout is its address, 127.0.0.1:PORT
#   scripts/kafka.sh start --secured   (or ORDERWATCH_KAFKA_SECURED=1) the same with a SASL_SSL
#                             listener at that address: a CA and a broker certificate (for 127.0.0.1
#                             and localhost) generated with openssl at every start, one user with a
#                             random password for SCRAM-SHA-512 and SCRAM-SHA-256 (created when the
#                             storage is formatted) and PLAIN. The broker's own listeners (inter-broker, the
#                             controller) stay PLAINTEXT on 127.0.0.1. `env` prints what a client needs.
#   scripts/kafka.sh stop     stop it (TERM, then KILL after a timeout); fine if it is not running
#   scripts/kafka.sh restart [S]  stop it and start it again on the same data and ports, S seconds
#                             later (default 0), secured if it was; the last line of stdout is its address
#   scripts/kafka.sh status   "running 127.0.0.1:PORT (pid N)" and exit 0, or "not running" and exit 1
#                             (secured: "running 127.0.0.1:PORT (pid N, SASL_SSL)")
#   scripts/kafka.sh env      ORDERWATCH_BROKER=127.0.0.1:PORT (what orderwatch reads) and
#                             ORDERWATCH_TEST_BROKER=127.0.0.1:PORT (what the tests read), one per
#                             line, for `set -a; eval "$(scripts/kafka.sh env)"; set +a` (exit 1 if
#                             not running). Secured: ORDERWATCH_BROKER=127.0.0.1:PORT (not TEST_BROKER: the plain
#                             tests cannot use it), ORDERWATCH_SECURITY_PROTOCOL=SASL_SSL,
#                             ORDERWATCH_SASL_MECHANISM=SCRAM-SHA-512, ORDERWATCH_SASL_USERNAME,
#                             ORDERWATCH_SASL_PASSWORD and ORDERWATCH_SSL_CAFILE, one per line:
#                             `set -a; eval "$(scripts/kafka.sh env)"; set +a` configures orderwatch.
#
#
# A cluster (`start --nodes N`, N >= 2): N combined broker+controller nodes on 127.0.0.1 with a static
# KRaft quorum of all N; topics default to replication factor min(N, 3) and min.insync.replicas
# replication-1 (3 nodes: 3 and 2), the internal topics (offsets, transactions) too.
#   scripts/kafka.sh start --nodes N   format and start the nodes; the last line of stdout is the
#                             bootstrap list, 127.0.0.1:P1,127.0.0.1:P2,...
#   scripts/kafka.sh status   one line per node ("node 2 running 127.0.0.1:P (pid N)", "... frozen ...",
#                             "node 3 not running"), then "running K/N nodes: LIST"; exit 0 if K > 0
#   scripts/kafka.sh env      ORDERWATCH_BROKER=LIST and ORDERWATCH_TEST_BROKER=LIST (every node,
#                             running or not)
#   scripts/kafka.sh stop     stop every node (a frozen one is thawed first)
#   scripts/kafka.sh kill I   SIGKILL node I (1-based); its data stays for start-node
#   scripts/kafka.sh start-node I      start node I again on its data and ports; waits until it answers
#   scripts/kafka.sh restart-node I [S]   stop node I (TERM), S seconds later start it again
# On a single node or a cluster:
#   scripts/kafka.sh freeze [I]   SIGSTOP the broker (node I of a cluster; default 1): it keeps its
#                             sockets but answers nothing, like a long GC pause or a stalled VM
#   scripts/kafka.sh thaw [I]     SIGCONT it
#
# Everything lives under ${ORDERWATCH_KAFKA_HOME:-<repo>/.ci/cache/kafka}:
#   libs/               runtime classpath (mvn dependency:copy-dependencies), re-resolved when the pom changes
#   libs.pom.sha256     hash of the pom the jars in libs/ came from; maven.log: the last resolve's output
#   run/                server.properties, kafka.log (broker + format tool output), kafka.pid, address,
#                       data/ (wiped at every start, kept by restart); a cluster: nodes (its size) and
#                       node1/ .. nodeN/, each with its server.properties, data/, kafka.log, kafka.pid
#                       and address; secured: tls/ (ca.pem, the CA's
#                       key, the broker's certificate and PKCS12 keystore) and secured.env (what env prints)
# Knobs (environment): ORDERWATCH_KAFKA_HEAP (default "-Xms256m -Xmx1g"), ORDERWATCH_KAFKA_START_TIMEOUT
# (seconds, default 90), ORDERWATCH_KAFKA_STOP_TIMEOUT (seconds, default 30), ORDERWATCH_KAFKA_SECURED
# (1: start --secured), JAVA_HOME, MAVEN_OPTS. The secured mode needs openssl.
# Informational messages go to stderr so that `addr=$(scripts/kafka.sh start)` captures only the address.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pom="$repo/scripts/kafka/pom.xml"
log4j_config="$repo/scripts/kafka/log4j2.yaml"
cache="${ORDERWATCH_KAFKA_HOME:-$repo/.ci/cache/kafka}"
libs="$cache/libs"
libs_hash="$cache/libs.pom.sha256"
run="$cache/run"
pid_file="$run/kafka.pid"
addr_file="$run/address"
log_file="$run/kafka.log"
props="$run/server.properties"
tls="$run/tls"
secured_env="$run/secured.env"

java_bin="${JAVA_HOME:+$JAVA_HOME/bin/}java"
heap="${ORDERWATCH_KAFKA_HEAP:--Xms256m -Xmx1g}"
start_timeout="${ORDERWATCH_KAFKA_START_TIMEOUT:-90}"
stop_timeout="${ORDERWATCH_KAFKA_STOP_TIMEOUT:-30}"

say() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() {
    say "$*"
    exit 1
}

# A Kafka Uuid for a new cluster: 16 random bytes, base64url without padding; ids starting with
# "-" are avoided (kafka.tools.StorageTool random-uuid does the same, at the cost of a JVM start).
new_cluster_id() {
    python3 -c '
import base64, uuid
while True:
    s = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    if not s.startswith("-"):
        print(s)
        break
'
}

# ---- jars ----------------------------------------------------------------------------------------
ensure_libs() {
    local want
    want="$(sha256sum "$pom" | cut -d' ' -f1)"
    if [ -d "$libs" ] && [ -f "$libs_hash" ] && [ "$(cat "$libs_hash")" = "$want" ] &&
        compgen -G "$libs/kafka_2.13-*.jar" >/dev/null; then
        return 0
    fi
    command -v mvn >/dev/null || die "mvn not found: Maven is needed once to resolve the Kafka jars"
    say "resolving the Kafka jars with Maven into $libs (once per pom change)"
    local started=$SECONDS tmp="$cache/libs.partial"
    mkdir -p "$cache"
    rm -rf "$tmp"
    # Maven's output goes to a file (stdout is kept for the address), shown only when it fails.
    if ! mvn -B -q -f "$pom" dependency:copy-dependencies \
        -DoutputDirectory="$tmp" -DincludeScope=runtime >"$cache/maven.log" 2>&1; then
        sed 's/\x1b\[[0-9;]*m//g' "$cache/maven.log" >&2
        rm -rf "$tmp"
        die "Maven could not resolve the jars of $pom (its output above is in $cache/maven.log)"
    fi
    compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || die "Maven finished but $tmp has no kafka_2.13 jar"
    rm -rf "$libs"
    mv "$tmp" "$libs"
    printf '%s\n' "$want" >"$libs_hash"
    say "resolved $(find "$libs" -name '*.jar' | wc -l) jars in $((SECONDS - started)) s"
}

# ---- process bookkeeping -------------------------------------------------------------------------
# Prints the broker's pid if the pid file names a live process that is our kafka.Kafka.
running_pid() {
    [ -f "$pid_file" ] || return 1
    local pid
    pid="$(cat "$pid_file" 2>/dev/null)" || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # Guard against a recycled pid: the process must be the broker started with our properties file.
    if [ -r "/proc/$pid/cmdline" ]; then
        local cmd
        cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline")"
        [[ "$cmd" == *kafka.Kafka* && "$cmd" == *"$props"* ]] || return 1
        # A zombie (exited, not yet reaped) is not running.
        [ "$(sed 's/.*) //' "/proc/$pid/stat" | cut -d' ' -f1)" != "Z" ] || return 1
    fi
    printf '%s\n' "$pid"
}

address() {
    [ -f "$addr_file" ] && cat "$addr_file"
}

java_opts() {
    # kafka-run-class.sh's defaults, sized for a small (2-core) machine. log4j2's own shutdown hook
    # would stop logging while Kafka's hook is still shutting down and lose its last lines.
    # shellcheck disable=SC2086 # $heap is a list of options
    printf '%s\n' $heap -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
        -Djava.awt.headless=true -Dlog4j2.shutdownHookEnabled=false \
        "-Dlog4j2.configurationFile=$log4j_config"
}

# ---- readiness probe (python3, standard library only) --------------------------------------------
# Waits until the broker answers ApiVersions and a Metadata request lists a live (unfenced) broker.
# Exit 0: ready; 1: timed out; 2: the process exited.
probe_py='
import os, socket, struct, sys, time

host, port, pid, timeout, log = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
want = int(sys.argv[6]) if len(sys.argv) > 6 else 1  # live brokers the metadata must list
CLIENT = b"orderwatch-kafka-sh"

def alive():
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True

def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf

def call(sock, api_key, version, corr, body=b""):
    # request header v1 (non-flexible): api_key, api_version, correlation_id, client_id
    msg = struct.pack(">hhih", api_key, version, corr, len(CLIENT)) + CLIENT + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)
    size = struct.unpack(">i", recv_exact(sock, 4))[0]
    data = recv_exact(sock, size)
    if struct.unpack_from(">i", data)[0] != corr:
        raise ValueError("correlation id mismatch")
    return data[4:]

def ready():
    with socket.create_connection((host, port), timeout=3) as s:
        s.settimeout(3)
        # ApiVersions v0; a broker that dropped v0 still answers, with error 35 and its own range.
        r = call(s, 18, 0, 1)
        err, n = struct.unpack_from(">hi", r)
        if err not in (0, 35):
            return False
        ranges = {k: (lo, hi) for k, lo, hi in (struct.unpack_from(">hhh", r, 6 + 6 * i) for i in range(n))}
        if err == 35 or 3 not in ranges:
            # cannot speak a Metadata version we know: fall back to the startup line in the log
            with open(log, errors="replace") as f:
                return "Kafka Server started" in f.read()
        lo, hi = ranges[3]
        v = min(hi, 8)
        if v < max(lo, 4):
            with open(log, errors="replace") as f:
                return "Kafka Server started" in f.read()
        body = struct.pack(">ib", -1, 0)  # all topics (null array), no auto-creation
        if v >= 8:
            body += struct.pack(">bb", 0, 0)  # no authorized-operations
        r = call(s, 3, v, 2, body)
        _throttle, brokers = struct.unpack_from(">ii", r)
        return brokers >= want

deadline = time.monotonic() + timeout
while time.monotonic() < deadline:
    if not alive():
        sys.exit(2)
    try:
        if ready():
            sys.exit(0)
    except (OSError, ValueError, struct.error):
        pass
    time.sleep(0.25)
sys.exit(1)
'

# ---- secured mode --------------------------------------------------------------------------------
# Waits until the TLS listener completes a handshake with a certificate the CA signed for 127.0.0.1.
# Exit 0: ready; 1: timed out.
tls_probe_py='
import socket, ssl, sys, time

host, port, cafile, timeout = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
context = ssl.create_default_context(cafile=cafile)
deadline = time.monotonic() + timeout
while time.monotonic() < deadline:
    try:
        with socket.create_connection((host, port), timeout=3) as raw:
            with context.wrap_socket(raw, server_hostname=host):
                sys.exit(0)
    except (OSError, ssl.SSLError):
        time.sleep(0.25)
sys.exit(1)
'

# Is the broker under $run a secured one?
is_secured() {
    [ -f "$secured_env" ]
}

# A fresh CA and a broker certificate signed by it for 127.0.0.1 and localhost, in a PKCS12 keystore
# protected by $1. Everything goes to $tls.
make_certificates() {
    local storepass=$1 days=30
    command -v openssl >/dev/null || die "openssl not found: the secured mode generates its certificates with it"
    mkdir -p "$tls"
    chmod 700 "$tls"
    say "generating a CA and a broker certificate in $tls"
    {
        openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days "$days" \
            -subj "/CN=orderwatch test CA" -keyout "$tls/ca.key" -out "$tls/ca.pem" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" &&
            openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=localhost" \
                -keyout "$tls/broker.key" -out "$tls/broker.csr" &&
            printf '%s\n' "basicConstraints=critical,CA:FALSE" \
                "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" \
                "subjectAltName=IP:127.0.0.1,DNS:localhost" "subjectKeyIdentifier=hash" \
                "authorityKeyIdentifier=keyid,issuer" >"$tls/broker.ext" &&
            openssl x509 -req -sha256 -days "$days" -in "$tls/broker.csr" -CA "$tls/ca.pem" \
                -CAkey "$tls/ca.key" -CAcreateserial -extfile "$tls/broker.ext" -out "$tls/broker.pem" &&
            openssl pkcs12 -export -in "$tls/broker.pem" -inkey "$tls/broker.key" -certfile "$tls/ca.pem" \
                -name broker -passout "pass:$storepass" -out "$tls/broker.p12"
    } </dev/null >>"$log_file" 2>&1 || {
        say "openssl failed; the end of $log_file:"
        tail -n 20 "$log_file" >&2
        exit 1
    }
}

# The broker settings both modes share (appended to $props).
common_properties() {
    cat <<EOF
log.dirs=$run/data
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
num.partitions=1
auto.create.topics.enable=true
delete.topic.enable=true
group.initial.rebalance.delay.ms=0
offsets.topic.replication.factor=1
offsets.topic.num.partitions=5
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=5
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1
min.insync.replicas=1
EOF
}

# ---- commands ------------------------------------------------------------------------------------
cmd_start() {
    local pid secured=0
    case "${1:-}" in
    --secured) secured=1 ;;
    "") ;;
    *) die "unknown option '$1' (usage: start [--secured])" ;;
    esac
    case "${ORDERWATCH_KAFKA_SECURED:-}" in
    "" | 0) ;;
    *) secured=1 ;;
    esac
    if pid="$(running_pid)"; then
        if [ "$secured" = 1 ] && ! is_secured; then
            die "already running (pid $pid) without --secured: stop it first"
        fi
        if [ "$secured" = 0 ] && is_secured; then
            die "already running (pid $pid) with --secured: stop it first"
        fi
        say "already running (pid $pid)"
        address
        return 0
    fi
    command -v "$java_bin" >/dev/null || die "java not found (Kafka 4 needs Java 17+; set JAVA_HOME)"
    command -v python3 >/dev/null || die "python3 not found"
    if [ "$secured" = 1 ]; then
        command -v openssl >/dev/null || die "openssl not found: start --secured generates its certificates with it"
    fi
    ensure_libs

    rm -rf "$run"
    mkdir -p "$run/data"

    if [ "$secured" = 1 ]; then
        start_secured
        return
    fi

    local ports broker_port controller_port cluster_id
    ports="$(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
')"
    read -r broker_port controller_port <<<"$ports"
    cluster_id="$(new_cluster_id)"

    cat >"$props" <<EOF
# Written by scripts/kafka.sh: single-node KRaft broker for tests. Regenerated at every start.
process.roles=broker,controller
node.id=1
# Kafka 4: dynamic quorum (KIP-853); the storage is formatted with --standalone.
controller.quorum.bootstrap.servers=127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$broker_port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$broker_port,CONTROLLER://127.0.0.1:$controller_port
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
EOF
    common_properties >>"$props"

    say "formatting $run/data (cluster id $cluster_id)"
    if ! "$java_bin" -Xmx256m "-Dlog4j2.configurationFile=$log4j_config" -cp "$libs/*" \
        kafka.tools.StorageTool format -t "$cluster_id" -c "$props" --standalone \
        </dev/null >>"$log_file" 2>&1; then
        say "formatting the storage failed; the end of $log_file:"
        tail -n 40 "$log_file" >&2
        exit 1
    fi

    launch "$broker_port" "$controller_port"
}

# The secured broker: certificates, a SCRAM user, a SASL_SSL listener for clients and a PLAINTEXT
# one (INTERNAL) for the broker itself, which the readiness probe uses too.
start_secured() {
    local ports broker_port internal_port controller_port cluster_id storepass password
    local user=orderwatch mechanism=SCRAM-SHA-512
    ports="$(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
')"
    read -r broker_port internal_port controller_port <<<"$ports"
    cluster_id="$(new_cluster_id)"
    storepass="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
    password="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
    make_certificates "$storepass"

    (
        umask 077
        cat >"$props" <<EOF
# Written by scripts/kafka.sh start --secured: single-node KRaft broker for tests, clients on
# SASL_SSL (SCRAM), the broker's own listeners PLAINTEXT on 127.0.0.1. Regenerated at every start.
process.roles=broker,controller
node.id=1
# Kafka 4: dynamic quorum (KIP-853); the storage is formatted with --standalone.
controller.quorum.bootstrap.servers=127.0.0.1:$controller_port
listeners=SASL_SSL://127.0.0.1:$broker_port,INTERNAL://127.0.0.1:$internal_port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=SASL_SSL://127.0.0.1:$broker_port,INTERNAL://127.0.0.1:$internal_port,CONTROLLER://127.0.0.1:$controller_port
listener.security.protocol.map=CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,SASL_SSL:SASL_SSL
controller.listener.names=CONTROLLER
inter.broker.listener.name=INTERNAL
sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$user="$password";
ssl.keystore.type=PKCS12
ssl.keystore.location=$tls/broker.p12
ssl.keystore.password=$storepass
ssl.key.password=$storepass
ssl.client.auth=none
EOF
        common_properties >>"$props"
        cat >"$secured_env" <<EOF
ORDERWATCH_SECURITY_PROTOCOL=SASL_SSL
ORDERWATCH_SASL_MECHANISM=$mechanism
ORDERWATCH_SASL_USERNAME=$user
ORDERWATCH_SASL_PASSWORD=$password
ORDERWATCH_SSL_CAFILE=$(printf '%q' "$tls/ca.pem")
EOF
    )

    say "formatting $run/data (cluster id $cluster_id) with the SCRAM user '$user'"
    if ! "$java_bin" -Xmx256m "-Dlog4j2.configurationFile=$log4j_config" -cp "$libs/*" \
        kafka.tools.StorageTool format -t "$cluster_id" -c "$props" --standalone \
        --add-scram "SCRAM-SHA-512=[name=$user,password=$password]" \
        --add-scram "SCRAM-SHA-256=[name=$user,password=$password]" \
        </dev/null >>"$log_file" 2>&1; then
        say "formatting the storage failed; the end of $log_file:"
        tail -n 40 "$log_file" >&2
        exit 1
    fi

    launch "$broker_port" "$controller_port" "$internal_port"
}

# Starts kafka.Kafka with the properties in $props on the data in $run/data and waits until it
# answers (on $3 if given: the secured broker's PLAINTEXT listener, then a TLS handshake on $1);
# prints the address on stdout.
launch() {
    local broker_port=$1 controller_port=$2 probe_port=${3:-$1} pid
    local -a opts
    mapfile -t opts < <(java_opts)
    say "starting the broker on 127.0.0.1:$broker_port (controller 127.0.0.1:$controller_port), log $log_file"
    # nohup: survive the caller's terminal going away; all three streams detached from the caller so
    # that `$(scripts/kafka.sh start)` returns.
    nohup "$java_bin" "${opts[@]}" -cp "$libs/*" kafka.Kafka "$props" </dev/null >>"$log_file" 2>&1 &
    pid=$!
    printf '%s\n' "$pid" >"$pid_file"

    local started=$SECONDS rc=0
    python3 -c "$probe_py" 127.0.0.1 "$probe_port" "$pid" "$start_timeout" "$log_file" || rc=$?
    if [ "$rc" -eq 0 ] && is_secured &&
        ! python3 -c "$tls_probe_py" 127.0.0.1 "$broker_port" "$tls/ca.pem" 30; then
        rc=1
    fi
    if [ "$rc" -ne 0 ]; then
        if [ "$rc" -eq 2 ]; then
            say "the broker exited during startup; the end of $log_file:"
        else
            say "the broker did not answer within ${start_timeout}s; the end of $log_file:"
        fi
        tail -n 60 "$log_file" >&2
        cmd_stop >/dev/null 2>&1 || true
        exit 1
    fi
    printf '127.0.0.1:%s\n' "$broker_port" >"$addr_file"
    say "broker ready after $((SECONDS - started)) s (pid $pid)"
    if is_secured; then
        say "secured: SASL_SSL with SCRAM-SHA-512 (also SCRAM-SHA-256 and PLAIN), CA $tls/ca.pem; 'scripts/kafka.sh env' prints the settings"
    fi
    printf '127.0.0.1:%s\n' "$broker_port"
}

# Stops the broker and starts it again on the same data and ports (what a crash or an upgrade of a
# real broker looks like to its clients); $1 seconds of downtime in between (default 0).
cmd_restart() {
    local downtime="${1:-0}" broker_port controller_port
    [ -f "$props" ] || die "no broker to restart (start one with scripts/kafka.sh start)"
    local internal_port=""
    if is_secured; then
        broker_port="$(sed -n 's/^listeners=SASL_SSL:\/\/127.0.0.1:\([0-9]*\),.*/\1/p' "$props")"
        internal_port="$(sed -n 's/^listeners=.*,INTERNAL:\/\/127.0.0.1:\([0-9]*\),.*/\1/p' "$props")"
        [ -n "$internal_port" ] || die "cannot read the ports from $props"
    else
        broker_port="$(sed -n 's/^listeners=PLAINTEXT:\/\/127.0.0.1:\([0-9]*\),.*/\1/p' "$props")"
    fi
    controller_port="$(sed -n 's/.*CONTROLLER:\/\/127.0.0.1:\([0-9]*\)$/\1/p' "$props" | head -n 1)"
    [ -n "$broker_port" ] && [ -n "$controller_port" ] || die "cannot read the ports from $props"
    cmd_stop
    if [ "$downtime" != 0 ]; then
        say "down for ${downtime} s"
        sleep "$downtime"
    fi
    launch "$broker_port" "$controller_port" $internal_port
}

cmd_stop() {
    local pid
    if ! pid="$(running_pid)"; then
        rm -f "$pid_file" "$addr_file"
        say "not running"
        return 0
    fi
    say "stopping the broker (pid $pid)"
    kill -CONT "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
    local waited=0
    while kill -0 "$pid" 2>/dev/null && running_pid >/dev/null; do
        if [ "$waited" -ge $((stop_timeout * 4)) ]; then
            say "still running after ${stop_timeout}s: KILL"
            kill -KILL "$pid" 2>/dev/null || true
            local i
            for i in $(seq 20); do
                running_pid >/dev/null || break
                sleep 0.25
            done
            break
        fi
        sleep 0.25
        waited=$((waited + 1))
    done
    rm -f "$pid_file" "$addr_file"
    say "stopped"
}

cmd_status() {
    local pid
    if pid="$(running_pid)"; then
        if is_secured; then
            printf 'running %s (pid %s, SASL_SSL)\n' "$(address || echo 'starting')" "$pid"
        else
            printf 'running %s (pid %s)\n' "$(address || echo 'starting')" "$pid"
        fi
        return 0
    fi
    echo "not running"
    return 1
}

cmd_env() {
    local addr
    if running_pid >/dev/null && addr="$(address)"; then
        if is_secured; then
            printf 'ORDERWATCH_BROKER=%s\n' "$addr"
            cat "$secured_env"
        else
            printf 'ORDERWATCH_BROKER=%s\nORDERWATCH_TEST_BROKER=%s\n' "$addr" "$addr"
        fi
        return 0
    fi
    say "not running (start it with scripts/kafka.sh start)"
    return 1
}

# ---- a cluster of N nodes ------------------------------------------------------------------------
nodes_file="$run/nodes"

is_cluster() {
    [ -f "$nodes_file" ]
}

node_count() {
    cat "$nodes_file"
}

node_dir() {
    printf '%s/node%s\n' "$run" "$1"
}

# Prints node $1's pid if it is alive (running or frozen) and is our kafka.Kafka.
node_pid() {
    local dir pid
    dir="$(node_dir "$1")"
    [ -f "$dir/kafka.pid" ] || return 1
    pid="$(cat "$dir/kafka.pid" 2>/dev/null)" || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    if [ -r "/proc/$pid/cmdline" ]; then
        local cmd
        cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline")"
        [[ "$cmd" == *kafka.Kafka* && "$cmd" == *"$dir/server.properties"* ]] || return 1
        [ "$(process_state "$pid")" != "Z" ] || return 1
    fi
    printf '%s\n' "$pid"
}

# The process's state letter: "T" when it is frozen (stopped), "Z" a zombie.
process_state() {
    sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1
}

node_index() {
    local index="${1:-}" count
    count="$(node_count)"
    [[ "$index" =~ ^[0-9]+$ ]] && [ "$index" -ge 1 ] && [ "$index" -le "$count" ] ||
        die "no node '$index': the cluster has nodes 1 to $count"
    printf '%s\n' "$index"
}

cluster_addresses() {
    local i list=""
    for i in $(seq "$(node_count)"); do
        list="$list${list:+,}$(cat "$(node_dir "$i")/address")"
    done
    printf '%s\n' "$list"
}

cmd_start_cluster() {
    local count=$1 i pid
    [[ "$count" =~ ^[0-9]+$ ]] && [ "$count" -ge 2 ] && [ "$count" -le 9 ] ||
        die "--nodes takes 2 to 9 (one node: plain start)"
    if is_cluster; then
        for i in $(seq "$(node_count)"); do
            if node_pid "$i" >/dev/null; then
                [ "$(node_count)" = "$count" ] ||
                    die "a cluster of $(node_count) nodes is running: stop it first"
                say "already running"
                cluster_addresses
                return 0
            fi
        done
    elif pid="$(running_pid)"; then
        die "a single broker is running (pid $pid): stop it first"
    fi
    command -v "$java_bin" >/dev/null || die "java not found (Kafka 4 needs Java 17+; set JAVA_HOME)"
    command -v python3 >/dev/null || die "python3 not found"
    ensure_libs
    rm -rf "$run"
    mkdir -p "$run"
    printf '%s\n' "$count" >"$nodes_file"

    local ports cluster_id voters="" replication min_isr
    ports="$(python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(2 * int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
' "$count")"
    local -a port_list
    read -r -a port_list <<<"$ports"
    for i in $(seq "$count"); do
        voters="$voters${voters:+,}$i@127.0.0.1:${port_list[$((2 * i - 1))]}"
    done
    replication=$((count < 3 ? count : 3))
    min_isr=$((replication - 1))
    cluster_id="$(new_cluster_id)"
    local dir broker_port controller_port
    local -a formats=()
    say "formatting $count nodes (cluster id $cluster_id, replication $replication, min.insync.replicas $min_isr)"
    for i in $(seq "$count"); do
        dir="$(node_dir "$i")"
        broker_port="${port_list[$((2 * i - 2))]}"
        controller_port="${port_list[$((2 * i - 1))]}"
        mkdir -p "$dir/data"
        printf '127.0.0.1:%s\n' "$broker_port" >"$dir/address"
        {
            printf '%s\n' \
                "# Written by scripts/kafka.sh start --nodes $count: node $i of a KRaft cluster for tests" \
                "# (combined broker+controller, static quorum). Regenerated at every start." \
                "process.roles=broker,controller" \
                "node.id=$i" \
                "controller.quorum.voters=$voters" \
                "listeners=PLAINTEXT://127.0.0.1:$broker_port,CONTROLLER://127.0.0.1:$controller_port" \
                "advertised.listeners=PLAINTEXT://127.0.0.1:$broker_port,CONTROLLER://127.0.0.1:$controller_port" \
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT" \
                "controller.listener.names=CONTROLLER" \
                "inter.broker.listener.name=PLAINTEXT"
            # The single broker's settings, with the cluster's replication in place of 1.
            common_properties | sed -e "s|^log.dirs=.*|log.dirs=$dir/data|" \
                -e "s|^\(.*replication.factor\)=1$|\1=$replication|" \
                -e "s|^\(.*min.isr\)=1$|\1=$min_isr|" \
                -e "s|^min.insync.replicas=1$|min.insync.replicas=$min_isr|"
            printf 'default.replication.factor=%s\n' "$replication"
        } >"$dir/server.properties"
        "$java_bin" -Xmx256m "-Dlog4j2.configurationFile=$log4j_config" -cp "$libs/*" \
            kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" \
            </dev/null >>"$dir/kafka.log" 2>&1 &
        formats+=($!)
    done
    for i in $(seq "$count"); do
        if ! wait "${formats[$((i - 1))]}"; then
            say "formatting node $i failed; the end of $(node_dir "$i")/kafka.log:"
            tail -n 40 "$(node_dir "$i")/kafka.log" >&2
            exit 1
        fi
    done
    for i in $(seq "$count"); do
        launch_node "$i"
    done
    for i in $(seq "$count"); do
        await_node "$i" "$count" || {
            cmd_stop_cluster >/dev/null 2>&1 || true
            exit 1
        }
    done
    say "cluster of $count nodes ready"
    cluster_addresses
}

# Starts node $1 on its properties and data (without waiting).
launch_node() {
    local dir pid
    local -a opts
    dir="$(node_dir "$1")"
    # A node's heap is smaller than a single broker's: N of them share the machine.
    mapfile -t opts < <(heap="${ORDERWATCH_KAFKA_HEAP:--Xms128m -Xmx512m}" java_opts)
    say "starting node $1 on $(cat "$dir/address"), log $dir/kafka.log"
    nohup "$java_bin" "${opts[@]}" -cp "$libs/*" kafka.Kafka "$dir/server.properties" \
        </dev/null >>"$dir/kafka.log" 2>&1 &
    pid=$!
    printf '%s\n' "$pid" >"$dir/kafka.pid"
}

# Waits until node $1 answers and its metadata lists $2 live brokers (default 1).
await_node() {
    local dir pid port rc=0 started=$SECONDS
    dir="$(node_dir "$1")"
    pid="$(cat "$dir/kafka.pid")"
    port="$(cut -d: -f2 "$dir/address")"
    python3 -c "$probe_py" 127.0.0.1 "$port" "$pid" "$start_timeout" "$dir/kafka.log" "${2:-1}" || rc=$?
    if [ "$rc" -ne 0 ]; then
        say "node $1 did not become ready (probe exit $rc); the end of $dir/kafka.log:"
        tail -n 40 "$dir/kafka.log" >&2
        return 1
    fi
    say "node $1 ready after $((SECONDS - started)) s (pid $pid)"
}

cmd_start_node() {
    local index
    is_cluster || die "no cluster (start one with scripts/kafka.sh start --nodes N)"
    index="$(node_index "${1:-}")"
    if node_pid "$index" >/dev/null; then
        say "node $index is already running"
    else
        launch_node "$index"
        await_node "$index" || exit 1
    fi
    cat "$(node_dir "$index")/address"
}

cmd_stop_node() {
    local index=$1 pid waited=0
    pid="$(node_pid "$index")" || {
        say "node $index is not running"
        return 0
    }
    say "stopping node $index (pid $pid)"
    kill -CONT "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
    while node_pid "$index" >/dev/null; do
        if [ "$waited" -ge $((stop_timeout * 4)) ]; then
            say "node $index still running after ${stop_timeout}s: KILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 1
            break
        fi
        sleep 0.25
        waited=$((waited + 1))
    done
}

cmd_restart_node() {
    local index downtime="${2:-0}"
    is_cluster || die "no cluster (start one with scripts/kafka.sh start --nodes N)"
    index="$(node_index "${1:-}")"
    cmd_stop_node "$index"
    if [ "$downtime" != 0 ]; then
        say "node $index down for ${downtime} s"
        sleep "$downtime"
    fi
    cmd_start_node "$index"
}

# SIGKILL the broker, or node $1 of a cluster (its data stays, for start-node).
cmd_kill() {
    local index pid i
    if ! is_cluster; then
        pid="$(running_pid)" || die "not running"
        say "SIGKILL the broker (pid $pid)"
        kill -KILL "$pid"
        return 0
    fi
    index="$(node_index "${1:-}")"
    pid="$(node_pid "$index")" || die "node $index is not running"
    say "SIGKILL node $index (pid $pid)"
    kill -KILL "$pid"
    for i in $(seq 40); do
        node_pid "$index" >/dev/null || return 0
        sleep 0.25
    done
}

# SIGSTOP ($1 = STOP) or SIGCONT ($1 = CONT) the broker, or node $2 of a cluster (default 1).
cmd_signal() {
    local signal=$1 index pid
    if is_cluster; then
        index="$(node_index "${2:-1}")"
        pid="$(node_pid "$index")" || die "node $index is not running"
    else
        [ -z "${2:-}" ] || [ "$2" = 1 ] || die "a single broker has no node '$2'"
        pid="$(running_pid)" || die "not running"
        index=1
    fi
    kill "-$signal" "$pid"
    if [ "$signal" = STOP ]; then
        say "froze node $index (pid $pid)"
    else
        say "thawed node $index (pid $pid)"
    fi
}

cmd_stop_cluster() {
    local i pid
    for i in $(seq "$(node_count)"); do
        if pid="$(node_pid "$i")"; then
            kill -CONT "$pid" 2>/dev/null || true
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    for i in $(seq "$(node_count)"); do
        cmd_stop_node "$i"
    done
    rm -f "$nodes_file"
    say "stopped"
}

cmd_status_cluster() {
    local i pid up=0 count state
    count="$(node_count)"
    for i in $(seq "$count"); do
        if pid="$(node_pid "$i")"; then
            up=$((up + 1))
            state=running
            [ "$(process_state "$pid")" != T ] || state=frozen
            printf 'node %s %s %s (pid %s)\n' "$i" "$state" "$(cat "$(node_dir "$i")/address")" "$pid"
        else
            printf 'node %s not running\n' "$i"
        fi
    done
    if [ "$up" -eq 0 ]; then
        echo "not running"
        return 1
    fi
    printf 'running %s/%s nodes: %s\n' "$up" "$count" "$(cluster_addresses)"
}

case "${1:-}" in
start)
    if [ "${2:-}" = --nodes ]; then
        cmd_start_cluster "${3:-}"
    elif is_cluster; then
        die "a cluster is running: stop it first (or start --nodes $(node_count))"
    else
        cmd_start "${2:-}"
    fi
    ;;
stop) if is_cluster; then cmd_stop_cluster; else cmd_stop; fi ;;
restart)
    ! is_cluster || die "restart is for a single broker: restart-node I [S] restarts one node"
    cmd_restart "${2:-0}"
    ;;
status) if is_cluster; then cmd_status_cluster; else cmd_status; fi ;;
env)
    if is_cluster; then
        addr="$(cluster_addresses)"
        printf 'ORDERWATCH_BROKER=%s\nORDERWATCH_TEST_BROKER=%s\n' "$addr" "$addr"
    else
        cmd_env
    fi
    ;;
kill) cmd_kill "${2:-}" ;;
start-node) cmd_start_node "${2:-}" ;;
restart-node) cmd_restart_node "${2:-}" "${3:-0}" ;;
freeze) cmd_signal STOP "${2:-}" ;;
thaw) cmd_signal CONT "${2:-}" ;;
*)
    echo "usage: $0 start [--secured | --nodes N]|stop|restart [DOWNTIME_SECONDS]|status|env|kill [I]|start-node I|restart-node I [S]|freeze [I]|thaw [I]" >&2
    exit 2
    ;;
esac
