package main

import (
	"encoding/xml"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func open(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// The samples are SIPp 3.6.1's files from a run of 50 calls against a
// server limited to 20 concurrent calls: 20 answered, 30 refused with 503.

func TestParseStat(t *testing.T) {
	s, err := parseStat(open(t, "stat.csv"))
	if err != nil {
		t.Fatal(err)
	}
	want := sippStats{Created: 50, Successful: 50, Answered: 20, Refused: 30, Completed: 20, PlacedSeconds: 2}
	if s != want {
		t.Errorf("parseStat = %+v, want %+v", s, want)
	}
	if _, err := parseStat(strings.NewReader("StartTime;TotalCallCreated;\nx;3;\n")); err == nil {
		t.Error("a statistics file without the scenario's counters was accepted")
	}
}

func TestParseCounts(t *testing.T) {
	c, err := parseCounts(open(t, "counts.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if c["0_INVITE_Sent"] != 50 || c["4_503_Recv"] != 30 || c["35_200_Recv"] != 20 || c["39_200_Recv"] != 20 || c["40_ACK_Sent"] != 30 {
		t.Errorf("counts = %v", c)
	}
	if got := finalCodes(c); len(got) != 1 || got["503"] != 30 {
		t.Errorf("finalCodes = %v, want 503:30", got)
	}
	if n := unexpected(c); n != 0 {
		t.Errorf("unexpected = %d", n)
	}
	c, err = parseCounts(strings.NewReader("CurrentTime;ElapsedTime;0_INVITE_Sent;5_480_Recv;6_200_Recv;6_200_Unexp;\nt;e;9;2;6;1;\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := finalCodes(c); len(got) != 1 || got["480"] != 2 {
		t.Errorf("finalCodes = %v, want 480:2", got)
	}
	if n := unexpected(c); n != 1 {
		t.Errorf("unexpected = %d, want 1", n)
	}
}

func TestParseRTT(t *testing.T) {
	v, err := parseRTT(open(t, "rtt.csv"), "setup")
	if err != nil {
		t.Fatal(err)
	}
	if len(v) != 20 {
		t.Fatalf("%d response times, want 20", len(v))
	}
	slices.Sort(v)
	if p := percentile(v, 50); p != 120 {
		t.Errorf("p50 = %v, want 120", p)
	}
	if p := percentile(v, 95); p != 176 {
		t.Errorf("p95 = %v, want 176", p)
	}
	if p := percentile(v, 100); p != 288 {
		t.Errorf("max = %v, want 288", p)
	}
	v, err = parseRTT(strings.NewReader("Date_ms;response_time_ms;rtd_no\n1.0;7;other\n2.0;9;setup\n"), "setup")
	if err != nil || len(v) != 1 || v[0] != 9 {
		t.Errorf("parseRTT = %v, %v; want [9]", v, err)
	}
	if percentile(nil, 50) != 0 {
		t.Error("percentile of nothing is not 0")
	}
}

// TestScenarioACKBranches checks that each ACK of a non-2xx answer carries
// the INVITE's branch: [branch-N] at message index N (the INVITE is 0;
// labels and the repartition element are no messages).
func TestScenarioACKBranches(t *testing.T) {
	dec := xml.NewDecoder(strings.NewReader(string(scenario)))
	dec.Strict = false
	dec.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil } // the file is ASCII
	index, acks := 0, 0
	var inSend bool
	var sendIndex int
	var text strings.Builder
	branch := regexp.MustCompile(`branch=\[branch(?:-(\d+))?\]`)
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			switch e.Name.Local {
			case "send", "recv", "pause", "nop":
				if e.Name.Local == "send" {
					inSend, sendIndex = true, index
					text.Reset()
					for _, a := range e.Attr {
						if a.Name.Local == "ack_txn" {
							acks++
						}
					}
				}
				index++
			}
		case xml.CharData:
			if inSend {
				text.Write(e)
			}
		case xml.EndElement:
			if e.Name.Local != "send" {
				continue
			}
			inSend = false
			msg := strings.TrimSpace(text.String())
			m := branch.FindStringSubmatch(msg)
			if strings.HasPrefix(msg, "ACK [next_url]") { // the ACK of the 200 OK: a new branch
				if m == nil || m[1] != "" {
					t.Errorf("the 200 OK's ACK at index %d must use [branch]", sendIndex)
				}
				continue
			}
			if !strings.HasPrefix(msg, "ACK sip:[service]") { // the ACKs of non-2xx answers
				continue
			}
			if m == nil || m[1] == "" {
				t.Errorf("ACK at index %d has no [branch-N]", sendIndex)
				continue
			}
			if n, _ := strconv.Atoi(m[1]); n != sendIndex {
				t.Errorf("ACK at index %d uses [branch-%d], want [branch-%d]", sendIndex, n, sendIndex)
			}
		}
	}
	if acks != 3 {
		t.Errorf("%d sends with ack_txn, want 3 (the ACKs of 200, 503 and other errors)", acks)
	}
}

func TestScanLog(t *testing.T) {
	s := scanLog(open(t, "parley.log"), 10)
	if s.Errors != 4 || s.Warnings != 1 || s.Other != 1 {
		t.Errorf("errors %d warnings %d other %d, want 4 1 1", s.Errors, s.Warnings, s.Other)
	}
	if len(s.Top) == 0 || s.Top[0] != (msgCount{Level: "ERROR", Message: "sip route failed: database is locked", Count: 2}) {
		t.Errorf("top = %+v", s.Top)
	}
	var msgs []string
	for _, m := range s.Top {
		msgs = append(msgs, m.Level+" "+m.Message)
	}
	for _, want := range []string{"ERROR finish call failed: context deadline exceeded", "ERROR plain", "WARN webhook delivery failed", "OTHER panic: runtime error: invalid memory address or nil pointer dereference"} {
		if !slices.Contains(msgs, want) {
			t.Errorf("top lacks %q: %q", want, msgs)
		}
	}
	if s := scanLog(open(t, "parley.log"), 2); len(s.Top) != 2 {
		t.Errorf("top 2 gave %d", len(s.Top))
	}
}

func TestElapsed(t *testing.T) {
	for in, want := range map[string]float64{"00:00:02": 2, "01:02:03": 3723, "00:00:02:486000": 2.486, "junk": 0} {
		if got := elapsed(in); math.Abs(got-want) > 1e-9 {
			t.Errorf("elapsed(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestProcCPU(t *testing.T) {
	stat := "4242 (parley serve) S 1 4242 4242 0 -1 4194560 9520 0 0 0 150 75 0 0 20 0 12 0 98765 1907 2048 18446744073709551615\n"
	d, err := procCPU([]byte(stat))
	if err != nil || d != 2250*time.Millisecond {
		t.Errorf("procCPU = %v, %v; want 2.25s", d, err)
	}
	if _, err := procCPU([]byte("garbage")); err == nil {
		t.Error("garbage accepted")
	}
}
