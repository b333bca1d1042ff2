#!/usr/bin/env bash
# 2 MiB hugepages for a DPDK process that wants them (net_af_xdp's UMEM on a real NIC, dpdk-dumpcap):
#   scripts/hugepages.sh reserve N DIR   adds N pages to the kernel's pool and mounts hugetlbfs on DIR;
#                                        prints the EAL words to use them (--huge-dir DIR -m MB)
#   scripts/hugepages.sh release N DIR   unmounts DIR and gives N pages back (those reserve added)
# Root only. The pool is shared by every user of the machine: release what you reserved, in a trap.
set -eu
pages=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
action=${1:-}
n=${2:-}
dir=${3:-}
case $action:$n in
reserve:[0-9]* | release:[0-9]*) ;;
*) echo "usage: $0 reserve|release N DIR" >&2; exit 2 ;;
esac
[ -n "$dir" ] || { echo "usage: $0 reserve|release N DIR" >&2; exit 2; }
[ -w "$pages" ] || { echo "$0: cannot change $pages (root, and a kernel with 2 MiB hugepages)" >&2; exit 1; }
now=$(cat "$pages")
if [ "$action" = reserve ]; then
	echo $((now + n)) >"$pages"
	got=$(($(cat "$pages") - now))
	if [ "$got" -lt "$n" ]; then
		echo "$now" >"$pages"
		echo "$0: the kernel gave $got of $n pages (memory too fragmented?); none kept" >&2
		exit 1
	fi
	# Give the pages back if the mount fails: nothing half done stays behind.
	trap 'echo "$now" >"$pages"' ERR
	mkdir -p "$dir"
	mountpoint -q "$dir" || mount -t hugetlbfs -o pagesize=2M nodev "$dir"
	trap - ERR
	echo "--huge-dir $dir -m $((n * 2))"
else
	mountpoint -q "$dir" && { umount "$dir" 2>/dev/null || umount -l "$dir"; }
	echo $((now > n ? now - n : 0)) >"$pages"
fi
