channel="$1"
text="$2"

echo "alerting $channel"
echo "{\"channel\": \"$channel\", \"text\": \"$text\"}" > result.json
