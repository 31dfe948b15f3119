#!/usr/bin/env bash
# make demo: the whole Switchboard path end to end, on loopback, in a
# temporary directory, with real processes:
#
#   registry → ARI and Odoo emulators → approved partner → download link →
#   installer into a sandbox root (code from the link) → agent with both
#   adapters as plugin processes → licence, install, seats, partner code in
#   Odoo → registry restart survived → everything stopped and removed.
#
# Needs only bash, the switchboard binary (SWITCHBOARD=path, default
# bin/switchboard) and, when present, curl (otherwise bash's /dev/tcp is used
# for the few loopback HTTP calls; DEMO_NO_CURL=1 forces that path). Set
# DEMO_KEEP=1 to keep the temporary directory (logs, registry data, sandbox
# root) for a look afterwards. The checks it makes are asserted in Go by
# internal/e2e (go test ./internal/e2e/).
set -uo pipefail
export LC_ALL=C

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SB=${SWITCHBOARD:-$REPO/bin/switchboard}
HEARTBEAT=2s   # the demo's heartbeat interval (agent.toml [heartbeat] interval)
WAIT=20        # seconds any single wait may take before the demo gives up

# --- presentation -----------------------------------------------------------

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
	B=$'\e[1m' G=$'\e[32m' R=$'\e[31m' D=$'\e[2m' N=$'\e[0m'
else
	B='' G='' R='' D='' N=''
fi
STEP=0 TITLE='' FAILED=() T0=$SECONDS HARD=

step() { STEP=$((STEP + 1)) TITLE=$1; printf '\n%s%2d. %s%s\n' "$B" "$STEP" "$1" "$N"; }
say() { printf '    %s\n' "$*"; }
ok() { printf '    %s✓%s %s\n' "$G" "$N" "$*"; }
hl() { printf '%s%s%s' "$B" "$*" "$N"; }

# fail stops the demo: something it needs did not happen.
# The FAILED line comes last, after the logs' tails (see cleanup).
fail() {
	printf '    %s✗ %s%s\n' "$R" "$*" "$N"
	HARD=$(printf '%smake demo FAILED at step %d (%s): %s%s' "$R$B" "$STEP" "$TITLE" "$*" "$N")
	exit 1
}

# miss records a check that failed but does not stop the story; the demo
# still exits non-zero at the end.
miss() {
	printf '    %s✗ %s%s\n' "$R" "$*" "$N"
	FAILED+=("step $STEP ($TITLE): $*")
}

# --- processes and cleanup --------------------------------------------------

W=''                      # the temporary directory
declare -A PID=()         # name → pid (each its own process group via setsid)
ORDER=()                  # start order, stopped in reverse

# start NAME LOGFILE CMD... runs CMD in the background as the leader of a
# new session, so that its pid is also its process group (plugins included)
# and a Ctrl-C on the terminal reaches only this script, which stops it.
start() {
	local name=$1 log=$2
	shift 2
	setsid "$@" >"$log" 2>&1 </dev/null &
	PID[$name]=$!
	ORDER+=("$name")
}

# procs prints "pid ppid pgid state" for every process (Linux /proc).
procs() {
	local f rest
	for f in /proc/[0-9]*/stat; do
		read -r rest 2>/dev/null <"$f" || continue
		set -- ${rest##*) }
		echo "${rest%% *} $2 $3 $1"
	done
}

# running PID: the process exists and is not a zombie.
running() {
	local st
	kill -0 "$1" 2>/dev/null || return 1
	read -r st 2>/dev/null <"/proc/$1/stat" || return 1
	st=${st##*) }
	[ "${st%% *}" != Z ]
}

# group_left PGID lists the live (non-zombie) members of a process group.
group_left() {
	local pid ppid pgid state
	procs | while read -r pid ppid pgid state; do
		[ "$pgid" = "$1" ] && [ "$state" != Z ] && echo "$pid"
	done
}

# children PID lists "pid:name" of the plugin processes PID started.
children() {
	local pid ppid pgid state cmd
	procs | while read -r pid ppid pgid state; do
		[ "$ppid" = "$1" ] && [ "$state" != Z ] || continue
		cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)
		case $cmd in *"plugin serve "*) cmd=${cmd##*plugin serve }; echo "$pid:${cmd%% *}" ;; esac
	done
}

# stop NAME: SIGTERM to the process (it stops its own children), then to its
# group, then SIGKILL; reaps it. Returns non-zero when something survived.
stop() {
	local name=$1 pid=${PID[$1]:-} i
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 150; i++)); do running "$pid" || break; sleep 0.1; done
	if [ -n "$(group_left "$pid")" ]; then
		kill -TERM -- "-$pid" 2>/dev/null
		for ((i = 0; i < 30; i++)); do [ -z "$(group_left "$pid")" ] && break; sleep 0.1; done
	fi
	if [ -n "$(group_left "$pid")" ]; then
		echo "    $name (pid $pid) did not stop on SIGTERM: killing it" >&2
		kill -KILL -- "-$pid" 2>/dev/null
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	unset "PID[$name]"
	[ -z "$(group_left "$pid")" ]
}

