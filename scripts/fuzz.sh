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

# corpus lists a target's saved inputs, one name per line.
corpus() { ls "$1/testdata/fuzz/$2" 2>/dev/null || true; }

# fuzz_once runs one target once. It returns 0 when the run passed, 1 when it
# found a crash (a new input was written under testdata/fuzz/<Target>/ or the
# saved corpus fails when replayed), and 2 when go test failed without either:
# Go's fuzzing coordinator can report its own -fuzztime deadline as a failure
# ("context deadline exceeded") when a worker is still busy, usually
# minimising a new input, as the time runs out (a race in internal/fuzz, seen
# in many projects' CI). Such a run found nothing and is worth one retry.
fuzz_once() {
  local pkg=$1 name=$2 before after out status
  before=$(corpus "$pkg" "$name")
  out=$(mktemp)
  set +e
  go test -mod=readonly -count=1 -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" \
      -fuzzminimizetime=10s -parallel="${FUZZ_PARALLEL:-1}" "$pkg" 2>&1 | tee "$out"
  status=${PIPESTATUS[0]}
  set -e
  after=$(corpus "$pkg" "$name")
  if [ "$status" -eq 0 ]; then rm -f "$out"; return 0; fi
  if [ "$before" != "$after" ]; then rm -f "$out"; return 1; fi
  if ! grep -q 'context deadline exceeded' "$out"; then rm -f "$out"; return 1; fi
  rm -f "$out"
  # Nothing written: replay the seeds and the saved corpus to be sure.
  if ! go test -mod=readonly -count=1 -run="^${name}\$" "$pkg"; then return 1; fi
  return 2
}

failed=()
for entry in "${targets[@]}"; do
  read -r pkg name <<<"$entry"
  if [ "$#" -gt 0 ] && [[ " $* " != *" $name "* ]]; then
    continue
  fi
  echo "fuzz: $name ($pkg) for $fuzztime"
  rc=0; fuzz_once "$pkg" "$name" || rc=$?
  if [ "$rc" -eq 2 ]; then
    echo "fuzz: $name stopped on the fuzzing coordinator's own deadline with no input written and its corpus passing; running it again" >&2
    rc=0; fuzz_once "$pkg" "$name" || rc=$?
    if [ "$rc" -eq 2 ]; then
      echo "fuzz: $name stopped on the coordinator's deadline again; nothing was found" >&2
      rc=0
    fi
  fi
  if [ "$rc" -ne 0 ]; then
    failed+=("$name")
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: crashes in ${failed[*]} (inputs under testdata/fuzz/, shown above)" >&2
  exit 1
fi
