package live

import (
	"context"
	"log/slog"
	"time"

	"github.com/parley-voice/parley/internal/realtime"
)

// requestTimeout bounds one request to the service.
const requestTimeout = 5 * time.Second

// outbox runs the conversation's requests to the session one at a time,
// in order, on a goroutine of its own, so Run's goroutine never waits on
// the network. Requests made while the session is still connecting wait
// for it (a first message, a command in the call's first second); when it
// cannot connect they are dropped. A failed request is logged: when the
// session itself has failed, Recv reports it.
type outbox struct {
	ops   chan op
	ready chan realtime.Session // one value: the session, or nil
	done  chan struct{}
	log   *slog.Logger
}

type op struct {
	name string
	fn   func(context.Context, realtime.Session) error
}

func newOutbox(ctx context.Context, log *slog.Logger) *outbox {
	o := &outbox{ops: make(chan op, 64), ready: make(chan realtime.Session, 1), done: make(chan struct{}), log: log}
	go func() {
		defer close(o.done)
		var s realtime.Session
		select {
		case s = <-o.ready:
		case <-ctx.Done():
		}
		for r := range o.ops {
			if s == nil || ctx.Err() != nil {
				continue // drain: no session, or the call is over
			}
			rctx, cancel := context.WithTimeout(ctx, requestTimeout)
			if err := r.fn(rctx, s); err != nil && ctx.Err() == nil {
				log.Warn("realtime request failed", "request", r.name, "error", err)
			}
			cancel()
		}
	}()
	return o
}

// start hands the outbox its session (nil: it could not connect).
func (o *outbox) start(s realtime.Session) { o.ready <- s }

// do queues a request; when the queue is full it is dropped and logged.
func (o *outbox) do(name string, fn func(context.Context, realtime.Session) error) {
	select {
	case o.ops <- op{name, fn}:
	default:
		o.log.Warn("realtime request dropped: too many waiting", "request", name)
	}
}

// stop ends the outbox once the queued requests ran (or were skipped
// because the call is over).
func (o *outbox) stop() {
	close(o.ops)
	<-o.done
}
