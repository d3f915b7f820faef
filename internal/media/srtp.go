package media

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/pion/rtcp"
	"github.com/pion/srtp/v3"
)

// Suite is an SDES crypto-suite (RFC 4568 §6.2).
type Suite string

// The suites Parley offers and accepts, in preference order.
const (
	SuiteAES128SHA1_80 Suite = "AES_CM_128_HMAC_SHA1_80"
	SuiteAES128SHA1_32 Suite = "AES_CM_128_HMAC_SHA1_32"
)

// suites is the preference order. It is read-only.
var suites = [...]Suite{SuiteAES128SHA1_80, SuiteAES128SHA1_32}

// keyLen is the inline key of both suites: a 16-byte master key followed
// by a 14-byte master salt (RFC 4568 §6.2.1).
const (
	masterKeyLen  = 16
	masterSaltLen = 14
	keyLen        = masterKeyLen + masterSaltLen
)

// replayWindow is how many packets back an SRTP/SRTCP index is still
// accepted once; older or repeated ones are refused (RFC 3711 §3.3.2).
const replayWindow = 128

// ErrCrypto marks an a=crypto attribute Parley cannot use.
var ErrCrypto = errors.New("unusable a=crypto attribute")

// Crypto is one SDES a=crypto attribute (RFC 4568): its tag, suite and the
// sender's inline master key and salt. The key is secret: never log it.
type Crypto struct {
	Tag   int
	Suite Suite
	Key   []byte // master key ‖ master salt, keyLen bytes
}

// NewCrypto makes a crypto attribute with a fresh random key.
func NewCrypto(tag int, suite Suite) (Crypto, error) {
	if suite.profile() == 0 {
		return Crypto{}, fmt.Errorf("%w: suite %q", ErrCrypto, suite)
	}
	k := make([]byte, keyLen)
	if _, err := rand.Read(k); err != nil {
		return Crypto{}, fmt.Errorf("generate srtp key: %w", err)
	}
	return Crypto{Tag: tag, Suite: suite, Key: k}, nil
}

// String is the attribute's value without the key, for logs.
func (c Crypto) String() string { return strconv.Itoa(c.Tag) + " " + string(c.Suite) }

// attribute is the a=crypto value: "1 AES_CM_128_HMAC_SHA1_80 inline:…".
func (c Crypto) attribute() string {
	return strconv.Itoa(c.Tag) + " " + string(c.Suite) + " inline:" + base64.StdEncoding.EncodeToString(c.Key)
}

func (s Suite) profile() srtp.ProtectionProfile {
	switch s {
	case SuiteAES128SHA1_80:
		return srtp.ProtectionProfileAes128CmHmacSha1_80
	case SuiteAES128SHA1_32:
		return srtp.ProtectionProfileAes128CmHmacSha1_32
	}
	return 0
}

// parseCrypto reads an a=crypto value. Suites other than ours, MKIs, more
// than one key and session parameters are refused with ErrCrypto, so the
// caller can skip the line and look at the next one.
func parseCrypto(v string) (Crypto, error) {
	f := strings.Fields(v)
	if len(f) < 3 {
		return Crypto{}, fmt.Errorf("%w: want \"tag suite inline:key\", got %d fields", ErrCrypto, len(f))
	}
	if len(f) > 3 {
		return Crypto{}, fmt.Errorf("%w: session parameters %q are not supported", ErrCrypto, f[3:])
	}
	tag, err := strconv.Atoi(f[0])
	if err != nil || tag < 0 || tag > 999999999 {
		return Crypto{}, fmt.Errorf("%w: tag %q", ErrCrypto, f[0])
	}
	c := Crypto{Tag: tag, Suite: Suite(strings.ToUpper(f[1]))}
	if c.Suite.profile() == 0 {
		return Crypto{}, fmt.Errorf("%w: suite %q", ErrCrypto, f[1])
	}
	if strings.Contains(f[2], ";") {
		return Crypto{}, fmt.Errorf("%w: more than one key", ErrCrypto)
	}
	method, params, ok := strings.Cut(f[2], ":")
	if !ok || !strings.EqualFold(method, "inline") {
		return Crypto{}, fmt.Errorf("%w: key method must be inline", ErrCrypto)
	}
	b64, rest, _ := strings.Cut(params, "|")
	// A lifetime is fine (calls are far shorter); an MKI is not.
	for p := range strings.SplitSeq(rest, "|") {
		if strings.Contains(p, ":") {
			return Crypto{}, fmt.Errorf("%w: MKI is not supported", ErrCrypto)
		}
	}
	k, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		k, err = base64.RawStdEncoding.DecodeString(b64)
	}
	if err != nil || len(k) != keyLen {
		return Crypto{}, fmt.Errorf("%w: inline key must be %d bytes of base64", ErrCrypto, keyLen)
	}
	c.Key = k
	return c, nil
}

// srtpState holds a session's SRTP contexts. Each pion context is used by
// one goroutine: rtpOut by the sender, rtpIn by the RTP receiver, rtcpIn by
// the RTCP receiver; rtcpOut is shared by the sender and the closing BYE,
// hence its lock.
type srtpState struct {
	rtpOut, rtpIn, rtcpIn *srtp.Context
	rtcpMu                sync.Mutex
	rtcpOut               *srtp.Context
	sealed                []byte // the sender's output buffer
}

func newSRTPState(local, remote Crypto) (*srtpState, error) {
	if local.Suite != remote.Suite {
		return nil, fmt.Errorf("%w: local suite %s and remote suite %s differ", ErrCrypto, local.Suite, remote.Suite)
	}
	mk := func(c Crypto, opts ...srtp.ContextOption) (*srtp.Context, error) {
		if len(c.Key) != keyLen {
			return nil, fmt.Errorf("%w: key of %d bytes", ErrCrypto, len(c.Key))
		}
		ctx, err := srtp.CreateContext(c.Key[:masterKeyLen], c.Key[masterKeyLen:], c.Suite.profile(), opts...)
		if err != nil {
			return nil, fmt.Errorf("create srtp context: %w", err)
		}
		return ctx, nil
	}
	st := &srtpState{sealed: make([]byte, 0, 1500)}
	var err error
	if st.rtpOut, err = mk(local); err != nil {
		return nil, err
	}
	if st.rtcpOut, err = mk(local); err != nil {
		return nil, err
	}
	if st.rtpIn, err = mk(remote, srtp.SRTPReplayProtection(replayWindow)); err != nil {
		return nil, err
	}
	if st.rtcpIn, err = mk(remote, srtp.SRTCPReplayProtection(replayWindow)); err != nil {
		return nil, err
	}
	return st, nil
}

// sealRTCP encrypts one compound RTCP packet.
func (st *srtpState) sealRTCP(pkt []byte) ([]byte, error) {
	st.rtcpMu.Lock()
	defer st.rtcpMu.Unlock()
	var h rtcp.Header
	return st.rtcpOut.EncryptRTCP(nil, pkt, &h)
}
