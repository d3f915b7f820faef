package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/parley-voice/parley/internal/audio"
)

// farEnd is SIPp running the campaign scenario: the trunk and every callee.
// It is started as cmd/parley's far-end tests start it (sippfar_test.go).
type farEnd struct {
	cmd    *exec.Cmd
	addr   string // 127.0.0.1:port, UDP
	dir    string
	log    string // -log_file: "INVITE <user>" and "END <user> <outcome>" lines
	exited chan struct{}
}

func startFarEnd(ctx context.Context, o options, dir string) (*farEnd, error) {
	dir = filepath.Join(dir, "sipp")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// SIPp loads the scenario's RTP file from its working directory.
	if err := os.WriteFile(filepath.Join(dir, "tone.ulaw"), toneUlaw(), 0o644); err != nil {
		return nil, err
	}
	addr, err := freeUDPAndTCP()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	f := &farEnd{addr: addr, dir: dir, log: filepath.Join(dir, "calls.log"), exited: make(chan struct{})}
	out, err := os.Create(filepath.Join(dir, "sipp.out"))
	if err != nil {
		return nil, err
	}
	f.cmd = exec.Command(o.sipp, "-sf", o.scenario, "-i", "127.0.0.1", "-p", port, "-mi", "127.0.0.1", "-bind_local",
		"-t", "u1", "-d", fmt.Sprint(o.hold.Milliseconds()), "-l", fmt.Sprint(max(1000, 3*o.concurrency)), "-aa", "-nostdin",
		"-trace_logs", "-log_file", f.log, "-trace_err", "-error_file", filepath.Join(dir, "errors.log"))
	f.cmd.Dir = dir
	f.cmd.Stdout, f.cmd.Stderr = out, out
	if err := f.cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start sipp: %w", err)
	}
	go func() {
		f.cmd.Wait()
		out.Close()
		close(f.exited)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !udpBound(port) {
		select {
		case <-f.exited:
			return nil, fmt.Errorf("sipp far end exited at start: %v\n%s", f.cmd.ProcessState, tail(filepath.Join(dir, "sipp.out"), 4000))
		case <-ctx.Done():
			f.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			f.stop()
			return nil, fmt.Errorf("sipp far end not listening on %s after 10 s", addr)
		}
	}
	return f, nil
}

func (f *farEnd) stop() {
	f.cmd.Process.Kill()
	<-f.exited
}

func (f *farEnd) cpu() time.Duration { return procCPUOf(f.cmd.Process.Pid) }

// outcomes counts the far end's log: INVITEs, and ends by outcome.
func (f *farEnd) outcomes() map[string]int {
	n := map[string]int{}
	file, err := os.Open(f.log)
	if err != nil {
		return n
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		switch fields := strings.Fields(sc.Text()); {
		case len(fields) == 2 && fields[0] == "INVITE":
			n["INVITE"]++
		case len(fields) == 3 && fields[0] == "END":
			n[fields[2]]++
		}
	}
	return n
}

// errorLines is how many lines SIPp's error log has.
func (f *farEnd) errorLines() int {
	b, err := os.ReadFile(filepath.Join(f.dir, "errors.log"))
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\n")
}

// udpBound says whether something listens on 127.0.0.1:port over UDP
// (Linux: /proc/net/udp lists local addresses as hex IP:port).
func udpBound(port string) bool {
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		time.Sleep(500 * time.Millisecond) // no procfs: give SIPp a moment
		return true
	}
	var p int
	fmt.Sscan(port, &p)
	return strings.Contains(string(b), fmt.Sprintf(" 0100007F:%04X ", p))
}

// toneUlaw is one second of a 440 Hz tone as raw 8 kHz μ-law, the RTP SIPp
// loops on answered calls.
func toneUlaw() []byte {
	pcm := make([]int16, 8000)
	for i := range pcm {
		pcm[i] = int16(4000 * math.Sin(2*math.Pi*440*float64(i)/8000))
	}
	return audio.EncodeUlaw(nil, pcm)
}
