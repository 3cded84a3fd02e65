#!/usr/bin/env bash
# Benchmarks `millrace run` against the floor: the same number of python3 processes running the
# same function from a shell loop. Prints the median of several repetitions for each, and their
# ratio, for Windmill's benchmark flows (40 × fibo(10), 10 × fibo(33)); then the peak memory of
# `millrace run` for a 10,000-iteration loop of a trivial bash step.
#
#   benches/local_run.sh            (REPS=5 by default; REPS_LONG=3 for the fibo(33) flow)
set -euo pipefail
cd "$(dirname "$0")/.."

REPS="${REPS:-5}"
REPS_LONG="${REPS_LONG:-3}"
ITEMS_MEMORY="${ITEMS_MEMORY:-10000}"

if [ ! -x /usr/bin/time ]; then
  echo "installing GNU time (Debian package 'time') for the memory figure" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
fi

cargo build --release --quiet
bin="$PWD/target/release/millrace"
flows="$PWD/benches/flows"

now() { date +%s.%N; }

# Median of the numbers on stdin.
median() { sort -g | awk '{ v[NR] = $1 } END { m = (NR + 1) / 2; print (NR % 2) ? v[m] : (v[m - 0.5] + v[m + 0.5]) / 2 }'; }

FIBO='def fibo(n):
    return n if n < 2 else fibo(n - 1) + fibo(n - 2)
print(fibo(N))'

# One timing of the floor: ITEMS python3 processes, one after the other.
floor_once() {
  local items=$1 n=$2 start
  start=$(now)
  for _ in $(seq "$items"); do python3 -c "${FIBO/N/$n}" >/dev/null; done
  echo "$(now) - $start" | bc -l
}

millrace_once() {
  local items=$1 n=$2 start
  start=$(now)
  "$bin" run "$flows/fibo_loop.yaml" --json --input "items=$items" --input "n=$n" >/dev/null 2>&1
  echo "$(now) - $start" | bc -l
}

compare() {
  local items=$1 n=$2 reps=$3 floor_times="" millrace_times="" floor mill
  # Interleaved, so that a change in machine load hits both sides alike.
  for _ in $(seq "$reps"); do
    floor_times+="$(floor_once "$items" "$n")"$'\n'
    millrace_times+="$(millrace_once "$items" "$n")"$'\n'
  done
  floor=$(printf '%s' "$floor_times" | median)
  mill=$(printf '%s' "$millrace_times" | median)
  printf '%-22s millrace %7.3f s   floor %7.3f s   ratio %.2fx   (median of %d)\n' \
    "${items} x fibo(${n})" "$mill" "$floor" "$(echo "$mill / $floor" | bc -l)" "$reps"
}

command -v bc >/dev/null || { apt-get update -qq && apt-get install -y -qq bc >/dev/null; }

echo "python3: $(command -v python3) ($(python3 --version 2>&1)); $(nproc) CPUs"
compare 40 10 "$REPS"
compare 10 33 "$REPS_LONG"

start=$(now)
/usr/bin/time -v "$bin" run "$flows/trivial_loop.yaml" --json --input "items=$ITEMS_MEMORY" \
  >/dev/null 2>/tmp/millrace-bench-time.txt
elapsed=$(echo "$(now) - $start" | bc -l)
rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' /tmp/millrace-bench-time.txt)
printf '%-22s peak RSS %d MiB   (%.1f s)\n' "${ITEMS_MEMORY} x bash echo" "$((rss / 1024))" "$elapsed"
