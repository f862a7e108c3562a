#!/usr/bin/env bash
# Ask Kai something and act on the outcome: the exit code says what kind of
# failure it was, the JSON lines say what Kai reported.
#
#   ./check-answer.sh "What tables do I have?"
set -uo pipefail

message=${1:-What tables do I have?}
answer=$(mktemp)
trap 'rm -f "$answer"' EXIT

kai chat --json-output -m "$message" > "$answer"
status=$?

case $status in
    0)
        jq -rj 'select(.type == "text") | .text' "$answer"
        echo
        jq -r 'select(.type == "tool-output-error") | "tool \(.tool_name) failed: \(.error_text)"' "$answer" >&2
        jq -r 'select(.type == "approval-decision" and (.approved | not)) | "tool \(.tool_name) was not run: \(.reason)"' "$answer" >&2
        tokens=$(jq -s 'map(select(.type == "finish")) | last | .usage.total_tokens // 0' "$answer")
        echo "(${tokens} tokens)"
        ;;
    3 | 4)
        echo "credentials: set STORAGE_API_TOKEN and STORAGE_API_URL to a valid token and stack" >&2
        ;;
    6 | 7)
        echo "Kai is unreachable or rate limited; try again later" >&2
        ;;
    8)
        echo "the answer was cut off; what arrived:" >&2
        jq -rj 'select(.type == "text") | .text' "$answer" >&2
        ;;
    10)
        echo "Kai reported an error:" >&2
        jq -r 'select(.type == "error") | "  \(.message)"' "$answer" >&2
        ;;
    *)
        echo "kai failed (exit code $status)" >&2
        ;;
esac
exit "$status"
