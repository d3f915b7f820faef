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
// the network. A failed request is logged: when the session itself has
// failed, Recv reports it.
type outbox struct {
	ops  chan op
	done chan struct{}
}

type op struct {
	name string
	fn   func(context.Context, realtime.Session) error
}

func newOutbox(ctx context.Context, s realtime.Session, log *slog.Logger) *outbox {
	o := &outbox{ops: make(chan op, 64), done: make(chan struct{})}
	go func() {
		defer close(o.done)
		for r := range o.ops {
			if ctx.Err() != nil {
				continue // drain: the call is over
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

// do queues a request; when the queue is full it is dropped and logged.
func (o *outbox) do(name string, fn func(context.Context, realtime.Session) error) {
	select {
	case o.ops <- op{name, fn}:
	default:
	}
}

// stop ends the outbox once the queued requests ran (or were skipped
// because the call is over).
func (o *outbox) stop() {
	close(o.ops)
	<-o.done
}
