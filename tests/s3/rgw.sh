#!/usr/bin/env bash
# A throw-away one-node Ceph RADOS Gateway for the tests: one monitor, one OSD with bluestore
# on a sparse file, radosgw (beast) on 127.0.0.1, no manager, no cephadm, no systemd. All
# state, logs and PIDs live under DIR; the daemons run in the foreground (-f) as children of
# nobody, their PIDs recorded in DIR/pids/.
#
#   rgw.sh start DIR [PORT]   create the cluster in DIR (RGW on PORT, default a free one) or,
#                             when DIR holds a stopped one, start it again with its data
#                             (daemons still running, e.g. mon and osd after radosgw alone
#                             was killed, are kept);
#                             waits until RGW answers and the user exists, then prints
#                             `endpoint=... access_key=... secret_key=... bucket_region=...`
#                             (also in DIR/env, one per line)
#   rgw.sh stop DIR           stops rgw, then osd, then mon, by PID: SIGTERM, SIGKILL after
#                             RGW_STOP_TIMEOUT seconds (default 10); data kept
#   rgw.sh status DIR         one line per daemon; exit 0 when all three run and RGW answers
#
# Environment: RGW_ACCESS_KEY / RGW_SECRET_KEY (default runnel-test / runnel-test-secret),
# RGW_START_TIMEOUT (seconds, default 90), RGW_WATCH_PID: a process (the test) whose end
# stops the cluster, even when it was SIGKILLed (a watcher polls it every second). Needs radosgw ceph-mon ceph-osd (Debian 12: 16.2),
# curl, uuidgen. Ports: a block of 32 below the kernel's ephemeral range (so programs binding
# port 0 never take them), chosen at random among free blocks under a lock, kept in DIR/ports
# so a restart comes back on the same ones. Facts behind the settings:
# tests/README.md "S3 and load balancer tests".
set -euo pipefail

die() {
	echo "rgw.sh: $*" >&2
	exit 1
}
usage() { die "usage: rgw.sh start DIR [PORT] | stop DIR | status DIR"; }

