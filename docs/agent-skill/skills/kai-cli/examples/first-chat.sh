#!/usr/bin/env bash
# Ask Kai a question, then a follow-up in the same chat; print only the answers' text.
#
#   STORAGE_API_TOKEN=... STORAGE_API_URL=https://connection.keboola.com ./first-chat.sh
#
# Tools that wait for approval are rejected (no terminal, no policy): this
# script only reads.
set -euo pipefail

: "${STORAGE_API_TOKEN:?export STORAGE_API_TOKEN (a Keboola Storage API token)}"
: "${STORAGE_API_URL:?export STORAGE_API_URL (e.g. https://connection.keboola.com)}"

kai ping

# With --json-output kai prints no "Chat ID:" line: choose the id (a new UUID).
chat_id=$(python3 -c 'import uuid; print(uuid.uuid4())')
out=$(mktemp)
trap 'rm -f "$out"' EXIT

ask() {
    kai chat --chat-id "$chat_id" --json-output -m "$1" > "$out"
    echo ">>> $1"
    jq -rj 'select(.type == "text") | .text' "$out"
    echo
}

ask "${1:-What tables do I have?}"
ask "${2:-Which of them has the most rows?}"
echo "chat: $chat_id (kai replay $chat_id --instant shows it again)"
