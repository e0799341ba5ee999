#!/bin/sh
# The checks of tests/packaging/run.sh that run inside the Debian 12 chroot, one phase per
# call (POSIX sh: a minbase chroot has no bash guarantees beyond dash):
#   in_chroot.sh installed AGENT_MAX SERVER_MAX | plugin | run | upgrade | remove | purge
# Waits poll for a state with a deadline; nothing sleeps a fixed time.
set -eu

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
as_runnel() { setpriv --reuid=runnel --regid=runnel --init-groups "$@"; }
# wait_for SECONDS DESCRIPTION CMD...: polls CMD every 0.1 s until it succeeds
wait_for() {
	t=$1 what=$2
	shift 2
	n=$((t * 10))
	while ! "$@" >/dev/null 2>&1; do
		n=$((n - 1))
		[ $n -gt 0 ] || fail "timed out after ${t} s waiting for: $what"
		sleep 0.1
	done
}
mode_is() { # mode_is PATH OWNER:GROUP MODE
	got=$(stat -c '%U:%G %a' "$1") || fail "$1 does not exist"
	[ "$got" = "$2 $3" ] || fail "$1 is $got, want $2 $3"
	ok "$1 $got"
}
agent_conf=/etc/runnel/runnel-agent.conf
server_conf=/etc/runnel/runnel-server.conf

