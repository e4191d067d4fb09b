#!/usr/bin/env bash
# Installs what NetGuardian's test suite and `make bench-e2e` need from the
# system. As root it uses apt-get; otherwise it names the missing Debian
# packages and stops.
set -euo pipefail

# command-or-path : Debian package
needs=(
  "tshark:tshark"                       # independent packet counts for capture/window tests
  "capinfos:tshark"
  "tcpdump:tcpdump"                     # compiles BPF filter expressions for live capture
  "ip:iproute2"                         # network namespaces and veth pairs for live capture tests
  "pg_initdb:postgresql"                # throwaway clusters for sink-postgres tests (any version)
  "chromium:chromium"                   # dashboard tests in headless Chromium
  "protoc:protobuf-compiler"            # make proto
  "editcap:tshark"
  # make bench-e2e times analyze against these flow meters (small packages)
  "nfpcapd:nfdump"
  "softflowd:softflowd"
  "argus:argus-server"
)

missing=()
for n in "${needs[@]}"; do
  cmd=${n%%:*} pkg=${n##*:}
  if [[ $cmd == pg_initdb ]]; then
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && continue
  elif command -v "$cmd" >/dev/null 2>&1 || [[ -x /usr/sbin/$cmd ]]; then
    continue
  fi
  [[ " ${missing[*]} " == *" $pkg "* ]] || missing+=("$pkg")
done
# The training golden data is committed; python3-xgboost is only needed by `make model`.

if ((${#missing[@]} == 0)); then
  echo "install-deps: all system packages present"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing Debian packages: ${missing[*]}" >&2
  echo "install-deps: run as root, or: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer for it.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The benchmark runs the flow meters on files; the daemons the packages
# enable (nfcapd, softflowd, argus capturing) are not wanted.
if [[ -d /run/systemd/system ]]; then
  for pu in nfdump:nfdump softflowd:softflowd argus-server:argus; do   # package:unit
    pkg=${pu%%:*} unit=${pu##*:}
    if [[ " ${missing[*]} " == *" $pkg "* ]]; then
      systemctl disable --now "$unit.service" >/dev/null 2>&1 || true
    fi
  done
fi
echo "install-deps: done"
