#!/bin/sh
# fresh-check.sh [REPO]: the README's two commands on a brand-new Debian 12 machine.
#
# Makes a new Debian 12 root (debootstrap --variant=minbase bookworm, then only what a new
# machine ships: gcc, make, libc6-dev, python3, git, ca-certificates and libblas-dev), clones
# REPO's committed HEAD (default: this checkout) into it, and runs `make demo` and then
# `.ci/run` inside it (chroot, with /proc, /sys, /dev and /dev/shm bound).  It prints the test
# pass count and exits non-zero on any failure.  It shows whether the two commands install
# everything they need: what was installed by hand on this machine is not there.
#
# Needs root, debootstrap (installed when missing) and Debian's mirror.  The bare root is
# kept in $FRESH_BASE (default /var/tmp/kvgrid-fresh-deb12; about 1.5 minutes to make the
# first time, 350 MB); each run works on a copy of it, removed afterwards.
# FRESH_KEEP=1 keeps the copy for a look inside.  FRESH_CMD replaces the two commands.
set -u
repo=$(cd "${1:-$(dirname "$0")/..}" && pwd) || exit 2
base=${FRESH_BASE:-/var/tmp/kvgrid-fresh-deb12}
mirror=${FRESH_MIRROR:-http://deb.debian.org/debian}
cmd=${FRESH_CMD:-"make demo && CI=true sh .ci/run </dev/null"}
say() { echo "fresh-check: $*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot and bind mounts)"
git -C "$repo" rev-parse --verify -q HEAD >/dev/null || die "$repo: not a git checkout with a commit"
[ -z "$(git -C "$repo" status --porcelain --untracked-files=no)" ] ||
	say "note: $repo has uncommitted changes; only the committed HEAD is checked"

if [ ! -x "$base/usr/bin/make" ]; then
	if ! command -v debootstrap >/dev/null 2>&1; then
		say "installing debootstrap"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null ||
			die "cannot install debootstrap"
	fi
	rm -rf "$base" "$base.new"
	say "making a Debian 12 root in $base"
	debootstrap --variant=minbase bookworm "$base.new" "$mirror" >/dev/null ||
		die "debootstrap failed"
	cp /etc/resolv.conf "$base.new/etc/" 2>/dev/null
	chroot "$base.new" /bin/sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends gcc make libc6-dev python3 git \
		ca-certificates libblas-dev >/dev/null' || die "cannot install the base packages"
	mv "$base.new" "$base"
fi

root=$(mktemp -d -p /var/tmp kvgrid-fresh-run-XXXXXX) || die "mktemp failed"
cleanup() {
	for m in dev/shm dev sys proc; do umount -l "$root/$m" 2>/dev/null; done
	# and whatever the tests mounted inside (ip netns makes /run/netns a mount), deepest first
	awk -v r="$root/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null; done
	if [ "${FRESH_KEEP:-0}" = 1 ]; then say "kept $root"; else rm -rf "$root"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cp -a "$base/." "$root/" || die "cannot copy the root"
cp /etc/resolv.conf "$root/etc/" 2>/dev/null
cp /etc/hosts "$root/etc/hosts" 2>/dev/null # a new machine resolves localhost
# Trust anchors this machine adds to Debian's (a site's or a proxy's CA) go in too, as on a
# new machine of the same site; without them a registry behind such a proxy (npm, for the
# pinned llama.cpp) would fail in the new root and not on the machine.
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
	mkdir -p "$root/usr/local/share/ca-certificates"
	cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
	chroot "$root" /usr/sbin/update-ca-certificates >/dev/null 2>&1 ||
		say "note: could not add this machine's trust anchors to the new root"
fi
for m in proc sys dev dev/shm; do
	mount --bind "/$m" "$root/$m" || die "cannot bind /$m"
done
git clone -q "$repo" "$root/srv/kvgrid" || die "git clone failed"
say "$(git -C "$repo" log -1 --format='%h %s') in a new Debian 12 root: $cmd"
log=$root/srv/fresh-check.log
# sh has no pipefail: the command's status travels in a file
chroot "$root" /bin/sh -c "cd /srv/kvgrid && ($cmd); echo \$? >/srv/fresh-check.rc" 2>&1 |
	tee "$log"
rc=$(cat "$root/srv/fresh-check.rc" 2>/dev/null || echo 1)
counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped' "$log" | tail -n 1)
if [ "$rc" = 0 ]; then
	say "PASS: make demo and .ci/run on a new Debian 12 root (${counts:-no test count printed})"
else
	say "FAIL (exit $rc): ${counts:-no test count printed}"
fi
exit "$rc"
