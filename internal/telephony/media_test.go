package telephony

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/parley-voice/parley/internal/media"
)

// sourcedHandler is a fakeHandler that names extra media sources.
type sourcedHandler struct {
	*fakeHandler
	sources []netip.Prefix
}

func (h sourcedHandler) MediaSources() []netip.Prefix { return h.sources }

type sourcedRouter struct {
	*fakeRouter
	sources []netip.Prefix
}

func (r sourcedRouter) Route(ctx context.Context, in Inbound) (Handler, error) {
	h, err := r.fakeRouter.Route(ctx, in)
	if err != nil || r.sources == nil {
		return h, err
	}
	return sourcedHandler{h.(*fakeHandler), r.sources}, nil
}

// TestMediaSources: the SDP names an address nothing sends from (127.0.0.7;
// a documentation address such as 192.0.2.1 is refused with 488); RTP from
// a third address is taken only when the Handler names its network
// (MediaSourcer), and a fourth address is dropped either way.
func TestMediaSources(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sources  []netip.Prefix
		received bool
	}{
		{"handler names the network", []netip.Prefix{netip.MustParsePrefix("127.0.0.5/32")}, true},
		{"nobody names it", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stats := make(chan media.Stats, 1)
			fr := &fakeRouter{serve: func(ctx context.Context, c *Call) { <-ctx.Done(); stats <- c.Media.Stats() }}
			s := startServer(t, sourcedRouter{fr, tc.sources}, nil)
			p := newPeer(t, s)
			d := &dialog{callID: "sources-" + strings.ReplaceAll(tc.name, " ", "-") + "@test", fromTag: "ft9", branch: "z9hG4bKsrc" + tc.name[:4], user: "+15550002222", cseq: 1}
			p.send(p.inviteText(d, strings.Replace(p.sdp(), "c=IN IP4 127.0.0.1", "c=IN IP4 127.0.0.7", 1)))
			ok := p.response(200, 2*time.Second)
			ans, err := media.ParseOffer(ok.Body())
			if err != nil {
				t.Fatal(err)
			}
			d.toTag, _ = ok.To().Params.Get("tag")
			p.send(p.inDialog(d, "ACK", 1))
			<-fr.last().served
			send := func(ip string, n int) {
				c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				for i := range n {
					b, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: uint32(i * 160), SSRC: 7}, Payload: make([]byte, 160)}).Marshal()
					if _, err := c.WriteToUDPAddrPort(b, ans.Addr); err != nil {
						t.Fatal(err)
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			send("127.0.0.5", 10)
			send("127.0.0.6", 10)
			time.Sleep(50 * time.Millisecond)
			p.send(p.inDialog(d, "BYE", 2))
			p.response(200, time.Second)
			st := <-stats
			<-fr.last().done
			wantForeign := uint64(20)
			if tc.received {
				wantForeign = 10
			}
			if (st.PacketsReceived == 10) != tc.received || st.PacketsForeign != wantForeign {
				t.Fatalf("received %d, foreign %d; want received %v, foreign %d", st.PacketsReceived, st.PacketsForeign, tc.received, wantForeign)
			}
			waitIdle(t, s)
		})
	}
}
