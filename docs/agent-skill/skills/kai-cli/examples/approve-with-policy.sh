#!/usr/bin/env bash
# Let Kai create one bucket, and nothing else that writes, through a policy
# file; then report every approval decision.
#
#   ./approve-with-policy.sh reports        # "Create a bucket called reports"
#
# Only the tool the user agreed to (create_bucket) is approved; deletions are
# rejected; anything else that waits for approval is rejected because there is
# no terminal to ask.
set -euo pipefail

bucket=${1:?usage: approve-with-policy.sh BUCKET_NAME}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Only a bucket of that name; never a deletion (deny beats allow).
cat > "$work/rules.toml" <<TOML
[permissions]
allow = ["create_bucket(name=$bucket)"]
deny = ["delete_*", "drop_*"]
TOML

kai --policy "$work/rules.toml" chat --json-output -m "Create a bucket called $bucket" > "$work/answer.jsonl"

echo "decisions:"
jq -r 'select(.type == "approval-decision")
       | "  \(.tool_name): \(if .approved then "approved" else "rejected" end) by \(.decided_by) (\(.reason))"' \
    "$work/answer.jsonl"
echo "tool results:"
jq -c 'select(.type == "tool-call" and .state == "output-available") | {tool_name, output}' \
    "$work/answer.jsonl"
echo "answer:"
jq -rj 'select(.type == "text") | .text' "$work/answer.jsonl"
echo
