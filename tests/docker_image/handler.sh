#!/bin/sh
# Per-connection HTTP handler for the fake vLLM server (run by `nc -ll -e`).
# stdin/stdout are the client socket; stderr goes to the container log.

CR=$(printf '\r')
read -r -t 10 REQ || exit 0
REQ="${REQ%$CR}"
METHOD="${REQ%% *}"
rest="${REQ#* }"
URLPATH="${rest%% *}"
URLPATH="${URLPATH%%\?*}"

LEN=0
AUTH=""
while read -r -t 10 h; do
    h="${h%$CR}"
    [ -z "$h" ] && break
    name=$(echo "${h%%:*}" | tr 'A-Z' 'a-z')
    val="${h#*:}"; val="${val# }"
    case "$name" in
        content-length) LEN="$val" ;;
        authorization) AUTH="$val" ;;
    esac
done
case "$LEN" in ''|*[!0-9]*) LEN=0 ;; esac
# Drain the request body so closing the socket does not reset the connection.
[ "$LEN" -gt 0 ] && head -c "$LEN" >/dev/null

respond() {  # status reason content-type body
    printf 'HTTP/1.1 %s %s\r\nContent-Type: %s\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s' \
        "$1" "$2" "$3" "${#4}" "$4"
    echo "INFO:     - \"$METHOD $URLPATH HTTP/1.1\" $1 $2" >&2
    exit 0
}
json() { respond "$1" "$2" "application/json" "$3"; }

NOW=$(date +%s)
FIRST="${FAKE_VLLM_NAMES%% *}"

models_json() {
    data=""
    for n in $FAKE_VLLM_NAMES; do
        data="${data:+$data,}{\"id\":\"$n\",\"object\":\"model\",\"created\":$FAKE_VLLM_STARTED,\"owned_by\":\"vllm\",\"root\":\"$FAKE_VLLM_MODEL\",\"parent\":null,\"max_model_len\":$FAKE_VLLM_MAX_MODEL_LEN}"
    done
    echo "{\"object\":\"list\",\"data\":[$data]}"
}

case "$URLPATH" in
    /v1/*)
        if [ -n "$FAKE_VLLM_API_KEY" ] && [ "$AUTH" != "Bearer $FAKE_VLLM_API_KEY" ]; then
            json 401 Unauthorized '{"error":"Unauthorized"}'
        fi ;;
esac

case "$METHOD $URLPATH" in
    "GET /health")
        if [ "$FAKE_VLLM_NEVER_HEALTHY" = "1" ]; then
            respond 503 "Service Unavailable" "text/plain" ""
        fi
        respond 200 OK "text/plain" "" ;;
    "GET /ping"|"POST /ping")
        respond 200 OK "text/plain" "" ;;
    "GET /version")
        json 200 OK "{\"version\":\"$FAKE_VLLM_VERSION\"}" ;;
    "GET /v1/models")
        json 200 OK "$(models_json)" ;;
    "GET /metrics")
        respond 200 OK "text/plain; version=0.0.4; charset=utf-8" "# HELP vllm:num_requests_running Number of requests currently running.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name=\"$FIRST\"} 0.0
# HELP vllm:num_requests_waiting Number of requests waiting.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name=\"$FIRST\"} 0.0
" ;;
    "POST /v1/chat/completions")
        json 200 OK "{\"id\":\"chatcmpl-fake0000\",\"object\":\"chat.completion\",\"created\":$NOW,\"model\":\"$FIRST\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hello from fake vLLM.\"},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":5,\"total_tokens\":6}}" ;;
    "POST /v1/completions")
        json 200 OK "{\"id\":\"cmpl-fake0000\",\"object\":\"text_completion\",\"created\":$NOW,\"model\":\"$FIRST\",\"choices\":[{\"index\":0,\"text\":\"Hello from fake vLLM.\",\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":5,\"total_tokens\":6}}" ;;
    "GET /v1/"*|"POST /v1/"*|"GET /"*|"POST /"*)
        json 404 "Not Found" '{"detail":"Not Found"}' ;;
    *)
        json 405 "Method Not Allowed" '{"detail":"Method Not Allowed"}' ;;
esac
