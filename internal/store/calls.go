package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/fault"
)

// Call is a call record.
type Call struct {
	ID              string // opaque; inbound ids contain "+"
	OrgID           string
	Direction       call.Direction
	Status          call.Status
	CallerPhone     *string
	AssistantPhone  *string
	EndReason       *string
	Error           *string
	StartedAt       *time.Time
	EndedAt         *time.Time
	DurationSeconds *int
	Summary         *string
	AnalysisResult  json.RawMessage // JSON object or nil
	Messages        json.RawMessage // JSON array of {role, content} or nil
	RoomName        *string
	RecordingURL    *string
	AgentID         *string
	NumberID        *string
	AgentName       *string
	BusinessName    *string
	PhoneNumber     *string
	SIPCallID       *string         // the SIP Call-ID of a phone call
	Metrics         json.RawMessage // JSON array of per-turn latency figures, or nil
	// Assistant is the resolved assistant the call ran with (overrides and
	// metadata applied, secrets removed): what post-call work reads and the
	// end-of-call report echoes.
	Assistant json.RawMessage
	// Webhook is where the call's webhooks go, as the engine resolved it at
	// the start (opaque JSON owned by the engine; the secret in it is sealed).
	Webhook json.RawMessage
	// AnalysisError says why the structured analysis produced no result.
	AnalysisError *string
	// RecordingKey names the recording in the object store once it is there.
	RecordingKey   *string
	RecordingState RecordingState
	// Consent is the caller's answer to the recording-consent prompt.
	Consent *string
	// ContentExpiresAt is when the call's content (transcript, summary,
	// analysis, recording) is deleted; set for GDPR-mode calls.
	ContentExpiresAt *time.Time
	// BootID is the process life of the node running the call (crash
	// recovery ends the live calls of a life that is over).
	BootID    *string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// RecordingState is where a call's recording is: "" (none), pending
// (written on the node that ran the call, waiting for upload), ready (in
// the object store) or failed.
type RecordingState string

// Recording states.
const (
	RecordingNone    RecordingState = ""
	RecordingPending RecordingState = "pending"
	RecordingReady   RecordingState = "ready"
	RecordingFailed  RecordingState = "failed"
)

// CallFilter selects calls for a list.
type CallFilter struct {
	Status *call.Status
	Since  *time.Time // created at or after
	Until  *time.Time // created at or before
	Page   Page
}

const callColumns = `id, org_id, direction, status, caller_phone, assistant_phone, end_reason, error, started_at, ended_at, duration_seconds, summary, analysis_result, messages, room_name, recording_url, agent_id, number_id, agent_name, business_name, phone_number, sip_call_id, metrics, assistant_snapshot, webhook_target, analysis_error, recording_key, recording_state, consent, content_expires_at, boot_id, created_at, updated_at`

// callListColumns are callColumns without what only the post-call work
// reads (the resolved assistant and the webhook target), for lists.
var callListColumns = strings.Replace(callColumns, "assistant_snapshot, webhook_target,", "NULL AS assistant_snapshot, NULL AS webhook_target,", 1)

func scanCall(row interface{ Scan(...any) error }) (*Call, error) {
	var c Call
	var dir, status string
	var dirN sql.NullString
	var caller, aphone, reason, errS, summary, analysis, messages, room, rec, agent, number, aname, bname, phone, sipID, metrics sql.NullString
	var snapshot, hook, analysisErr, recKey, recState, consent, boot sql.NullString
	var started, ended, expires sql.NullInt64
	var dur sql.NullInt64
	var cr, up int64
	if err := row.Scan(&c.ID, &c.OrgID, &dirN, &status, &caller, &aphone, &reason, &errS, &started, &ended, &dur, &summary, &analysis, &messages, &room, &rec, &agent, &number, &aname, &bname, &phone, &sipID, &metrics,
		&snapshot, &hook, &analysisErr, &recKey, &recState, &consent, &expires, &boot, &cr, &up); err != nil {
		return nil, err
	}
	if snapshot.Valid {
		c.Assistant = json.RawMessage(snapshot.String)
	}
	if hook.Valid {
		c.Webhook = json.RawMessage(hook.String)
	}
	c.AnalysisError, c.RecordingKey, c.RecordingState, c.Consent = strPtr(analysisErr), strPtr(recKey), RecordingState(recState.String), strPtr(consent)
	c.ContentExpiresAt, c.BootID = fromNullMS(expires), strPtr(boot)
	dir = dirN.String
	c.Direction, _ = call.ParseDirection(dir)
	c.Status, _ = call.ParseStatus(status)
	c.CallerPhone, c.AssistantPhone, c.EndReason, c.Error = strPtr(caller), strPtr(aphone), strPtr(reason), strPtr(errS)
	c.StartedAt, c.EndedAt, c.DurationSeconds = fromNullMS(started), fromNullMS(ended), intPtr(dur)
	c.Summary, c.RoomName, c.RecordingURL = strPtr(summary), strPtr(room), strPtr(rec)
	if analysis.Valid {
		c.AnalysisResult = json.RawMessage(analysis.String)
	}
	if messages.Valid {
		c.Messages = json.RawMessage(messages.String)
	}
	c.AgentID, c.NumberID, c.AgentName, c.BusinessName, c.PhoneNumber = strPtr(agent), strPtr(number), strPtr(aname), strPtr(bname), strPtr(phone)
	c.SIPCallID = strPtr(sipID)
	if metrics.Valid {
		c.Metrics = json.RawMessage(metrics.String)
	}
	c.CreatedAt, c.UpdatedAt = fromMS(cr), fromMS(up)
	return &c, nil
}

func rawOrNil(r json.RawMessage) any {
	if r == nil {
		return nil
	}
	return string(r)
}

// emptyNil stores "" as NULL.
func emptyNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func dirOrNil(d call.Direction) any {
	if d == call.DirectionUnknown {
		return nil
	}
	return d.String()
}

// CreateCall inserts a call record.
// Events (status-update webhooks, say) are queued in the same transaction.
func (db *DB) CreateCall(ctx context.Context, c *Call, evs ...OutboxEvent) error {
	now := db.now().UTC().Truncate(time.Millisecond)
	if c.ID == "" {
		c.ID = NewID()
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now
	}
	c.UpdatedAt = now
	check := func(_ sql.Result, err error) error {
		if err != nil {
			if db.drv.IsUniqueViolation(err) {
				return fault.Conflictf("call_exists", "call %s already exists", c.ID)
			}
			return fmt.Errorf("insert call: %w", err)
		}
		return nil
	}
	return db.execWithEvents(ctx, evs, check, db.q(`INSERT INTO calls (`+callColumns+`) VALUES (`+strings.Repeat("?, ", 32)+`?)`),
		c.ID, c.OrgID, dirOrNil(c.Direction), c.Status.String(), nullStr(c.CallerPhone), nullStr(c.AssistantPhone), nullStr(c.EndReason), nullStr(c.Error),
		msPtr(c.StartedAt), msPtr(c.EndedAt), nullInt(c.DurationSeconds), nullStr(c.Summary), rawOrNil(c.AnalysisResult), rawOrNil(c.Messages),
		nullStr(c.RoomName), nullStr(c.RecordingURL), nullStr(c.AgentID), nullStr(c.NumberID), nullStr(c.AgentName), nullStr(c.BusinessName), nullStr(c.PhoneNumber),
		nullStr(c.SIPCallID), rawOrNil(c.Metrics), rawOrNil(c.Assistant), rawOrNil(c.Webhook), nullStr(c.AnalysisError), nullStr(c.RecordingKey),
		emptyNil(string(c.RecordingState)), nullStr(c.Consent), msPtr(c.ContentExpiresAt), nullStr(c.BootID), ms(c.CreatedAt), ms(now))
}

// GetCall returns one of the organization's calls.
func (db *DB) GetCall(ctx context.Context, orgID, id string) (*Call, error) {
	c, err := scanCall(db.read.QueryRowContext(ctx, db.q(`SELECT `+callColumns+` FROM calls WHERE id = ? AND org_id = ?`), id, orgID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fault.NotFoundf("call %s not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get call: %w", err)
	}
	return c, nil
}

// ListCalls returns the organization's calls matching f, newest first, and
// the total that match. Listed calls leave Assistant and Webhook out (GetCall
// has them).
func (db *DB) ListCalls(ctx context.Context, orgID string, f CallFilter) ([]Call, int, error) {
	where := []string{"org_id = ?"}
	args := []any{orgID}
	if f.Status != nil {
		where, args = append(where, "status = ?"), append(args, f.Status.String())
	}
	if f.Since != nil {
		where, args = append(where, "created_at >= ?"), append(args, ms(*f.Since))
	}
	if f.Until != nil {
		where, args = append(where, "created_at <= ?"), append(args, ms(*f.Until))
	}
	cond := strings.Join(where, " AND ")
	var total int
	if err := db.read.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM calls WHERE `+cond), args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count calls: %w", err)
	}
	rows, err := db.read.QueryContext(ctx, db.q(`SELECT `+callListColumns+` FROM calls WHERE `+cond+` ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`), append(args, f.Page.Limit, f.Page.Offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("list calls: %w", err)
	}
	defer rows.Close()
	out := []Call{}
	for rows.Next() {
		c, err := scanCall(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("list calls: %w", err)
		}
		out = append(out, *c)
	}
	return out, total, rows.Err()
}

// UsageLog is one billed call.
type UsageLog struct {
	ID           string
	OrgID        string
	CallID       *string
	DurationSec  int
	CallType     string // "phone" or "web"
	BYOKSTT      bool
	BYOKLLM      bool
	BYOKTTS      bool
	PhoneNumber  *string
	AgentName    *string
	BusinessName *string
	// MinutesUsed is what the call cost (BilledMinutes of its duration),
	// taken from BilledOrgID's balance: the organization's own, or its
	// parent's for a child organization. Set by EndCall.
	MinutesUsed float64
	BilledOrgID *string
	CreatedAt   time.Time
}

// UsageSummary totals the usage logs that match a filter.
type UsageSummary struct {
	TotalCalls           int
	TotalDurationSeconds int
	TotalMinutesUsed     float64
}

// UsageFilter selects usage logs.
type UsageFilter struct {
	Since *time.Time
	Until *time.Time
	Page  Page
}

const usageColumns = `id, org_id, call_id, duration_sec, call_type, byok_stt, byok_llm, byok_tts, phone_number, agent_name, business_name, minutes_used, billed_org_id, created_at`

// CreateUsageLog inserts a usage log row.
func (db *DB) CreateUsageLog(ctx context.Context, u *UsageLog) error {
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error { return db.insertUsage(ctx, db.w(tx), u) })
}

func (db *DB) insertUsage(ctx context.Context, q querier, u *UsageLog) error {
	if u.ID == "" {
		u.ID = NewID()
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = db.now().UTC().Truncate(time.Millisecond)
	}
	_, err := q.ExecContext(ctx, db.q(`INSERT INTO usage_logs (`+usageColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		u.ID, u.OrgID, nullStr(u.CallID), u.DurationSec, u.CallType, u.BYOKSTT, u.BYOKLLM, u.BYOKTTS, nullStr(u.PhoneNumber), nullStr(u.AgentName), nullStr(u.BusinessName),
		u.MinutesUsed, nullStr(u.BilledOrgID), ms(u.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert usage log: %w", err)
	}
	return nil
}

// ListUsage returns the organization's usage logs matching f, newest first, the total count and the summary over all matches.
func (db *DB) ListUsage(ctx context.Context, orgID string, f UsageFilter) ([]UsageLog, int, UsageSummary, error) {
	where := []string{"org_id = ?"}
	args := []any{orgID}
	if f.Since != nil {
		where, args = append(where, "created_at >= ?"), append(args, ms(*f.Since))
	}
	if f.Until != nil {
		where, args = append(where, "created_at <= ?"), append(args, ms(*f.Until))
	}
	cond := strings.Join(where, " AND ")
	var sum UsageSummary
	var secs sql.NullInt64
	var mins sql.NullFloat64
	if err := db.read.QueryRowContext(ctx, db.q(`SELECT COUNT(*), SUM(duration_sec), SUM(minutes_used) FROM usage_logs WHERE `+cond), args...).Scan(&sum.TotalCalls, &secs, &mins); err != nil {
		return nil, 0, sum, fmt.Errorf("summarise usage: %w", err)
	}
	sum.TotalDurationSeconds, sum.TotalMinutesUsed = int(secs.Int64), mins.Float64
	rows, err := db.read.QueryContext(ctx, db.q(`SELECT `+usageColumns+` FROM usage_logs WHERE `+cond+` ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`), append(args, f.Page.Limit, f.Page.Offset)...)
	if err != nil {
		return nil, 0, sum, fmt.Errorf("list usage: %w", err)
	}
	defer rows.Close()
	out := []UsageLog{}
	for rows.Next() {
		var u UsageLog
		var callID, phone, aname, bname, payer sql.NullString
		var minutes sql.NullFloat64
		var c int64
		if err := rows.Scan(&u.ID, &u.OrgID, &callID, &u.DurationSec, &u.CallType, &u.BYOKSTT, &u.BYOKLLM, &u.BYOKTTS, &phone, &aname, &bname, &minutes, &payer, &c); err != nil {
			return nil, 0, sum, fmt.Errorf("list usage: %w", err)
		}
		u.CallID, u.PhoneNumber, u.AgentName, u.BusinessName, u.CreatedAt = strPtr(callID), strPtr(phone), strPtr(aname), strPtr(bname), fromMS(c)
		u.MinutesUsed, u.BilledOrgID = minutes.Float64, strPtr(payer)
		out = append(out, u)
	}
	return out, sum.TotalCalls, sum, rows.Err()
}

// businessName extracts business_name from an assistant body.
func businessName(body string) *string {
	var doc struct {
		BusinessName *string `json:"business_name"`
	}
	if json.Unmarshal([]byte(body), &doc) != nil {
		return nil
	}
	return doc.BusinessName
}