[ $# -ge 2 ] || usage
CMD=$1
DIR=$2
[ -n "$DIR" ] || usage
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
CONF=$DIR/ceph.conf
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
START_TIMEOUT=${RGW_START_TIMEOUT:-90}
STOP_TIMEOUT=${RGW_STOP_TIMEOUT:-10}
ACCESS_KEY=${RGW_ACCESS_KEY:-runnel-test}
SECRET_KEY=${RGW_SECRET_KEY:-runnel-test-secret}
NPORTS=32
LAUNCHED= # the daemons this start launched, newest first
# the port blocks of every cluster made on this machine (a stopped one keeps its block)
REG=${TMPDIR:-/tmp}/runnel-rgw-ports.d

log() { echo "rgw.sh: $*" >&2; }

# ceph CLI against this cluster only; never waits long for a monitor that is not there
ceph_() { timeout 20 ceph -c "$CONF" --connect-timeout 5 "$@" 2>>"$DIR/log/ceph-cli.log"; }

# The PID recorded for daemon $1 if that process is alive and is ours (its command line names
# our ceph.conf: a reused PID is not), else nothing.
pid_of() {
	local f=$DIR/pids/$1 p
	[ -f "$f" ] || return 0
	p=$(cat "$f")
	[ -n "$p" ] && [ -r "/proc/$p/cmdline" ] || return 0
	if tr '\0' ' ' <"/proc/$p/cmdline" | grep -qF -- "$CONF"; then echo "$p"; fi
}

# Polls "$@" until it succeeds; dies after START_TIMEOUT with `what` and the daemon logs' tail.
wait_for() {
	local what=$1
	shift
	local end=$((SECONDS + START_TIMEOUT)) delay=0.05
	until "$@" >/dev/null 2>&1; do
		if [ $SECONDS -ge $end ]; then
			tail -n 20 "$DIR"/log/*.log >&2 || true
			die "timed out after ${START_TIMEOUT}s waiting for $what"
		fi
		for d in mon osd rgw; do
			if [ -f "$DIR/pids/$d" ] && [ -z "$(pid_of $d)" ] &&
				[ "$(cat "$DIR/pids/$d")" != stopped ]; then
				tail -n 30 "$DIR/log/$d.out" "$DIR/log/$d.log" >&2 2>/dev/null || true
				die "$d exited while waiting for $what (logs in $DIR/log)"
			fi
		done
		sleep "$delay"
		delay=0.2
	done
}

# Starts daemon $1 (mon|osd|rgw) with the rest as its command, in the foreground (-f) and in
# the background of this script, stdio to files (under a pipe the caller would never end).
# One still running (only radosgw was killed) is left as it is.
launch() {
	local name=$1
	shift
	if [ -n "$(pid_of "$name")" ]; then
		log "$name still runs (pid $(pid_of "$name"))"
		return
	fi
	"$@" -f </dev/null >>"$DIR/log/$name.out" 2>&1 &
	echo $! >"$DIR/pids/$name"
	LAUNCHED="$name $LAUNCHED"
}

# free for a new block: no socket in any state on it (a TIME_WAIT one would keep a client
# port from being bound); free for a restart: no listener (our own old connections linger)
# With RGW_WATCH_PID: a watcher in a session of its own (a kill of the test's process group
# does not reach it) that runs `rgw.sh stop DIR` once that process is gone. Its command line
# names ceph.conf, so pid_of and stop_one know it.
launch_watch() {
	[ -n "${RGW_WATCH_PID:-}" ] || return 0
	stop_one watch
	# shellcheck disable=SC2016 # expanded by the watcher's shell, from its arguments
	setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; exec "$2" stop "$3"' \
		rgw-watch "$RGW_WATCH_PID" "$SELF" "$DIR" "$CONF" </dev/null >>"$DIR/log/watch.out" 2>&1 &
	echo $! >"$DIR/pids/watch"
	LAUNCHED="$LAUNCHED watch"
}

port_free() { ! ss -Htan "sport = :$1" | grep -q .; }
port_unbound() { ! ss -Hltn "sport = :$1" | grep -q .; }

# A block of NPORTS free ports below the ephemeral range, at random; the lock keeps two
# concurrent starts from picking the same block before their daemons bind it.
pick_ports() {
	local lo hi base p ok try
	read -r lo _ </proc/sys/net/ipv4/ip_local_port_range
	# forget the blocks of clusters whose directory is gone
	for p in "$REG"/*; do
		[ -f "$p" ] || continue
		[ -f "$(sed -n 's/^dir=//p' "$p")/ports" ] || rm -f "$p"
	done
	hi=$((lo - NPORTS))
	for try in $(seq 200); do
		base=$((10000 + (RANDOM * 32768 + RANDOM) % (hi - 10000)))
		base=$((base - base % NPORTS))
		ok=1
		for p in $(seq "$base" $((base + NPORTS - 1))); do
			port_free "$p" || {
				ok=0
				break
			}
		done
		# a block another rgw.sh DIR has recorded (stopped now, restarted later) is not free
		if [ $ok = 1 ] && ! grep -qx "base=$base" "$REG"/* 2>/dev/null; then
			echo "$base"
			return
		fi
		: "$try"
	done
	die "no free block of $NPORTS ports found"
}

write_conf() {
	local fsid=$1 mon_port=$2 rgw_port=$3 ms_min=$4 ms_max=$5
	cat >"$CONF" <<EOF
# written by tests/s3/rgw.sh: a throw-away one-node cluster, everything under $DIR
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
mon initial members = a
auth cluster required = none
auth service required = none
auth client required = none
keyring = $DIR/keyring
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
log to stderr = false
err to stderr = true
ms bind msgr1 = false
ms bind port min = $ms_min
ms bind port max = $ms_max
public addr = 127.0.0.1
cluster addr = 127.0.0.1
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
# the monitor refuses to start when the disk's free share is under these (shared machines)
mon data avail warn = 2
mon data avail crit = 1
[mon]
mon data = $DIR/mon/\$cluster-\$id
# radosgw creates its pools one by one at start: ~24 s to first PUT at the default, ~10 s here
paxos propose interval = 0.1
[osd]
osd data = $DIR/osd/\$cluster-\$id
osd objectstore = bluestore
bluestore block create = true
bluestore block size = 4294967296
bluestore cache autotune = false
bluestore cache size = 134217728
osd memory target = 939524096
[client.rgw]
rgw data = $DIR/rgw
# tcp_nodelay: without it every GET answer waits ~40 ms (headers and body in two writes,
# Nagle against the client's delayed ACK): 45 ms a small GET, 4 ms with it
rgw frontends = beast endpoint=127.0.0.1:$rgw_port tcp_nodelay=1
rgw thread pool size = 64
# with auth off radosgw still wants a "secure" monitor connection, and loops on
# get_initial_auth_request returned -13 forever without this
ms mon client mode = crc
EOF
}

rgw_answers() {
	curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$RGW_PORT/"
}
user_exists() {
	timeout 20 radosgw-admin -c "$CONF" -n client.rgw --admin-socket= user info --uid=runnel-test \
		>/dev/null 2>>"$DIR/log/ceph-cli.log"
}
osd_up() {
	ceph_ osd stat -f json | grep -q '"num_up_osds":1'
}

load_ports() {
	# shellcheck source=/dev/null
	. "$DIR/ports"
	RGW_PORT=$rgw_port
	MON_PORT=$mon_port
}

start() {
	local want_port=${1:-} fresh=0 lockfd t0=$SECONDS
	command -v radosgw >/dev/null || die "radosgw not installed (apt-get install radosgw ceph-mon ceph-osd)"
	# never wipe or fill a directory rgw.sh did not make
	if [ ! -f "$DIR/created" ]; then
		for f in "$DIR"/*; do
			case ${f##*/} in
			ceph.conf | env | keyring | keys | log | mon | monmap | osd | osd_id | pids | ports | rgw | run | '*') ;;
			*) die "$DIR holds ${f##*/}: not a directory rgw.sh made (give an empty or a new one)" ;;
			esac
		done
	fi
	mkdir -p "$DIR/log" "$DIR/pids" "$DIR/run" "$DIR/mon" "$DIR/osd" "$DIR/rgw"
	mkdir -p "$REG"
	exec {lockfd}>"$REG.lock"
	flock "$lockfd"
	# a start that fails stops what it launched (its logs stay)
	trap 'rc=$?; trap - EXIT; for d in $LAUNCHED; do stop_one "$d"; done; exit $rc' EXIT
	if [ ! -f "$DIR/created" ]; then
		fresh=1
		# what a failed first start left is made again
		rm -rf "$DIR/mon" "$DIR/osd" "$DIR/rgw" "$DIR/ports" "$DIR/osd_id" "$DIR/monmap" "$DIR/keys"
		mkdir -p "$DIR/mon" "$DIR/osd" "$DIR/rgw"
		local base fsid
		base=$(pick_ports)
		if [ -n "$want_port" ]; then
			port_free "$want_port" || die "port $want_port is in use"
		fi
		fsid=$(uuidgen)
		cat >"$DIR/ports" <<EOF
