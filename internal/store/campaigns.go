package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/parley-voice/parley/internal/campaign"
	"github.com/parley-voice/parley/internal/fault"
)

// Campaign is an outbound campaign with its lead counters.
type Campaign struct {
	ID                    string
	OrgID                 string
	Name                  string
	AgentID               string
	Status                campaign.Status
	SystemMessageTemplate *string
	ScheduleStartTime     string
	ScheduleEndTime       string
	Timezone              string
	// DaysOfWeek are the short weekday names the campaign dials on
	// ("mon".."sun"); empty means every day.
	DaysOfWeek []string
	// Pacing; nil means the documented default (campaign.Pacing).
	MaxConcurrentCalls *int
	CallsPerSecond     *float64
	MaxAttempts        *int
	RetryDelaySeconds  *int
	// StatusReason says why the platform paused the campaign (a client
	// setting a status clears it).
	StatusReason *string
	// BackoffUntil: the trunk or the server was congested; no dial before.
	BackoffUntil *time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time

	// Read-only counters.
	TotalLeads     int
	CompletedLeads int
	FailedLeads    int
	PendingLeads   int
	CallingLeads   int
	SkippedLeads   int
	// RetriesScheduled counts pending leads waiting for a retry (tried before,
	// with a next_attempt_at).
	RetriesScheduled int
	// NextRetryAt is the earliest next_attempt_at of a pending lead.
	NextRetryAt *time.Time
}

