"""The cost guard: a shutdown re-armed at every boot from a deadline fixed at launch.

cloud-init writes the script into scripts/per-boot, so it runs at the first boot and every
boot after (a student's `sudo reboot`, a stop/start): it records the launch time once, then
schedules `shutdown -h` for launch + ttlHours. At each boot it reads ttlHours again from the
instance's current user data (IMDSv2), so changing ttlHours (which stops and starts the
instance, see host.py) moves the deadline, still counted from the launch.
"""

from __future__ import annotations

PER_BOOT_PATH = "/var/lib/cloud/scripts/per-boot/rolelab-ttl.sh"
TTL_MARKER = "# rolelab-ttl-hours: "

SCRIPT = r'''#!/bin/bash
# rolelab cost guard. cloud-init runs it at every boot (scripts/per-boot), so a reboot or a
# stop/start cannot remove it: it powers the instance off at launch time + ttlHours, and with
# shutdown behaviour "terminate" the instance, and its bill, is then gone.
set -u
ttl_hours=__TTL_HOURS__  # as launched; the instance's current user data wins (ttlHours changed since)
state=${ROLELAB_STATE_DIR:-/var/lib/rolelab}
imds=http://169.254.169.254/latest
mkdir -p "$state"
[ -s "$state/launched" ] || date -u +%s > "$state/launched"  # the first boot is the launch
token=$(curl -sf -m 2 -X PUT "$imds/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 60") &&
  current=$(curl -sf -m 2 -H "X-aws-ec2-metadata-token: $token" "$imds/user-data" |
            sed -n 's/^# rolelab-ttl-hours: \([0-9][0-9]*\)$/\1/p' | head -n 1)
[ -n "${current:-}" ] && ttl_hours=$current
if [ "$ttl_hours" -eq 0 ]; then
  shutdown -c 2>/dev/null
  echo "rolelab cost guard: ttlHours is 0, no shutdown scheduled"
  exit 0
fi
launched=$(cat "$state/launched")
deadline=$((launched + ttl_hours * 3600))
left=$(( (deadline - $(date -u +%s) + 59) / 60 ))  # whole minutes, rounded up
if [ "$left" -le 0 ]; then
  shutdown -h now "rolelab: lab TTL of ${ttl_hours} h reached"
else
  shutdown -h "+$left" "rolelab: lab TTL of ${ttl_hours} h reached"
fi
echo "rolelab cost guard: power off at $(date -u -d "@$deadline" +%FT%TZ) (${left} min from now)"
'''


def guard_script(ttl_hours: int) -> str:
    return SCRIPT.replace("__TTL_HOURS__", str(int(ttl_hours)))
