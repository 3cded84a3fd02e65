# Runs one Millrace step attempt in a pod, with the same language wrappers as local mode.
# The Secret at $MILLRACE_STEP holds the script, its arguments and the wrappers; they are
# copied to the writable $MILLRACE_CONTROL. What the step produced is summed up in a report
# (first line: its kind) that goes to the termination message when it fits in 4 KiB, else to
# stdout between markers carrying a per-attempt nonce, which the script never sees.
set -u
ctl=$MILLRACE_CONTROL
nonce=$MILLRACE_NONCE
unset MILLRACE_NONCE
cp "$MILLRACE_STEP"/* "$ctl"/
mkdir -p "$ctl/work"
cd "$ctl/work" || exit 1

run() {
    case "$MILLRACE_LANGUAGE" in
    python3) python3 -c "$(cat "$ctl/wrapper.py")" "$ctl" ;;
    bun) bun run --silent "$ctl/wrapper.ts" ;;
    deno) deno run --allow-all --quiet "$ctl/wrapper.ts" ;;
    # Positional arguments come one per file (arg.1, arg.2, …) so that any text survives. As in
    # local mode: `set -e` without pipefail, stderr merged into stdout in the order written.
    bash) bash -c 'a=(); i=1
        while [ -e "$0/arg.$i" ]; do IFS= read -r -d "" v <"$0/arg.$i"; a+=("$v"); i=$((i + 1)); done
        exec bash -e "$0/main.sh" "${a[@]}" 2>&1' "$ctl" ;;
    *) echo "millrace: no runner for language $MILLRACE_LANGUAGE" >&2; return 127 ;;
    esac
}

# stdout and stderr still stream to the pod log; copies keep the last line and the stderr tail.
{ { run 2>&1 1>&3 3>&-; echo $? >"$ctl/exit"; } | tee "$ctl/stderr" >&2; } 3>&1 | tee "$ctl/stdout"
code=$(cat "$ctl/exit")

report=$ctl/report
# The last non-empty lines of what the step printed (bash prints everything on stdout).
failed() { { echo "exit $code"; grep -v '^[[:space:]]*$' "$1" | tail -n 20; } >"$report"; }
case "$MILLRACE_LANGUAGE" in
bash)
    if [ "$code" != 0 ]; then failed "$ctl/stdout"
    elif [ -f result.json ]; then { echo bash-json; cat result.json; } >"$report"
    elif [ -f result.out ]; then { echo bash-out; cat result.out; } >"$report"
    else { echo bash-line; tail -n 1 "$ctl/stdout"; } >"$report"
    fi ;;
*)
    if [ -f "$ctl/result.json" ]; then { echo envelope; cat "$ctl/result.json"; } >"$report"
    else failed "$ctl/stderr"
    fi ;;
esac

size=$(wc -c <"$report" | tr -d ' ')
if [ "$size" -gt "$MILLRACE_RESULT_CAP" ]; then
    echo "too-large $size" >"$MILLRACE_TERMINATION_LOG"
elif [ "$size" -le 4096 ]; then
    cp "$report" "$MILLRACE_TERMINATION_LOG"
else
    printf '\nMILLRACE_RESULT_%s_BEGIN\n' "$nonce"
    cat "$report"
    printf '\nMILLRACE_RESULT_%s_END\n' "$nonce"
    echo "framed $size" >"$MILLRACE_TERMINATION_LOG"
fi
exit "$code"
