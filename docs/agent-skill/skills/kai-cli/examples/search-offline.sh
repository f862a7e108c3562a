#!/usr/bin/env bash
# Find a recorded chat by its words, replay it, and export a transcript.
# Reads only the local event log: no token, no network.
#
#   ./search-offline.sh "daily revenue"            # the default log (kai log path)
#   KAI_DB=demo.db ./search-offline.sh tables      # another log
set -euo pipefail

query=${1:?usage: search-offline.sh QUERY}
hits=$(mktemp)
trap 'rm -f "$hits"' EXIT

echo "log: $(kai log path)"
kai search --json-output --limit 5 "$query" > "$hits"
if [ ! -s "$hits" ]; then
    echo "no recorded chat mentions: $query"
    exit 0
fi
jq -r '"\(.chat_id)  [\(.role)]  \(.title): \(.snippet | gsub("\\s+"; " "))"' "$hits"

chat_id=$(jq -rs '.[0].chat_id' "$hits")
echo
echo "--- replay of $chat_id"
kai replay "$chat_id" --instant
echo
kai log export "$chat_id" --format markdown -o "transcript-$chat_id.md"
echo "transcript written to transcript-$chat_id.md"
