# Shell helpers shared by the lab scripts (lab.sh, run-default.sh): sourced, never run. bash only.

# Indents a command's output under a step: cmd | indent
indent() { sed 's/^/    | /'; }

# Polls "$@" every 0.2 s until it succeeds or $1 seconds pass: wait_until SECONDS CMD...
# A command returning 99 means "will never succeed" (e.g. the process died): stop at once.
wait_until() {
	local limit=$1 i=0 r
	shift
	while [ "$i" -lt $((limit * 5)) ]; do
		"$@"
		r=$?
		[ $r -eq 0 ] && return 0
		[ $r -eq 99 ] && return 99
		sleep 0.2
		i=$((i + 1))
	done
	return 1
}