installed() {
	agent_max=$1 server_max=$2 soft=""
	getent passwd runnel >/dev/null || fail "no user runnel"
	getent group runnel >/dev/null || fail "no group runnel"
	shell=$(getent passwd runnel | cut -d: -f7)
	case $shell in */nologin | */false) ;; *) fail "runnel has a login shell: $shell" ;; esac
	ok "user and group runnel ($(getent passwd runnel))"
	mode_is /var/lib/runnel runnel:runnel 750
	mode_is /var/lib/runnel/inbox runnel:runnel 750
	mode_is /var/lib/runnel-server runnel:runnel 750
	grep -qx "$agent_conf" /var/lib/dpkg/info/runnel-agent.conffiles || fail "agent conffile"
	grep -qx "$server_conf" /var/lib/dpkg/info/runnel-server.conffiles || fail "server conffile"
	ok "conffiles: $agent_conf, $server_conf"
	for m in man8/runnel-agent.8 man5/runnel-agent.conf.5 man8/runnel-server.8 \
		man5/runnel-server.conf.5 man1/runnel-table.1 man1/runnel-server-fleet.1; do
		[ -s /usr/share/man/$m.gz ] || fail "no man page $m"
	done
	ok "man pages"
	# the alerting rules and the dashboard, as shipped (their checks: tests/monitoring/)
	mon=/usr/share/runnel-server/monitoring
	grep -q '^groups:' $mon/runnel-server.rules.yml || fail "no $mon/runnel-server.rules.yml"
	grep -q '"schemaVersion"' $mon/runnel-server.dashboard.json ||
		fail "no $mon/runnel-server.dashboard.json"
	[ "$(stat -c %a $mon/runnel-server.rules.yml)" = 644 ] || fail "rules file not 0644"
	ok "monitoring files in $mon"
	# enabled on install (deb-systemd-helper makes the links even where systemd is not
	# running, as in this chroot), and restarted, not only started, on upgrade
	for p in runnel-agent runnel-server; do
		[ -L /etc/systemd/system/multi-user.target.wants/$p.service ] ||
			fail "$p.service is not enabled"
		grep -q 'deb-systemd-invoke \$_dh_action' /var/lib/dpkg/info/$p.postinst &&
			grep -q '_dh_action=restart' /var/lib/dpkg/info/$p.postinst ||
			fail "$p.postinst does not restart the service on upgrade"
	done
	ok "services enabled; postinst restarts them on upgrade"
	# as root and as the service's user (ExecStartPre runs as runnel)
	runnel-agent -n -c $agent_conf
	as_runnel runnel-agent -n -c $agent_conf
	runnel-server -n -c $server_conf
	as_runnel runnel-server -n -c $server_conf
	ok "-n passes on the shipped configs, as root and as runnel"
	for p in runnel-agent runnel-server; do
		systemd-analyze verify --man=no /lib/systemd/system/$p.service ||
			fail "systemd-analyze verify $p.service"
	done
	ok "systemd-analyze verify"
	for u in runnel-agent:$agent_max runnel-server:$server_max; do
		p=${u%:*} max=${u#*:}
		score=$(systemd-analyze security --offline=true /lib/systemd/system/$p.service 2>&1 |
			sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p')
		[ -n "$score" ] || fail "no exposure level for $p"
		awk -v s="$score" -v m="$max" 'BEGIN { exit !(s <= m) }' ||
			fail "$p.service: exposure $score > $max"
		ok "systemd-analyze security $p.service: $score (limit $max)"
	done
	# last, so that everything above is checked even while --version is missing
	for p in runnel-agent runnel-server; do
		for o in --version -V; do
			out=$($p $o 2>&1) && echo "$out" | grep -q '0\.1\.0' ||
				{ echo "$out" | head -3; soft="$soft $p $o"; }
		done
	done
	# exit 3: run.sh goes on with the other phases and fails at the end
	[ -z "$soft" ] || { echo "FAIL: --version/-V does not print the version:$soft" >&2; exit 3; }
	ok "--version and -V: $(runnel-agent --version | head -1); $(runnel-server --version | head -1)"
}

plugin() {
	cflags=$(pkg-config --cflags runnel-agent-plugin) || fail "pkg-config runnel-agent-plugin"
	mkdir -p /tmp/plug
	cc -std=c11 -Wall -Wextra -Werror -shared -fPIC -fvisibility=hidden $cflags \
		-o /tmp/plug/hello.so /tmp/hello.c || fail "examples/plugin-hello does not build"
	ok "hello.so built with pkg-config --cflags runnel-agent-plugin ($cflags)"
	cat >/tmp/hello.conf <<-'EOC'
	agent: { data_dir = "/tmp/hello-data"; plugin_dir = "/tmp/plug"; };
	sources = ( { type = "hello"; name = "hi"; table = "main.default.hello"; count = 3; } );
	EOC
	chmod 755 /tmp/plug
	out=$(as_runnel runnel-agent -n -c /tmp/hello.conf 2>&1) || { echo "$out"; fail "hello.so not loaded"; }
	ok "runnel-agent (as runnel) loads hello.so and accepts its keys: $out"
}

run() {
	soft=""
	log=/tmp/run
	mkdir -p $log
	chmod 777 $log
	# setpriv itself in the background (not the function: $! would be a subshell)
	setpriv --reuid=runnel --regid=runnel --init-groups runnel-server -c $server_conf >$log/server.log 2>&1 &
	spid=$!
	wait_for 20 "server listening" grep -q 'listening on' $log/server.log
	setpriv --reuid=runnel --regid=runnel --init-groups runnel-agent -c $agent_conf >$log/agent.log 2>&1 &
	apid=$!
	printf 'line one\nline two\nline three\n' >/var/lib/runnel/inbox/first.log
	rows() {
		runnel-server table describe --json -d /var/lib/runnel-server main.default.telemetry |
			sed -n 's/.*"rows":\([0-9]*\).*/\1/p'
	}
	three() { [ "$(rows)" = 3 ]; }
	if ! (wait_for 30 "3 rows in main.default.telemetry" three); then
		cat $log/server.log $log/agent.log
		kill $apid $spid 2>/dev/null || true
		fail "the inbox file did not reach the table"
	fi
	# `runnel-server table` above ran the packaged runnel-table next to it
	if ! runnel-table verify -d /var/lib/runnel-server main.default.telemetry >/dev/null; then
		kill $apid $spid 2>/dev/null || true
		fail "runnel-table verify: the table is not healthy"
	fi
	# an operator who is not root, in group runnel, asks the running agent (agent.sock is
	# 0660 in the 0750 state directory)
	id rnop >/dev/null 2>&1 || useradd -M -G runnel rnop
	st=$(setpriv --reuid=rnop --regid=rnop --init-groups runnel-agent status 2>&1) &&
		echo "$st" | grep -q inbox || { echo "$st"; soft="runnel-agent status as a member of group runnel"; }
	kill -TERM $apid
	wait $apid || { rc=$?; tail -5 $log/agent.log; fail "agent exit status $rc after SIGTERM"; }
	kill -TERM $spid
	wait $spid || { rc=$?; tail -5 $log/server.log; fail "server exit status $rc after SIGTERM"; }
	ok "server and agent as runnel with the shipped configs: inbox/first.log -> 3 rows in main.default.telemetry"
	[ "$(stat -c %U /var/lib/runnel/buffer.db)" = runnel ] || fail "buffer.db not owned by runnel"
	[ -z "${soft:-}" ] || { echo "FAIL: $soft" >&2; exit 3; }
	ok "runnel-agent status as a member of group runnel"
}

upgrade() {
	echo '# edited by the operator' >>$agent_conf
	touch /var/lib/runnel/keep-me
	# the postinst (systemd-tmpfiles --create) makes the inbox again
	rmdir /var/lib/runnel/inbox 2>/dev/null || rm -rf /var/lib/runnel/inbox
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Options::=--force-confold \
		/tmp/pkgs/up-runnel-agent.deb /tmp/pkgs/up-runnel-server.deb >/tmp/upgrade.log 2>&1 ||
		{ cat /tmp/upgrade.log; fail "upgrade"; }
	v=$(dpkg-query -W -f='${Version} ${Status}' runnel-agent)
	[ "$v" = "0.1.0-2 install ok installed" ] || fail "runnel-agent after upgrade: $v"
	grep -qx '# edited by the operator' $agent_conf || fail "the edit of $agent_conf was lost"
	[ -e /var/lib/runnel/keep-me ] || fail "state lost on upgrade"
	mode_is /var/lib/runnel/inbox runnel:runnel 750
	runnel-agent -n -c $agent_conf >/dev/null
	ok "upgrade to 0.1.0-2: edited conffile kept, state kept, postinst ran"
}

remove() {
	DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq runnel-agent runnel-server >/tmp/remove.log 2>&1 ||
		{ cat /tmp/remove.log; fail "remove"; }
	[ ! -e /usr/bin/runnel-agent ] && [ ! -e /usr/bin/runnel-server ] || fail "programs left after remove"
	grep -qx '# edited by the operator' $agent_conf || fail "remove deleted $agent_conf"
	[ -f $server_conf ] || fail "remove deleted $server_conf"
	[ -e /var/lib/runnel/keep-me ] && [ -d /var/lib/runnel-server ] || fail "remove deleted the state"
	ok "remove: programs gone; configs and state kept"
}

purge() {
	DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq runnel-agent runnel-server >/tmp/purge.log 2>&1 ||
		{ cat /tmp/purge.log; fail "purge"; }
	for f in $agent_conf $server_conf /etc/runnel /var/lib/runnel /var/lib/runnel-server \
		/etc/systemd/system/multi-user.target.wants/runnel-agent.service \
		/etc/systemd/system/multi-user.target.wants/runnel-server.service; do
		[ ! -e $f ] || fail "$f left after purge"
	done
	dpkg-query -W -f='${Status}' runnel-agent 2>/dev/null | grep -q 'not-installed' ||
		[ -z "$(dpkg-query -W -f='${Status}' runnel-agent 2>/dev/null)" ] || fail "runnel-agent still known to dpkg"
	ok "purge: configs, /etc/runnel, state and enable links gone (user runnel kept, as Debian does)"
}

phase=$1
shift
"$phase" "$@"