cleanup() {
	local rc=$? i name left=()
	trap - EXIT INT TERM
	for ((i = ${#ORDER[@]} - 1; i >= 0; i--)); do
		name=${ORDER[$i]}
		[ -n "${PID[$name]:-}" ] || continue
		stop "$name" || left+=("$name")
	done
	if [ ${#left[@]} -gt 0 ]; then
		echo "make demo: could not stop: ${left[*]}" >&2
		rc=1
	fi
	if [ -n "$W" ] && [ -d "$W" ]; then
		if [ -n "$HARD" ] && [ -d "$W/logs" ]; then
			for f in "$W"/logs/*.log; do
				[ -s "$f" ] || continue
				printf '\n%s--- last lines of %s ---%s\n' "$D" "$(basename "$f")" "$N" >&2
				tail -n 8 "$f" >&2
			done
		fi
		if [ -n "${DEMO_KEEP:-}" ]; then
			echo "kept $W (DEMO_KEEP is set): logs/, registry/, server/"
		else
			rm -rf "$W"
		fi
	fi
	[ -n "$HARD" ] && printf '\n%s\n' "$HARD" >&2
	exit "$rc"
}
trap cleanup EXIT
trap 'printf "\ninterrupted: stopping everything the demo started\n" >&2; exit 130' INT
trap 'exit 143' TERM

# wait_until CMD... retries CMD every 0.1 s for up to $WAIT s; CMD returns
# 2 to give up at once (the process it waits for has exited).
wait_until() {
	local i rc
	for ((i = 0; i < WAIT * 10; i++)); do
		"$@"
		rc=$?
		[ "$rc" = 0 ] && return 0
		[ "$rc" = 2 ] && return 1
		sleep 0.1
	done
	return 1
}

# --- small helpers: HTTP on loopback, JSON fields ---------------------------

# http METHOD URL BODY CONTENT-TYPE OUTFILE: prints the status code.
http() {
	local method=$1 url=$2 body=$3 ctype=$4 out=$5
	if command -v curl >/dev/null && [ -z "${DEMO_NO_CURL:-}" ]; then
		curl -sS -o "$out" -w '%{http_code}' -X "$method" -H "Content-Type: $ctype" \
			${body:+--data-binary "$body"} "$url" 2>/dev/null || true
		return
	fi
	# bash's /dev/tcp: HTTP/1.0, so the answer is neither chunked nor kept alive.
	local hostport=${url#http://} path
	path=/${hostport#*/}
	hostport=${hostport%%/*}
	{
		exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}" || { echo 000; return; }
		printf '%s %s HTTP/1.0\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
			"$method" "$path" "$hostport" "$ctype" "${#body}" "$body" >&3
		local resp
		resp=$(cat <&3)
		exec 3>&-
		printf '%s' "${resp#*$'\r\n\r\n'}" >"$out"
		resp=${resp%%$'\r'*}
		resp=${resp#* }
		echo "${resp%% *}"
	} 2>/dev/null
}

# field KEY FILE: the first scalar value of "KEY" in pretty-printed JSON
# (switchboard --output json), FILE may be - for stdin.
field() {
	sed -n "s/^ *\"$1\": *\"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" "$2" | head -n 1
}

# in_block NAME KEY FILE: field KEY inside the flat object "NAME": {...}.
in_block() { sed -n "/^ *\"$1\": {/,/}/p" "$3" | field "$2" -; }

# xmlrpc PATH METHOD PARAMS-XML OUTFILE: one XML-RPC call to the Odoo emulator.
xmlrpc() {
	local code
	code=$(http POST "$ODOO_URL$1" "<?xml version=\"1.0\"?><methodCall><methodName>$2</methodName><params>$3</params></methodCall>" text/xml "$4")
	[ "$code" = 200 ] && ! grep -q '<fault>' "$4"
}
s() { printf '<value><string>%s</string></value>' "$1"; }
p() { printf '<param>%s</param>' "$1"; }
# execute_kw MODEL METHOD ARGS-XML OUTFILE
execute_kw() {
	xmlrpc /xmlrpc/2/object execute_kw "$(p "$(s demo)")$(p "<value><int>$ODOO_UID</int></value>")$(p "$(s admin)")$(p "$(s "$1")")$(p "$(s "$2")")$(p "<value><array><data>$3</data></array></value>")" "$4"
}
xml_value() { sed -n 's/.*<value><\(string\|int\|boolean\)>\([^<]*\)<\/\(string\|int\|boolean\)><\/value>.*/\2/p' "$1" | head -n 1; }

# --- the story --------------------------------------------------------------

[ -x "$SB" ] || { echo "make demo: $SB is missing: run 'make build' first (or set SWITCHBOARD=path)" >&2; exit 1; }
for tool in setsid sed grep tr; do
	command -v "$tool" >/dev/null || { echo "make demo: $tool is missing (util-linux, sed, grep, coreutils)" >&2; exit 1; }
done
[ -r /proc/self/stat ] || { echo "make demo: needs Linux /proc to follow the processes it starts" >&2; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-demo.XXXXXX") || { echo "make demo: cannot create a temporary directory" >&2; exit 1; }
mkdir -p "$W/logs" "$W/registry" "$W/server" "$W/tmp"
T=$W/tmp

printf '%sSwitchboard demo%s — everything on 127.0.0.1, in %s\n' "$B" "$N" "$W"

step "Vendor registry"
start registry "$W/logs/registry.log" "$SB" registry serve --data "$W/registry" --listen 127.0.0.1:0
registry_up() { running "${PID[registry]}" || return 2; [ -s "$W/registry/registry.addr" ] &&
	[ "$(http GET "http://$(cat "$W/registry/registry.addr")/healthz" '' text/plain "$T/healthz")" = 200 ]; }
wait_until registry_up || fail "the registry did not come up (see the tail of registry.log above)"
REG_ADDR=$(cat "$W/registry/registry.addr")
REG_URL=http://$REG_ADDR
ok "registry serving at $(hl "$REG_URL") (store, admin token and signing key in registry/)"

step "Asterisk (ARI) and Odoo emulators"
start ari "$W/logs/ari.log" "$SB" dev emulate asterisk --listen 127.0.0.1:0 --output json
start odoo "$W/logs/odoo.log" "$SB" dev emulate odoo --listen 127.0.0.1:0 --output json
emulator_up() { running "${PID[$1]}" || return 2; grep -q '"url"' "$W/logs/$1.log"; }
wait_until emulator_up ari || fail "the ARI emulator did not come up (see the tail of ari.log above)"
wait_until emulator_up odoo || fail "the Odoo emulator did not come up (see the tail of odoo.log above)"
ARI_URL=$(field url "$W/logs/ari.log")
ARI_BASE=${ARI_URL%/ari}
ODOO_URL=$(field url "$W/logs/odoo.log")
for ep in 100=online 101=online 102=offline; do
	code=$(http POST "$ARI_BASE/_emulator/endpoints" "{\"technology\":\"PJSIP\",\"resource\":\"${ep%=*}\",\"state\":\"${ep#*=}\"}" application/json "$T/ep")
	[ "$code" = 200 ] || fail "adding endpoint PJSIP/${ep%=*} through $ARI_BASE/_emulator/endpoints answered $code: $(cat "$T/ep")"
done
# What Asterisk itself says, through ARI (GET /ari/endpoints).
[ "$(http GET "$ARI_URL/endpoints?api_key=asterisk:asterisk" '' application/json "$T/endpoints")" = 200 ] ||
	fail "GET $ARI_URL/endpoints: $(cat "$T/endpoints")"
WANT_ENDPOINTS=$(grep -o '"technology":' "$T/endpoints" | wc -l)
WANT_ENDPOINTS=${WANT_ENDPOINTS// /}
xmlrpc /xmlrpc/2/common authenticate "$(p "$(s demo)")$(p "$(s admin)")$(p "$(s admin)")$(p '<value><struct></struct></value>')" "$T/auth" ||
	fail "Odoo emulator refused authenticate(demo, admin): $(cat "$T/auth")"
ODOO_UID=$(xml_value "$T/auth")
for u in "Ana Lopez:ana" "Ben Okafor:ben"; do
	execute_kw res.users create "<value><struct><member><name>name</name>$(s "${u%:*}")</member><member><name>login</name>$(s "${u#*:}")</member></struct></value>" "$T/user" ||
		fail "creating Odoo user ${u#*:} failed: $(cat "$T/user")"
done
execute_kw res.users search_count "<value><array><data><value><array><data>$(s share)$(s =)<value><boolean>0</boolean></value></data></array></value></data></array></value>" "$T/count" ||
	fail "counting Odoo users failed: $(cat "$T/count")"
WANT_USERS=$(xml_value "$T/count")
ok "ARI at $(hl "$ARI_URL") (user asterisk) with $(hl "$WANT_ENDPOINTS endpoints") PJSIP/100, 101 online, 102 offline"
ok "Odoo at $(hl "$ODOO_URL") (db demo, login admin) with $(hl "$WANT_USERS internal users") (admin + 2 created over XML-RPC)"

step "An approved partner"
"$SB" registry partner add --data "$W/registry" --name "Acme Telecom" --email ops@acme.example \
	--tier partner --approve --output json >"$T/partner.json" 2>"$T/partner.err" ||
	fail "registry partner add: $(cat "$T/partner.err")"
CODE=$(field code "$T/partner.json")
[ -n "$CODE" ] || fail "registry partner add printed no code: $(cat "$T/partner.json")"
ok "Acme Telecom approved with partner code $(hl "$CODE")"

step "The partner's download link"
# The partner shares the code as people do: lower case, no dashes.
REF=$(printf '%s' "$CODE" | tr -d '-' | tr '[:upper:]' '[:lower:]')
LINK="$REG_URL/download?ref=$REF"
say "link: $(hl "$LINK")"
status=$(http GET "$LINK" '' text/html "$T/download.html")
case $status in
200)
	unhtml() { sed -e 's/<[^>]*>//g' -e 's/&amp;/\&/g; s/&lt;/</g; s/&gt;/>/g; s/&#39;/'"'"'/g; s/&quot;/"/g; s/&#34;/"/g'; }
	who=$(grep -m1 'class="partner"' "$T/download.html" | unhtml)
	cmd=$(grep -m1 '<pre><code>' "$T/download.html" | unhtml)
	[ -n "$who" ] && say "page: $who"
	[ -n "$cmd" ] && say "install command on the page: $(hl "$cmd")"
	grep -q "$CODE" "$T/download.html" || miss "the download page does not show the code $CODE"
	;;
404) say "(this registry has no download page yet; the link still carries the code)" ;;
*) miss "GET $LINK answered $status" ;;
esac

step "Installer into a sandbox root, code from the link"
SERVER=$W/server
"$SB" install --root "$SERVER" --from-link "$LINK" --yes --configure-ari \
	--ari-url "$ARI_URL" --ari-user asterisk --ari-password asterisk \
	--odoo-url "$ODOO_URL" --odoo-db demo --odoo-user admin --odoo-key admin \
	--output json >"$T/install.json" 2>"$T/install.err" ||
	fail "switchboard install: $(tail -n 3 "$T/install.err")"
act() { in_block activation "$1" "$T/install.json"; }
INSTALL_ID=$(act install_id)
SOURCE=$(in_block partner_code source "$T/install.json")
[ "$(act state)" = activated ] || fail "the install did not activate: $(sed -n '/"activation": {/,/}/p' "$T/install.json")"
[ "$(act partner_code)" = "$CODE" ] || miss "the install is linked to '$(act partner_code)', not $CODE"
[ "$SOURCE" = link ] || miss "the installer took the code from '$SOURCE', not from the link"
ok "install $(hl "$INSTALL_ID") activated for $(hl "$(act partner_code)") ($(act partner_name)); the installer took the code from the $SOURCE"
CONF=$(in_block layout config_file "$T/install.json")
STATE=$(in_block layout state_dir "$T/install.json")
AGENT_BIN=$(in_block layout binary "$T/install.json")
say "sandbox: config, key, licence, secrets, plugin manifest and systemd unit under server/"
# The demo reports every $HEARTBEAT and retries the registry quickly.
if grep -q '^\[heartbeat\]\|^\[sender\]' "$CONF"; then
	fail "$CONF already has a [heartbeat] or [sender] table: the demo cannot add its short interval"
fi
printf '\n# make demo: report often, retry the registry quickly\n[heartbeat]\ninterval = "%s"\n\n[sender]\nbackoff_min = "200ms"\nbackoff_max = "1s"\n' "$HEARTBEAT" >>"$CONF"
"$AGENT_BIN" agent config check "$CONF" >"$T/check" 2>&1 || fail "agent config check: $(cat "$T/check")"
say "agent.toml: heartbeat every $(hl "$HEARTBEAT") for the demo ('agent config check': ok)"

step "The licence carries the partner code"
"$SB" licence show "$STATE/licence" >"$T/licence.txt" 2>&1 || fail "licence show: $(cat "$T/licence.txt")"
grep -E '^(licence|install|partner code|tier|not after):' "$T/licence.txt" | sed 's/^/    /'
grep -q "^partner code: *$CODE\$" "$T/licence.txt" || miss "the licence does not carry $CODE"
if "$SB" licence verify --pub "$W/registry/keys/keyring.pub" --install "$INSTALL_ID" "$STATE/licence" >"$T/verify" 2>&1; then
	ok "signature verified with the registry's own key: $(head -n 1 "$T/verify")"
else
	miss "licence verify: $(cat "$T/verify")"
fi

step "The agent starts, with both adapters as plugin processes"
start agent "$W/logs/agent.log" "$AGENT_BIN" agent run --config "$CONF"
agent_up() { running "${PID[agent]}" || return 2; "$SB" status --config "$CONF" --output json >"$T/status.json" 2>/dev/null; }
wait_until agent_up || fail "the agent did not answer 'switchboard status' (see the tail of agent.log above)"
plugins_up() { running "${PID[agent]}" || return 2; [ "$(children "${PID[agent]}" | wc -l)" -ge 2 ]; }
wait_until plugins_up || fail "the agent did not start its two plugin processes (see the tail of agent.log above)"
PLUGINS=$(children "${PID[agent]}" | sort -t: -k2)
ok "agent pid ${PID[agent]}, plugin processes $(hl "$(echo $PLUGINS | sed 's/\([0-9]*\):\([a-z]*\)/\2 (pid \1)/g')")"

step "The install is active at the registry"
show() { "$SB" registry installs show "$INSTALL_ID" --data "$W/registry" --output json >"$T/show.json" 2>"$T/show.err"; }
reported() { show && [ "${REPORTS:-0}" -lt "$(field report_count "$T/show.json")" ]; }
REPORTS=0
wait_until reported || fail "no heartbeat reached the registry (see the tail of agent.log above)"
"$SB" registry installs list --data "$W/registry" >"$T/list.txt" 2>&1 || fail "registry installs list: $(cat "$T/list.txt")"
head -n 1 "$T/list.txt" | sed 's/^/    /'
grep "^$INSTALL_ID" "$T/list.txt" | sed 's/^/    /'
grep "^$INSTALL_ID" "$T/list.txt" | grep -q ' active ' || miss "installs list does not show $INSTALL_ID active"

step "Seats from both adapters, in a heartbeat"
seats_in() { show && [ "$(field pbx_endpoints "$T/show.json")" = "$WANT_ENDPOINTS" ] && [ "$(field odoo_users "$T/show.json")" = "$WANT_USERS" ]; }
if wait_until seats_in; then
	products=$(sed -n '/"products"/,/\]/p' "$T/show.json" | sed -n 's/^ *"\(name\|version\|distribution\)": *"\([^"]*\)".*/\2/p' | paste -sd' ' | sed 's/ \(asterisk\|odoo\)/, \1/g')
	ok "pbx_endpoints $(hl "$(field pbx_endpoints "$T/show.json")") from ARI (the emulator has $WANT_ENDPOINTS)"
	ok "odoo_users $(hl "$(field odoo_users "$T/show.json")") from Odoo (the emulator has $WANT_USERS active internal users)"
	say "facts: $products; heartbeat seq $(field max_seq "$T/show.json")"
else
	miss "the heartbeat seats are pbx_endpoints=$(field pbx_endpoints "$T/show.json") odoo_users=$(field odoo_users "$T/show.json"), the emulators have $WANT_ENDPOINTS and $WANT_USERS"
fi

step "The partner code written into Odoo"
odoo_code() { execute_kw ir.config_parameter get_param "$(s switchboard.partner_code)" "$T/param" && [ "$(xml_value "$T/param")" = "$CODE" ]; }
WAIT_SAVED=$WAIT WAIT=10
if wait_until odoo_code; then
	ok "ir.config_parameter switchboard.partner_code = $(hl "$(xml_value "$T/param")") (read back over XML-RPC)"
else
	have=$(xml_value "$T/param")
	[ "$have" = 0 ] && have="nothing (get_param returned False)"
	miss "Odoo's ir.config_parameter switchboard.partner_code holds ${have:-?} after ${WAIT}s, not $CODE"
fi
WAIT=$WAIT_SAVED

step "A heartbeat survives a registry restart"
show || fail "registry installs show: $(cat "$T/show.err")"
BEFORE=$(field report_count "$T/show.json")
stop registry || fail "the registry did not stop"
say "registry stopped after $(hl "$BEFORE reports")"
queued() { "$SB" status --config "$CONF" --output json >"$T/status.json" 2>/dev/null &&
	grep -q '"reachable": false' "$T/status.json" && [ "$(field depth "$T/status.json")" -ge 2 ]; }
wait_until queued || fail "the agent did not queue heartbeats while the registry was down (status: $(cat "$T/status.json"))"
say "agent: registry unreachable, $(hl "$(field depth "$T/status.json") heartbeats waiting") in its outbox"
start registry "$W/logs/registry-restart.log" "$SB" registry serve --data "$W/registry" --listen "$REG_ADDR"
wait_until registry_up || fail "the registry did not come back on $REG_ADDR (see the tail of registry-restart.log above)"
say "registry restarted on the same address $REG_ADDR"
drained() { "$SB" status --config "$CONF" --output json >"$T/status.json" 2>/dev/null &&
	grep -q '"reachable": true' "$T/status.json" && [ "$(field depth "$T/status.json")" = 0 ]; }
wait_until drained || fail "the outbox did not drain after the restart (status: $(cat "$T/status.json"))"
REPORTS=$((BEFORE + 2))
wait_until reported || fail "the registry's report count did not grow past $BEFORE"
AFTER=$(field report_count "$T/show.json")
MAXSEQ=$(field max_seq "$T/show.json")
"$SB" status --config "$CONF" >"$T/status.txt" 2>&1
grep -E '^(registry|outbox|heartbeat):' "$T/status.txt" | sed 's/^/    /'
ok "outbox drained; reports at the registry $BEFORE → $(hl "$AFTER")"
if [ "$AFTER" = "$MAXSEQ" ]; then
	ok "highest sequence $MAXSEQ = reports stored: each heartbeat stored exactly once"
else
	miss "the registry stored $AFTER reports but the highest sequence is $MAXSEQ"
fi

step "Shut down and clean up"
PLUGIN_PIDS=$(children "${PID[agent]}" | cut -d: -f1 | tr '\n' ' ')
stop agent || fail "the agent left processes behind"
for pid in $PLUGIN_PIDS; do
	for ((i = 0; i < 50; i++)); do running "$pid" || break; sleep 0.1; done
	running "$pid" && fail "plugin process $pid outlived the agent"
done
ok "agent stopped (SIGTERM, outbox flushed); its plugin processes ${PLUGIN_PIDS}are gone"
for name in odoo ari registry; do stop "$name" || fail "$name did not stop"; done
ok "registry and emulators stopped; the temporary directory is removed on exit"

if [ ${#FAILED[@]} -gt 0 ]; then
	printf '\n%smake demo FAILED: %d check(s) did not hold:%s\n' "$R$B" "${#FAILED[@]}" "$N" >&2
	printf '  - %s\n' "${FAILED[@]}" >&2
	[ -n "${DEMO_KEEP:-}" ] || echo "  (run with DEMO_KEEP=1 to keep the logs, registry data and sandbox root)" >&2
	exit 1
fi
printf '\n%sDemo complete in %ds: nothing left running.%s\n' "$G$B" "$((SECONDS - T0))" "$N"
