#!/usr/bin/env bash
# Generates internal/voicemail/testdata: synthetic answering-machine
# greetings (espeak-ng speech, then a sox beep) and human answers, as
# 8 kHz mono µ-law WAVs, plus cases.txt (file|kind|transcript) that
# TestAccuracy reads. Needs espeak-ng and sox. Deterministic: rerunning it
# gives the same files for the same tool versions.
set -euo pipefail
cd "$(dirname "$0")/../internal/voicemail/testdata"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# pad SECONDS FILE: silence at 8 kHz.
pad() { sox -n -r 8000 -c 1 -b 16 "$2" trim 0 "$1"; }
# speak VOICE SPEED PITCH TEXT FILE: espeak-ng at 8 kHz, telephone level.
speak() {
	espeak-ng -v "$1" -s "$2" -p "$3" -w "$tmp/raw.wav" "$4"
	sox "$tmp/raw.wav" -r 8000 -c 1 -b 16 "$5" norm -6
}

: >cases.txt
n=0
# machine VOICE SPEED PITCH BEEP_HZ TEXT
machine() {
	n=$((n + 1))
	local f
	f=$(printf 'machine_%02d_%s.wav' "$n" "${1%%-*}")
	speak "$1" "$2" "$3" "$5" "$tmp/speech.wav"
	pad 0.3 "$tmp/lead.wav"
	pad 0.5 "$tmp/gap.wav"
	sox -n -r 8000 -c 1 -b 16 "$tmp/beep.wav" synth 0.4 sine "$4" vol 0.4
	pad 1.5 "$tmp/tail.wav"
	sox "$tmp/lead.wav" "$tmp/speech.wav" "$tmp/gap.wav" "$tmp/beep.wav" "$tmp/tail.wav" -e u-law -b 8 "$f"
	echo "$f|machine|$5" >>cases.txt
}
# human VOICE SPEED PITCH TEXT
human() {
	n=$((n + 1))
	local f
	f=$(printf 'human_%02d_%s.wav' "$n" "${1%%-*}")
	speak "$1" "$2" "$3" "$4" "$tmp/speech.wav"
	pad 0.4 "$tmp/lead.wav"
	pad 3.5 "$tmp/tail.wav"
	sox "$tmp/lead.wav" "$tmp/speech.wav" "$tmp/tail.wav" -e u-law -b 8 "$f"
	echo "$f|human|$4" >>cases.txt
}

rm -f machine_*.wav human_*.wav
machine en-us 165 50 1000 "Hi, you've reached John Smith. I can't take your call right now. Please leave a message after the beep."
machine en-gb 155 40 850 "The person you are calling is not available. Please record your message after the tone."
machine en-us 175 60 1400 "Hello, this is Sarah. Sorry I missed you. Leave me a message and I'll call you back."
machine en-gb 160 45 1000 "Welcome to the voicemail of Acme Support. Our office is closed. Please leave your name and number."
machine nl 160 50 1000 "Hallo, dit is de voicemail van Jan. Ik ben momenteel niet bereikbaar. Spreek een bericht in na de piep."
machine nl 150 40 1200 "U bent verbonden met de voicemail van Petra de Vries. Laat een bericht achter na de toon."
machine nl 170 60 900 "Hoi, met Sanne. Ik kan nu niet opnemen. Spreek je bericht in, dan bel ik je terug."
machine nl 155 45 1000 "De persoon die u belt is op dit moment niet bereikbaar. Spreek na de piep uw bericht in."
human en-us 165 50 "Hello?"
human en-gb 160 40 "Yes, who is this?"
human en-us 170 60 "Hi, this is Mark."
human en-gb 155 45 "Hello, speaking."
human nl 160 50 "Hallo, met Jan."
human nl 150 40 "Ja?"
human nl 170 60 "Goedemiddag, met Petra de Vries."
human nl 160 45 "Hallo?"
ls -l ./*.wav | awk '{s += $5} END {print NR " files, " s " bytes"}'
