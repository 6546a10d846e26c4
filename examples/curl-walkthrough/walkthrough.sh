#!/usr/bin/env bash
# The first payment with curl: store → agent (enrollment token) → terminal → purchase → refund → receipt.
# Needs only bash, curl and node (JSON fields are read with node; keys come from node's crypto.randomUUID).
#
#   PAYORCH_URL=http://localhost:3000 PAYORCH_API_KEY=pok_… TERMINAL_HOST=127.0.0.1 TERMINAL_PORT=7000 \
#     examples/curl-walkthrough/walkthrough.sh
set -euo pipefail

: "${PAYORCH_URL:?set PAYORCH_URL, e.g. http://localhost:3000}"
: "${PAYORCH_API_KEY:?set PAYORCH_API_KEY (npm run admin -- keys create …, or the key npm start prints)}"
TERMINAL_HOST="${TERMINAL_HOST:-127.0.0.1}"
TERMINAL_PORT="${TERMINAL_PORT:-7000}"
PROTOCOL="${PROTOCOL:-joinproto}"

key() { node -e 'console.log(crypto.randomUUID())'; }
# field <json> <path>: prints one field of a JSON document (path like agent.id).
field() { node -e 'let v = JSON.parse(process.argv[1]); for (const k of process.argv[2].split(".")) v = v?.[k]; console.log(typeof v === "object" ? JSON.stringify(v) : v)' "$1" "$2"; }
# call <method> <path> [json body]: one API call; a mutating call gets a fresh Idempotency-Key; fails on an error answer.
call() {
  local method="$1" path="$2" body="${3:-}" out status
  local args=(-sS -X "$method" -H "Authorization: Bearer ${PAYORCH_API_KEY}" -w '\n%{http_code}')
  if [ "$method" != GET ]; then args+=(-H "Idempotency-Key: $(key)"); fi
  if [ -n "$body" ]; then args+=(-H 'Content-Type: application/json' --data "$body"); fi
  out="$(curl "${args[@]}" "${PAYORCH_URL}${path}")"
  status="${out##*$'\n'}"
  out="${out%$'\n'*}"
  if [ "$status" -ge 400 ]; then
    echo "$method $path → $status $out" >&2
    exit 1
  fi
  echo "$out"
}

echo "1. store"
store="$(call POST /v1/stores '{"name":"Main street","timeZone":"Europe/Moscow"}')"
store_id="$(field "$store" id)"
echo "   store $store_id"

echo "2. agent (the bridge on the till PC)"
agent="$(call POST /v1/agents "{\"name\":\"Till 1\",\"storeId\":\"$store_id\"}")"
agent_id="$(field "$agent" agent.id)"
echo "   agent $agent_id ($(field "$agent" agent.status)); on the till, once:"
echo "   payorch-agent enroll --connector <connector URL> --token $(field "$agent" enrollmentToken)"

echo "3. terminal (a simulated Joinproto terminal at ${TERMINAL_HOST}:${TERMINAL_PORT}; npm run dev:sim starts one)"
terminal="$(call POST /v1/terminals "{\"name\":\"POS 1\",\"storeId\":\"$store_id\",\"agentId\":\"$agent_id\",\"protocol\":\"$PROTOCOL\",\"connection\":{\"kind\":\"tcp\",\"host\":\"$TERMINAL_HOST\",\"port\":$TERMINAL_PORT}}")"
terminal_id="$(field "$terminal" id)"
echo "   terminal $terminal_id ($(field "$terminal" status))"

echo "4. purchase 15.00 RUB (waits up to 30 s for the outcome)"
purchase="$(call POST "/v1/terminals/$terminal_id/operations?wait=30000" '{"type":"purchase","amount":1500,"currency":"RUB"}')"
purchase_id="$(field "$purchase" id)"
echo "   purchase $purchase_id: $(field "$purchase" state)"

echo "5. refund it"
refund="$(call POST "/v1/terminals/$terminal_id/operations?wait=30000" "{\"type\":\"refund\",\"amount\":1500,\"currency\":\"RUB\",\"originalOperationId\":\"$purchase_id\"}")"
echo "   refund $(field "$refund" id): $(field "$refund" state)"

echo "6. receipt of the purchase"
receipt="$(call GET "/v1/operations/$purchase_id/receipt")"
field "$receipt" text
