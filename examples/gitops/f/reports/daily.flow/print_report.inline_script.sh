open="$1"
echo "open items: $open"
