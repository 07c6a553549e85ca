#!/bin/busybox sh
# /init of the real-guest rig's initrd (scripts/guest/prepare.sh puts it there).
# Loads the virtio modules, waits for the first virtio disk, runs /test.sh (which
# the runner appends to the initrd as a second cpio archive) and powers off.
# Lines the host reads: "VQ-READY ...", "RESULT key=value ..." (from the test)
# and "VQ-EXIT rc=N". A failure of the rig itself is "VQ-ERROR message".
/bin/busybox --install -s /bin
export PATH=/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /tmp
echo 3 >/proc/sys/kernel/printk

for m in $(cat /modules/order); do
  insmod "/modules/$m" || echo "VQ-ERROR insmod $m failed"
done

# The disk, when the VM has one, appears asynchronously once virtio_blk probes it.
disk=none
i=0
while [ $i -lt 100 ]; do
  for d in /sys/block/vd*; do
    [ -e "$d" ] && disk=/dev/${d##*/} && break 2
  done
  sleep 0.05
  i=$((i + 1))
done
# Disks whose names are only in sysfs yet: let mdev-less devtmpfs catch up.
[ "$disk" != none ] && [ ! -b "$disk" ] && sleep 0.2

read -r up _ </proc/uptime
echo "VQ-READY uptime=$up disk=$disk cpus=$(grep -c ^processor /proc/cpuinfo)"
export DISK=$disk
rc=127
if [ -f /test.sh ]; then
  sh /test.sh
  rc=$?
else
  echo "VQ-ERROR no /test.sh in the initrd"
fi
echo "VQ-EXIT rc=$rc"
poweroff -f
