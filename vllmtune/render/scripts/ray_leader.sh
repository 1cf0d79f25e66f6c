set -eu
ray start --head --port="$VLLMTUNE_RAY_PORT" --disable-usage-stats
deadline=$(( $(date +%s) + VLLMTUNE_RAY_WAIT_SECONDS ))
while :; do
  alive=$(python3 -c 'import ray; ray.init(address="auto", logging_level="ERROR"); print(sum(1 for n in ray.nodes() if n["Alive"]))' 2>/dev/null || echo 0)
  [ "$alive" -ge "$VLLMTUNE_NODES" ] && break
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "vllmtune: $alive of $VLLMTUNE_NODES nodes joined the Ray cluster in ${VLLMTUNE_RAY_WAIT_SECONDS}s" >&2
    exit 1
  fi
  echo "vllmtune: $alive of $VLLMTUNE_NODES nodes in the Ray cluster"
  sleep 5
done
exec "$@"