base=$base
mon_port=$base
rgw_port=${want_port:-$((base + 1))}
EOF
		{
			cat "$DIR/ports"
			echo "dir=$DIR"
		} >"$REG/$(echo "$DIR" | tr / _)"
		load_ports
		write_conf "$fsid" "$MON_PORT" "$RGW_PORT" $((base + 2)) $((base + NPORTS - 1))
		: >"$DIR/keyring"
		monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$MON_PORT]" "$DIR/monmap" \
			>>"$DIR/log/setup.log" 2>&1 || die "monmaptool failed (log/setup.log)"
		ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" >>"$DIR/log/setup.log" 2>&1 ||
			die "ceph-mon --mkfs failed (log/setup.log)"
	else
		load_ports
		[ -z "$want_port" ] || [ "$want_port" = "$RGW_PORT" ] ||
			die "$DIR was made with port $RGW_PORT, not $want_port"
		[ -z "$(pid_of mon)" ] || [ -z "$(pid_of osd)" ] || [ -z "$(pid_of rgw)" ] ||
			die "already running (rgw.sh stop $DIR first)"
	fi
	[ -n "$(pid_of mon)" ] || port_unbound "$MON_PORT" || die "monitor port $MON_PORT in use"
	[ -n "$(pid_of rgw)" ] || port_unbound "$RGW_PORT" || die "RGW port $RGW_PORT in use"

	launch_watch
	launch mon ceph-mon -c "$CONF" -i a
	wait_for "the monitor" ceph_ mon stat

	if [ $fresh = 1 ]; then
		local uuid id
		uuid=$(uuidgen)
		id=$(ceph_ osd new "$uuid") || die "ceph osd new failed (log/ceph-cli.log)"
		echo "$id" >"$DIR/osd_id"
		mkdir -p "$DIR/osd/ceph-$id"
		ceph-osd -c "$CONF" -i "$id" --mkfs --osd-uuid "$uuid" >>"$DIR/log/setup.log" 2>&1 ||
			die "ceph-osd --mkfs failed (log/setup.log)"
	fi
	launch osd ceph-osd -c "$CONF" -i "$(cat "$DIR/osd_id")"
	wait_for "the OSD up" osd_up

	launch rgw radosgw -c "$CONF" -n client.rgw
	wait_for "RGW answering on 127.0.0.1:$RGW_PORT" rgw_answers
	flock -u "$lockfd"

	if [ $fresh = 1 ]; then
		timeout 30 radosgw-admin -c "$CONF" -n client.rgw --admin-socket= user create --uid=runnel-test \
			--display-name="runnel tests" --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" \
			>>"$DIR/log/setup.log" 2>&1 || die "radosgw-admin user create failed (log/setup.log)"
		printf 'access_key=%s\nsecret_key=%s\n' "$ACCESS_KEY" "$SECRET_KEY" >"$DIR/keys"
	fi
	wait_for "the user" user_exists
	local access_key secret_key
	access_key=$(sed -n 's/^access_key=//p' "$DIR/keys")
	secret_key=$(sed -n 's/^secret_key=//p' "$DIR/keys")
	printf 'endpoint=http://127.0.0.1:%s\naccess_key=%s\nsecret_key=%s\nregion=us-east-1\n' \
		"$RGW_PORT" "$access_key" "$secret_key" >"$DIR/env"
	: >"$DIR/created"
	trap - EXIT
	log "up in $((SECONDS - t0)) s ($([ $fresh = 1 ] && echo created || echo restarted), logs in $DIR/log)"
	paste -sd' ' "$DIR/env"
}

