set -eu
head="$LWS_LEADER_ADDRESS:$VLLMTUNE_RAY_PORT"
deadline=$(( $(date +%s) + VLLMTUNE_RAY_WAIT_SECONDS ))
while :; do
  # While the head is absent one probe blocks ~40s (Ray's GCS connect timeout): give it at
  # most what is left of the deadline, so that the deadline holds.
  left=$(( deadline - $(date +%s) ))
  timeout "$(( left > 1 ? left : 1 ))" ray health-check --address="$head" >/dev/null 2>&1 && break
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "vllmtune: the Ray head $head did not answer in ${VLLMTUNE_RAY_WAIT_SECONDS}s" >&2
    exit 1
  fi
  sleep 5
done
exec ray start --address="$head" --block --disable-usage-stats
