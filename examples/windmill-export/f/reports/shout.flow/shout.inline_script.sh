text="$1"
echo "${text^^}"