// Lead is one person a campaign calls.
type Lead struct {
	ID            string
	CampaignID    string
	OrgID         string
	PhoneNumber   string
	Name          *string
	Variables     map[string]string
	Status        campaign.LeadStatus
	CallID        *string
	Attempts      int
	LastAttemptAt *time.Time
	// NextAttemptAt: a retry is due then (pending leads tried before).
	NextAttemptAt *time.Time
	// LastOutcome is what the last attempt came to (campaign.Decision.Outcome).
	LastOutcome *string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// campaignSelect reads a campaign with its counters; each counter is an
// index range of campaign_leads_due (campaign_id, status, next_attempt_at).
const campaignSelect = `SELECT c.id, c.org_id, c.name, c.agent_id, c.status, c.system_message_template, c.schedule_start_time, c.schedule_end_time, c.timezone,
	c.days_of_week, c.max_concurrent_calls, c.calls_per_second, c.max_attempts, c.retry_delay_seconds, c.status_reason, c.backoff_until, c.created_at, c.updated_at,
	(SELECT COUNT(*) FROM campaign_leads l WHERE l.campaign_id = c.id),
	(SELECT COUNT(*) FROM campaign_leads l WHERE l.campaign_id = c.id AND l.status = 'completed'),
	(SELECT COUNT(*) FROM campaign_leads l WHERE l.campaign_id = c.id AND l.status = 'failed'),
	(SELECT COUNT(*) FROM campaign_leads l WHERE l.campaign_id = c.id AND l.status = 'pending'),
	(SELECT COUNT(*) FROM campaign_leads l WHERE l.campaign_id = c.id AND l.status = 'calling'),
	(SELECT COUNT(*) FROM campaign_leads l WHERE l.campaign_id = c.id AND l.status = 'skipped'),
	(SELECT COUNT(*) FROM campaign_leads l WHERE l.campaign_id = c.id AND l.status = 'pending' AND l.next_attempt_at IS NOT NULL),
	(SELECT MIN(l.next_attempt_at) FROM campaign_leads l WHERE l.campaign_id = c.id AND l.status = 'pending')
	FROM campaigns c`

func scanCampaign(row interface{ Scan(...any) error }) (*Campaign, error) {
	var c Campaign
	var status string
	var tmpl, days, reason sql.NullString
	var maxConc, maxAtt, delay sql.NullInt64
	var cps sql.NullFloat64
	var backoff, nextRetry sql.NullInt64
	var cr, up int64
	if err := row.Scan(&c.ID, &c.OrgID, &c.Name, &c.AgentID, &status, &tmpl, &c.ScheduleStartTime, &c.ScheduleEndTime, &c.Timezone,
		&days, &maxConc, &cps, &maxAtt, &delay, &reason, &backoff, &cr, &up,
		&c.TotalLeads, &c.CompletedLeads, &c.FailedLeads, &c.PendingLeads, &c.CallingLeads, &c.SkippedLeads, &c.RetriesScheduled, &nextRetry); err != nil {
		return nil, err
	}
	c.Status, _ = campaign.ParseStatus(status)
	c.SystemMessageTemplate, c.CreatedAt, c.UpdatedAt = strPtr(tmpl), fromMS(cr), fromMS(up)
	if days.Valid && days.String != "" {
		c.DaysOfWeek = strings.Split(days.String, ",")
	}
	c.MaxConcurrentCalls, c.MaxAttempts, c.RetryDelaySeconds = intPtr(maxConc), intPtr(maxAtt), intPtr(delay)
	if cps.Valid {
		c.CallsPerSecond = &cps.Float64
	}
	c.StatusReason, c.BackoffUntil, c.NextRetryAt = strPtr(reason), fromNullMS(backoff), fromNullMS(nextRetry)
	return &c, nil
}

// CreateCampaign inserts a campaign and its initial leads atomically.
func (db *DB) CreateCampaign(ctx context.Context, c *Campaign, leads []Lead) error {
	now := db.now().UTC().Truncate(time.Millisecond)
	if c.ID == "" {
		c.ID = NewID()
	}
	c.CreatedAt, c.UpdatedAt = now, now
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if err := db.checkRef(ctx, tx, Assistants, c.OrgID, c.AgentID, "agent_id"); err != nil {
			return err
		}
		_, err := db.w(tx).ExecContext(ctx, db.q(`INSERT INTO campaigns (id, org_id, name, agent_id, status, system_message_template, schedule_start_time, schedule_end_time, timezone,
			days_of_week, max_concurrent_calls, calls_per_second, max_attempts, retry_delay_seconds, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			c.ID, c.OrgID, c.Name, c.AgentID, c.Status.String(), nullStr(c.SystemMessageTemplate), c.ScheduleStartTime, c.ScheduleEndTime, c.Timezone,
			daysValue(c.DaysOfWeek), nullInt(c.MaxConcurrentCalls), nullFloat(c.CallsPerSecond), nullInt(c.MaxAttempts), nullInt(c.RetryDelaySeconds), ms(now), ms(now))
		if err != nil {
			return fmt.Errorf("insert campaign: %w", err)
		}
		for i := range leads {
			leads[i].CampaignID, leads[i].OrgID = c.ID, c.OrgID
			if err := db.insertLead(ctx, tx, &leads[i], now.Add(time.Duration(i)*time.Millisecond)); err != nil {
				return err
			}
		}
		c.TotalLeads, c.PendingLeads = len(leads), len(leads)
		return nil
	})
}

func (db *DB) insertLead(ctx context.Context, tx querier, l *Lead, at time.Time) error {
	if l.ID == "" {
		l.ID = NewID()
	}
	if l.Status == campaign.LeadUnknown {
		l.Status = campaign.LeadPending
	}
	if l.Variables == nil {
		l.Variables = map[string]string{}
	}
	vars, err := json.Marshal(l.Variables)
	if err != nil {
		return fmt.Errorf("encode lead variables: %w", err)
	}
	l.CreatedAt, l.UpdatedAt = at, at
	_, err = tx.ExecContext(ctx, db.q(`INSERT INTO campaign_leads (id, campaign_id, org_id, phone_number, name, variables, status, call_id, attempts, last_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		l.ID, l.CampaignID, l.OrgID, l.PhoneNumber, nullStr(l.Name), string(vars), l.Status.String(), nullStr(l.CallID), l.Attempts, msPtr(l.LastAttemptAt), ms(at), ms(at))
	if err != nil {
		return fmt.Errorf("insert lead: %w", err)
	}
	return nil
}

// GetCampaign returns one of the organization's campaigns.
func (db *DB) GetCampaign(ctx context.Context, orgID, id string) (*Campaign, error) {
	return db.getCampaign(ctx, db.read, orgID, id)
}

func (db *DB) getCampaign(ctx context.Context, q querier, orgID, id string) (*Campaign, error) {
	c, err := scanCampaign(q.QueryRowContext(ctx, db.q(campaignSelect+` WHERE c.id = ? AND c.org_id = ?`), id, orgID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fault.NotFoundf("campaign %s not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get campaign: %w", err)
	}
	return c, nil
}

// ListCampaignsPage returns a window of the organization's campaigns, oldest
// first, and how many there are.
func (db *DB) ListCampaignsPage(ctx context.Context, orgID string, p Page) ([]Campaign, int, error) {
	return listPage(ctx, db, "campaigns", `SELECT COUNT(*) FROM campaigns WHERE org_id = ?`,
		campaignSelect+` WHERE c.org_id = ? ORDER BY c.created_at, c.id`, []any{orgID}, p, scanCampaign)
}

// UpdateCampaign applies change to the stored campaign and writes it back
// atomically. A status set by the client clears the platform's pause reason
// and any backoff; cancelling skips the leads still pending in the same
// transaction (calls in progress finish and their leads settle as usual).
func (db *DB) UpdateCampaign(ctx context.Context, orgID, id string, change func(c *Campaign) error) (*Campaign, error) {
	var out *Campaign
	err := db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		c, err := db.getCampaign(ctx, tx, orgID, id)
		if err != nil {
			return err
		}
		was := c.Status
		if err := change(c); err != nil {
			return err
		}
		if c.Status != was {
			c.StatusReason, c.BackoffUntil = nil, nil
		}
		now := ms(db.now())
		_, err = db.w(tx).ExecContext(ctx, db.q(`UPDATE campaigns SET name = ?, status = ?, system_message_template = ?, schedule_start_time = ?, schedule_end_time = ?, timezone = ?,
			days_of_week = ?, max_concurrent_calls = ?, calls_per_second = ?, max_attempts = ?, retry_delay_seconds = ?, status_reason = ?, backoff_until = ?, updated_at = ? WHERE id = ? AND org_id = ?`),
			c.Name, c.Status.String(), nullStr(c.SystemMessageTemplate), c.ScheduleStartTime, c.ScheduleEndTime, c.Timezone,
			daysValue(c.DaysOfWeek), nullInt(c.MaxConcurrentCalls), nullFloat(c.CallsPerSecond), nullInt(c.MaxAttempts), nullInt(c.RetryDelaySeconds),
			nullStr(c.StatusReason), msPtr(c.BackoffUntil), now, id, orgID)
		if err != nil {
			return fmt.Errorf("update campaign: %w", err)
		}
		if c.Status == campaign.Cancelled && was != campaign.Cancelled {
			if _, err := db.w(tx).ExecContext(ctx, db.q(`UPDATE campaign_leads SET status = 'skipped', next_attempt_at = NULL, updated_at = ? WHERE campaign_id = ? AND status = 'pending'`), now, id); err != nil {
				return fmt.Errorf("skip pending leads: %w", err)
			}
		}
		out, err = db.getCampaign(ctx, tx, orgID, id)
		return err
	})
	return out, err
}

// DeleteCampaign deletes a campaign and its leads. A campaign with a lead being
// called is a conflict: pause or cancel it and wait for the call to end.
func (db *DB) DeleteCampaign(ctx context.Context, orgID, id string) error {
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := db.getCampaign(ctx, tx, orgID, id); err != nil {
			return err
		}
		var calling int
		if err := db.w(tx).QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM campaign_leads WHERE campaign_id = ? AND status = 'calling'`), id).Scan(&calling); err != nil {
			return fmt.Errorf("check calling leads: %w", err)
		}
		if calling > 0 {
			return fault.Conflictf("campaign_calling", "campaign has %d lead(s) being called; pause or cancel it (PATCH status) and delete it once those calls have ended", calling)
		}
		if _, err := db.w(tx).ExecContext(ctx, db.q(`DELETE FROM campaign_leads WHERE campaign_id = ?`), id); err != nil {
			return fmt.Errorf("delete leads: %w", err)
		}
		if _, err := db.w(tx).ExecContext(ctx, db.q(`DELETE FROM campaigns WHERE id = ? AND org_id = ?`), id, orgID); err != nil {
			return fmt.Errorf("delete campaign: %w", err)
		}
		return nil
	})
}

// AddLead adds a lead to a campaign that is not finished.
func (db *DB) AddLead(ctx context.Context, orgID, campaignID string, l *Lead) error {
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		c, err := db.getCampaign(ctx, tx, orgID, campaignID)
		if err != nil {
			return err
		}
		if c.Status.Final() {
			return fault.Conflictf("campaign_final", "campaign is %s; leads can no longer be added", c.Status)
		}
		l.CampaignID, l.OrgID = campaignID, orgID
		return db.insertLead(ctx, tx, l, db.now().UTC().Truncate(time.Millisecond))
	})
}

const leadColumns = `id, campaign_id, org_id, phone_number, name, variables, status, call_id, attempts, last_attempt_at, next_attempt_at, last_outcome, created_at, updated_at`

// leadColumnsOf is leadColumns qualified by a table alias, for joins.
func leadColumnsOf(alias string) string {
	return alias + "." + strings.ReplaceAll(leadColumns, ", ", ", "+alias+".")
}

func scanLead(row interface{ Scan(...any) error }) (*Lead, error) { return scanLeadWith(row) }

// scanLeadWith reads a row of leadColumns, then extra columns into extra.
func scanLeadWith(row interface{ Scan(...any) error }, extra ...any) (*Lead, error) {
	var l Lead
	var name, callID, outcome sql.NullString
	var vars, status string
	var last, next sql.NullInt64
	var c, u int64
	if err := row.Scan(append([]any{&l.ID, &l.CampaignID, &l.OrgID, &l.PhoneNumber, &name, &vars, &status, &callID, &l.Attempts, &last, &next, &outcome, &c, &u}, extra...)...); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(vars), &l.Variables); err != nil {
		return nil, fmt.Errorf("decode lead variables: %w", err)
	}
	l.Status, _ = campaign.ParseLeadStatus(status)
	l.Name, l.CallID, l.LastAttemptAt, l.CreatedAt, l.UpdatedAt = strPtr(name), strPtr(callID), fromNullMS(last), fromMS(c), fromMS(u)
	l.NextAttemptAt, l.LastOutcome = fromNullMS(next), strPtr(outcome)
	return &l, nil
}

// ListLeads returns a campaign's leads, oldest first, and their total.
func (db *DB) ListLeads(ctx context.Context, orgID, campaignID string, p Page) ([]Lead, int, error) {
	if _, err := db.GetCampaign(ctx, orgID, campaignID); err != nil {
		return nil, 0, err
	}
	return listPage(ctx, db, "leads", `SELECT COUNT(*) FROM campaign_leads WHERE campaign_id = ? AND org_id = ?`,
		`SELECT `+leadColumns+` FROM campaign_leads WHERE campaign_id = ? AND org_id = ? ORDER BY created_at, id`, []any{campaignID, orgID}, p, scanLead)
}

// DeleteLead removes a lead that is not being called.
func (db *DB) DeleteLead(ctx context.Context, orgID, campaignID, leadID string) error {
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		l, err := scanLead(db.w(tx).QueryRowContext(ctx, db.q(`SELECT `+leadColumns+` FROM campaign_leads WHERE id = ? AND campaign_id = ? AND org_id = ?`), leadID, campaignID, orgID))
		if errors.Is(err, sql.ErrNoRows) {
			return fault.NotFoundf("lead %s not found", leadID)
		}
		if err != nil {
			return fmt.Errorf("get lead: %w", err)
		}
		if l.Status == campaign.LeadCalling {
			return fault.Conflictf("lead_calling", "lead is being called and cannot be removed until the call ends")
		}
		if _, err := db.w(tx).ExecContext(ctx, db.q(`DELETE FROM campaign_leads WHERE id = ?`), leadID); err != nil {
			return fmt.Errorf("delete lead: %w", err)
		}
		return nil
	})
}

// SetLeadStatus records a dialing outcome for a lead (used by the dialer and tests).
// Moving a lead to calling counts an attempt.
func (db *DB) SetLeadStatus(ctx context.Context, orgID, leadID string, status campaign.LeadStatus, callID *string) error {
	now := ms(db.now())
	inc, last := 0, any(nil)
	if status == campaign.LeadCalling {
		inc, last = 1, now
	}
	res, err := db.exec(ctx, db.q(`UPDATE campaign_leads SET status = ?, call_id = COALESCE(?, call_id), attempts = attempts + ?,
		last_attempt_at = COALESCE(?, last_attempt_at), updated_at = ? WHERE id = ? AND org_id = ?`),
		status.String(), nullStr(callID), inc, last, now, leadID, orgID)
	if err != nil {
		return fmt.Errorf("set lead status: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fault.NotFoundf("lead %s not found", leadID)
	}
	return nil
}

// Pacing is the campaign's pacing with the defaults filled in.
func (c *Campaign) Pacing() campaign.Pacing {
	var p campaign.Pacing
	if c.MaxConcurrentCalls != nil {
		p.MaxConcurrent = *c.MaxConcurrentCalls
	}
	if c.CallsPerSecond != nil {
		p.CallsPerSecond = *c.CallsPerSecond
	}
	if c.MaxAttempts != nil {
		p.MaxAttempts = *c.MaxAttempts
	}
	if c.RetryDelaySeconds != nil {
		p.RetryDelay = time.Duration(*c.RetryDelaySeconds) * time.Second
	}
	return p.WithDefaults()
}

// daysValue stores weekday names comma-separated; none is NULL (every day).
func daysValue(days []string) any {
	if len(days) == 0 {
		return nil
	}
	return strings.Join(days, ",")
}

func nullFloat(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}
