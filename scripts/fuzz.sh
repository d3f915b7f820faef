#!/usr/bin/env bash
# Runs every Go fuzz target for a fixed time each (FUZZTIME, default 15s) and
# fails if any target finds a crash. The targets are listed here and nowhere
# else; their seed corpora are in each package's testdata/fuzz/<Target>/, and
# plain `go test` runs those seeds as regression tests.
#
#   ./scripts/fuzz.sh                      # every target, 15 s each
#   FUZZTIME=5m ./scripts/fuzz.sh FuzzGuard  # only the named targets
#
# A crash leaves its input in testdata/fuzz/<Target>/; commit it with the fix.
# FUZZ_PARALLEL sets the fuzzing workers per target (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(
  "./internal/telephony FuzzGuard"          # SIP guard and parser (RFC 4475 seeds)
  "./internal/media FuzzOffer"              # SDP offer parsing, answer and offer round trip
  "./internal/media FuzzReceive"            # RTP/RTCP datagrams into a running session
  "./internal/media FuzzReorder"            # reorder (jitter) buffer invariants
  "./internal/media FuzzTelephoneEvent"     # RFC 4733 send/receive
  "./internal/httpapi FuzzDecode"           # JSON bodies through readObject and every validator
)

fuzztime="${FUZZTIME:-15s}"
failed=()
for entry in "${targets[@]}"; do
  read -r pkg name <<<"$entry"
  if [ "$#" -gt 0 ] && [[ " $* " != *" $name "* ]]; then
    continue
  fi
  echo "fuzz: $name ($pkg) for $fuzztime"
  if ! go test -mod=readonly -count=1 -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" \
      -fuzzminimizetime=10s -parallel="${FUZZ_PARALLEL:-1}" "$pkg"; then
    failed+=("$name")
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: crashes in ${failed[*]} (inputs under testdata/fuzz/, shown above)" >&2
  exit 1
fi
