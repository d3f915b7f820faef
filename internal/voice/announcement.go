package voice

import (
	"context"
	"log/slog"
	"time"

	"github.com/parley-voice/parley/internal/announce"
	"github.com/parley-voice/parley/internal/telephony"
)

// announcementTail lets the clip's last packets leave before the hang-up.
const announcementTail = 200 * time.Millisecond

// announcement answers a call only to play a fixed message and hang up (the
// organization has no minutes left). Its call row was written, rejected,
// before it was answered; nothing else is recorded and no model runs.
type announcement struct {
	clip *announce.Clip
	log  *slog.Logger
}

func (a *announcement) ServeCall(ctx context.Context, c *telephony.Call) {
	p := a.clip.Play()
	c.Media.SetSource(p)
	defer c.Media.SetSource(nil)
	select {
	case <-p.Done():
		t := time.NewTimer(announcementTail)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	case <-ctx.Done():
	}
	a.log.Info("announcement played; hanging up", "clip", a.clip.Duration())
}

func (a *announcement) NotAnswered(context.Context, error) {}
