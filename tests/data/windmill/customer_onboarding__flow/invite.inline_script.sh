email="$1"
discount="$2"

echo "inviting $email with discount $discount"
