name="$1"
echo "Hello, team $name"
