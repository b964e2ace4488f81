#!/usr/bin/env bash
# Creates the PocketBase superuser and the `items` collection (public rules),
# and turns its request log off. Prints the superuser token.
# Usage: pocketbase-setup.sh <pocketbase binary> <dir> <baseUrl>
set -euo pipefail
bin=$1 dir=$2 base=$3
"$bin" superuser upsert bench@example.com bench-password-1 --dir "$dir" >/dev/null
token=$(curl -sf -XPOST "$base/api/collections/_superusers/auth-with-password" -H 'content-type: application/json' \
  -d '{"identity":"bench@example.com","password":"bench-password-1"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
curl -sf -XPATCH "$base/api/settings" -H "authorization: $token" -H 'content-type: application/json' -d '{"logs":{"maxDays":0}}' >/dev/null
curl -sf -XPOST "$base/api/collections" -H "authorization: $token" -H 'content-type: application/json' -d '{
  "name": "items", "type": "base",
  "listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": "",
  "fields": [
    {"name": "title", "type": "text", "required": true, "max": 200},
    {"name": "status", "type": "select", "values": ["open", "done", "late"], "maxSelect": 1},
    {"name": "amount", "type": "number"},
    {"name": "category", "type": "text"}
  ],
  "indexes": ["CREATE INDEX idx_items_status ON items (status)", "CREATE INDEX idx_items_amount ON items (amount)"]
}' >/dev/null
echo "$token"
