#!/bin/bash
# The Debian packages set-up needs (Makefile: DEB_PACKAGES), installed the least intrusive way:
#   * only the packages that are missing are passed to apt-get;
#   * --no-install-recommends: Debian's chromium with its recommends is 130 packages (avahi-daemon, samba-libs,
#     ...); without them 25, no daemon among them;
#   * nothing installed is ever upgraded or removed: apt-get's plan is simulated first, and if it would upgrade
#     or remove a package, set-up stops and says which (--no-upgrade also keeps the named packages as they are);
#   * quiet: apt's output goes to LOG, printed only if a step fails.
# Not root: says what is missing and how to install it, and fails.
#
# usage: scripts/sysdeps.sh LOG PACKAGE...
set -u
log=$1
shift

missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

apt_args=(--no-install-recommends --no-upgrade)
if [ "$(id -u)" != "0" ]; then
  echo "set-up: missing Debian packages: ${missing[*]}"
  echo "set-up: install them with: sudo apt-get install ${apt_args[*]} ${missing[*]}"
  exit 1
fi

fail() {
  echo "set-up: $1 failed; its log ($log) follows"
  cat "$log"
  exit 1
}

export DEBIAN_FRONTEND=noninteractive
echo "set-up: installing Debian packages ${missing[*]} (no recommends, nothing upgraded; log: $log)"
: >"$log"
apt-get update -q >>"$log" 2>&1 || fail "apt-get update"
plan=$(apt-get install -s "${apt_args[@]}" "${missing[@]}" 2>&1)
status=$?
echo "$plan" >>"$log"
[ $status -eq 0 ] || fail "apt-get install -s ${missing[*]}"
# "Inst pkg [installed version] (new version ...)" is an upgrade, "Remv pkg" a removal
touched=$(echo "$plan" | awk '/^Inst [^ ]+ \[/ {print $2} /^Remv / {print $2}' | sort -u | tr '\n' ' ')
if [ -n "$touched" ]; then
  echo "set-up: stopped: installing ${missing[*]} would upgrade or remove installed packages: $touched"
  echo "set-up: set-up never changes what is installed; install them yourself: apt-get install ${apt_args[*]} ${missing[*]}"
  exit 1
fi
apt-get install -y -q "${apt_args[@]}" "${missing[@]}" >>"$log" 2>&1 || fail "apt-get install"
echo "set-up: installed $(echo "$plan" | grep -c '^Inst ') Debian packages (${missing[*]} and their dependencies)"