stop_one() {
	local name=$1 p end
	p=$(pid_of "$name")
	if [ -z "$p" ]; then
		[ ! -f "$DIR/pids/$name" ] || echo stopped >"$DIR/pids/$name"
		return 0
	fi
	kill -TERM "$p" 2>/dev/null || true
	end=$((SECONDS + STOP_TIMEOUT))
	while kill -0 "$p" 2>/dev/null && [ $SECONDS -lt "$end" ]; do sleep 0.1; done
	if kill -0 "$p" 2>/dev/null; then
		log "$name (pid $p) still there after ${STOP_TIMEOUT}s: SIGKILL"
		kill -KILL "$p" 2>/dev/null || true
		while kill -0 "$p" 2>/dev/null; do sleep 0.05; done
	fi
	echo stopped >"$DIR/pids/$name"
}

ms() { echo $(($(date +%s%N) / 1000000)); }

stop() {
	[ -f "$CONF" ] || die "$DIR holds no cluster"
	local d t0 t took=""
	t0=$(ms)
	for d in rgw osd mon; do
		t=$(ms)
		stop_one $d
		took="$took $d $(($(ms) - t))"
	done
	stop_one watch
	log "stopped in $(($(ms) - t0)) ms (ms each:$took)"
}

status() {
	local rc=0 d p
	[ -f "$CONF" ] || die "$DIR holds no cluster"
	load_ports
	for d in mon osd rgw; do
		p=$(pid_of $d)
		if [ -n "$p" ]; then echo "$d running pid $p"; else
			echo "$d stopped"
			rc=3
		fi
	done
	if rgw_answers; then echo "endpoint http://127.0.0.1:$RGW_PORT answers"; else
		echo "endpoint http://127.0.0.1:$RGW_PORT does not answer"
		rc=3
	fi
	return $rc
}

case $CMD in
start) start "${3:-}" ;;
stop) stop ;;
status) status ;;
*) usage ;;
esac
