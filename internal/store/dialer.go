package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/parley-voice/parley/internal/campaign"
)

// The campaign dialer's side of the store. A dial is decided and its lead
// moved to calling in one transaction (ClaimLeads), so a crash can neither
// dial a lead the database does not show as calling nor lose one: a lead
// claimed by a process life that died before its call row existed was never
// dialled and is handed back uncounted (EndedAttempts reports it with
// CallMissing); one whose call ended is settled once (SettleLead only moves a
// lead still calling with that call id). On PostgreSQL the claims of one
// organization are serialised by a transaction-scoped advisory lock and the
// campaign row is locked, so several nodes share the work and every cap
// (campaign, organization, rate) holds across them; SQLite has one writer.

// dialerLockSpace is the first key of the two-key advisory lock taken per
// organization while claiming leads ("dial" in ASCII).
const dialerLockSpace = 0x6469616c

// ScheduledCampaigns returns every campaign in status scheduled, of all
// organizations, oldest first: the dialer's work list.
func (db *DB) ScheduledCampaigns(ctx context.Context) ([]Campaign, error) {
	rows, err := db.read.QueryContext(ctx, db.q(campaignSelect+` WHERE c.status = 'scheduled' ORDER BY c.created_at, c.id`))
	if err != nil {
		return nil, fmt.Errorf("list scheduled campaigns: %w", err)
	}
	defer rows.Close()
	var out []Campaign
	for rows.Next() {
		c, err := scanCampaign(rows)
		if err != nil {
			return nil, fmt.Errorf("list scheduled campaigns: %w", err)
		}
		out = append(out, *c)
	}
	return out, rows.Err()
}

// ClaimRequest asks for leads of one campaign to dial now.
type ClaimRequest struct {
	OrgID, CampaignID string
	Now               time.Time
	// Limit is the most leads this node can dial now (its free capacity).
	Limit int
	// MaxConcurrent is the campaign's cap on leads being called at once.
	MaxConcurrent int
	// OrgMaxConcurrent caps the organization's campaign calls at once; the
	// organization's own cap, when lower, wins.
	OrgMaxConcurrent int
	// TrunkID names the trunk the calls go out through; with TrunkMax > 0,
	// at most TrunkMax outbound calls may be live on it (its channel limit,
	// counting every call of the organization's numbers on that trunk).
	TrunkID  string
	TrunkMax int
	// At most RateMax dials may start in any RateWindow.
	RateWindow time.Duration
	RateMax    int
	// BootID is this process life, stamped on the claimed leads.
	BootID string
	// NewCallID names the call of each claimed lead.
	NewCallID func() string
}

// ClaimLeads moves up to as many due pending leads as every cap allows to
// calling, counting an attempt and naming each one's call, in one
// transaction, and returns them. Nothing is claimed unless the campaign is
// still scheduled and not backing off.
func (db *DB) ClaimLeads(ctx context.Context, r ClaimRequest) ([]Lead, error) {
	now := r.Now.UTC().Truncate(time.Millisecond)
	var out []Lead
	err := db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		out = out[:0]
		w := db.w(tx)
		forUpdate := ""
		if db.drv.Name() == "postgres" {
			if _, err := w.ExecContext(ctx, db.q(`SELECT pg_advisory_xact_lock(?, hashtext(?))`), dialerLockSpace, r.OrgID); err != nil {
				return fmt.Errorf("lock the organization's dialing: %w", err)
			}
			forUpdate = " FOR UPDATE"
		}
		var status string
		var backoff sql.NullInt64
		err := w.QueryRowContext(ctx, db.q(`SELECT status, backoff_until FROM campaigns WHERE id = ? AND org_id = ?`+forUpdate), r.CampaignID, r.OrgID).Scan(&status, &backoff)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read campaign: %w", err)
		}
		if status != campaign.Scheduled.String() || (backoff.Valid && backoff.Int64 > ms(now)) {
			return nil
		}
		var callingCampaign, callingOrg, started int
		var orgCap sql.NullInt64
		if err := w.QueryRowContext(ctx, db.q(`SELECT
			(SELECT COUNT(*) FROM campaign_leads WHERE campaign_id = ? AND status = 'calling'),
			(SELECT COUNT(*) FROM campaign_leads WHERE org_id = ? AND status = 'calling'),
			(SELECT COUNT(*) FROM campaign_leads WHERE campaign_id = ? AND last_attempt_at > ?),
			(SELECT max_concurrent_campaign_calls FROM organizations WHERE id = ?)`),
			r.CampaignID, r.OrgID, r.CampaignID, ms(now.Add(-r.RateWindow)), r.OrgID).Scan(&callingCampaign, &callingOrg, &started, &orgCap); err != nil {
			return fmt.Errorf("count calls in progress: %w", err)
		}
		// An organization's own cap can only lower the server's: tenants
		// share the server.
		capOrg := r.OrgMaxConcurrent
		if orgCap.Valid {
			capOrg = min(capOrg, int(orgCap.Int64))
		}
		n := min(r.Limit, r.MaxConcurrent-callingCampaign, capOrg-callingOrg, r.RateMax-started)
		if r.TrunkMax > 0 && n > 0 {
			used, err := db.trunkLoad(ctx, w, r.OrgID, r.TrunkID, true)
			if err != nil {
				return err
			}
			n = min(n, r.TrunkMax-used)
		}
		if n <= 0 {
			return nil
		}
		rows, err := w.QueryContext(ctx, db.q(`SELECT `+leadColumns+` FROM campaign_leads
			WHERE campaign_id = ? AND status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= ?)
			ORDER BY created_at, id LIMIT ?`), r.CampaignID, ms(now), n)
		if err != nil {
			return fmt.Errorf("find due leads: %w", err)
		}
		for rows.Next() {
			l, err := scanLead(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("find due leads: %w", err)
			}
			out = append(out, *l)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("find due leads: %w", err)
		}
		for i := range out {
			l := &out[i]
			id := r.NewCallID()
			res, err := w.ExecContext(ctx, db.q(`UPDATE campaign_leads SET status = 'calling', attempts = attempts + 1, last_attempt_at = ?, next_attempt_at = NULL,
				call_id = ?, dial_boot = ?, updated_at = ? WHERE id = ? AND status = 'pending'`), ms(now), id, r.BootID, ms(now), l.ID)
			if err != nil {
				return fmt.Errorf("claim lead %s: %w", l.ID, err)
			}
			if k, _ := res.RowsAffected(); k != 1 {
				return fmt.Errorf("claim lead %s: it changed under the claim", l.ID)
			}
			l.Status, l.CallID, l.Attempts, l.LastAttemptAt, l.NextAttemptAt, l.UpdatedAt = campaign.LeadCalling, &id, l.Attempts+1, &now, nil, now
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// trunkLoad counts the organization's outbound calls live on a trunk, and,
// withClaims, its claimed leads whose call row is not written yet (they are
// about to be).
func (db *DB) trunkLoad(ctx context.Context, q querier, orgID, trunkID string, withClaims bool) (int, error) {
	var live, claimed int
	err := q.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM calls c JOIN numbers n ON n.id = c.number_id
		WHERE n.transfer_trunk_id = ? AND n.org_id = ? AND c.direction = 'outbound' AND c.status IN `+liveStatuses), trunkID, orgID).Scan(&live)
	if err == nil && withClaims {
		err = q.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM campaign_leads l WHERE l.org_id = ? AND l.status = 'calling'
			AND NOT EXISTS (SELECT 1 FROM calls c WHERE c.id = l.call_id)`), orgID).Scan(&claimed)
	}
	if err != nil {
		return 0, fmt.Errorf("count calls on trunk %s: %w", trunkID, err)
	}
	return live + claimed, nil
}

// LiveCallsOnTrunk counts the organization's outbound calls live on a trunk.
func (db *DB) LiveCallsOnTrunk(ctx context.Context, orgID, trunkID string) (int, error) {
	return db.trunkLoad(ctx, db.read, orgID, trunkID, false)
}

// EndedAttempt is a lead being called whose attempt is over: its call ended,
// or its call never existed and the process life that claimed it is over.
type EndedAttempt struct {
	Lead
	CampaignStatus campaign.Status
	AgentID        string
	// The campaign's retry settings (nil: the default).
	MaxAttempts       *int
	RetryDelaySeconds *int
	// CallMissing: no call row was ever written, so nothing was dialled.
	CallMissing bool
	EndReason   string
	// Answered: the far end answered (the call connected).
	Answered bool
}

// EndedAttempts returns up to limit leads whose attempt is over, oldest
// attempt first. A boot whose heartbeat is older than staleAfter (by the
// store's clock, which writes the heartbeats), that stopped, or whose node
// started again, is over.
func (db *DB) EndedAttempts(ctx context.Context, staleAfter time.Duration, limit int) ([]EndedAttempt, error) {
	staleBefore := db.now().Add(-staleAfter)
	rows, err := db.read.QueryContext(ctx, db.q(`SELECT `+leadColumnsOf("l")+`,
		cm.status, cm.agent_id, cm.max_attempts, cm.retry_delay_seconds, ca.id IS NULL, COALESCE(ca.end_reason, ''), ca.started_at IS NOT NULL
		FROM campaign_leads l JOIN campaigns cm ON cm.id = l.campaign_id LEFT JOIN calls ca ON ca.id = l.call_id
		WHERE l.status = 'calling' AND (
			(ca.id IS NOT NULL AND ca.status NOT IN `+liveStatuses+`)
			OR (ca.id IS NULL AND NOT EXISTS (SELECT 1 FROM node_boots b WHERE b.id = l.dial_boot AND b.stopped_at IS NULL AND b.heartbeat_at >= ?
				AND NOT EXISTS (SELECT 1 FROM node_boots n WHERE n.node_id = b.node_id AND n.started_at > b.started_at))))
		ORDER BY l.last_attempt_at, l.id LIMIT ?`), ms(staleBefore), limit)
	if err != nil {
		return nil, fmt.Errorf("list ended attempts: %w", err)
	}
	defer rows.Close()
	var out []EndedAttempt
	for rows.Next() {
		var a EndedAttempt
		var cstatus string
		var maxAtt, delay sql.NullInt64
		l, err := scanLeadWith(rows, &cstatus, &a.AgentID, &maxAtt, &delay, &a.CallMissing, &a.EndReason, &a.Answered)
		if err != nil {
			return nil, fmt.Errorf("list ended attempts: %w", err)
		}
		a.Lead = *l
		a.CampaignStatus, _ = campaign.ParseStatus(cstatus)
		a.MaxAttempts, a.RetryDelaySeconds = intPtr(maxAtt), intPtr(delay)
		out = append(out, a)
	}
	return out, rows.Err()
}

// Settlement is what an attempt came to for its lead.
type Settlement struct {
	LeadID, CallID string
	// Status is LeadPending (tried again at NextAttemptAt), LeadCompleted or
	// LeadFailed. A lead due again in a cancelled campaign is skipped.
	Status        campaign.LeadStatus
	NextAttemptAt *time.Time
	// Uncounted takes the attempt back (nothing reached the callee because
	// of us or the trunk); the lead keeps its place in line.
	Uncounted bool
	// Released: the call was never placed, so the lead names no call.
	Released bool
	Outcome  string
}

// SettleLead records a settlement for a lead still calling with that call,
// and reports whether it did (another node may have settled it first).
func (db *DB) SettleLead(ctx context.Context, s Settlement) (bool, error) {
	dec := 0
	if s.Uncounted {
		dec = 1
	}
	now := ms(db.now())
	var callID any = s.CallID
	if s.Released {
		callID = nil
	}
	// A skipped lead is due no more (as UpdateCampaign skips them). On
	// PostgreSQL the campaign's status is read under a share lock: a cancel
	// committing meanwhile (which skips the pending leads) is waited for,
	// so a retry is never left pending in a cancelled campaign.
	share := ""
	if db.drv.Name() == "postgres" {
		share = " FOR SHARE"
	}
	skip := `? = 'pending' AND (SELECT status FROM campaigns WHERE id = campaign_leads.campaign_id` + share + `) = 'cancelled'`
	res, err := db.exec(ctx, db.q(`UPDATE campaign_leads SET
		status = CASE WHEN `+skip+` THEN 'skipped' ELSE ? END,
		next_attempt_at = CASE WHEN `+skip+` THEN NULL ELSE CAST(? AS BIGINT) END,
		attempts = attempts - ?, last_outcome = COALESCE(?, last_outcome), call_id = ?, dial_boot = NULL, updated_at = ?
		WHERE id = ? AND status = 'calling' AND COALESCE(call_id, '') = ?`),
		s.Status.String(), s.Status.String(), s.Status.String(), msPtr(s.NextAttemptAt), dec, nullStr(nonEmpty(s.Outcome)), callID, now, s.LeadID, s.CallID)
	if err != nil {
		return false, fmt.Errorf("settle lead %s: %w", s.LeadID, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// PauseCampaign pauses a scheduled campaign for a reason the platform gives
// (no minutes left, a trunk refusing our credentials); it reports whether it
// did.
func (db *DB) PauseCampaign(ctx context.Context, id, reason string) (bool, error) {
	now := ms(db.now())
	res, err := db.exec(ctx, db.q(`UPDATE campaigns SET status = 'paused', status_reason = ?, updated_at = ? WHERE id = ? AND status = 'scheduled'`), reason, now, id)
	if err != nil {
		return false, fmt.Errorf("pause campaign %s: %w", id, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// BackoffCampaign stops a campaign's dials until a time (a congested trunk).
func (db *DB) BackoffCampaign(ctx context.Context, id string, until time.Time) error {
	if _, err := db.exec(ctx, db.q(`UPDATE campaigns SET backoff_until = ? WHERE id = ? AND status = 'scheduled'`), ms(until), id); err != nil {
		return fmt.Errorf("back off campaign %s: %w", id, err)
	}
	return nil
}

// CompleteFinished marks completed every scheduled campaign that has leads
// and none left to call (none pending, none being called), and returns how
// many it marked.
func (db *DB) CompleteFinished(ctx context.Context) (int, error) {
	now := ms(db.now())
	res, err := db.exec(ctx, db.q(`UPDATE campaigns SET status = 'completed', status_reason = NULL, backoff_until = NULL, updated_at = ?
		WHERE status = 'scheduled' AND EXISTS (SELECT 1 FROM campaign_leads l WHERE l.campaign_id = campaigns.id)
		AND NOT EXISTS (SELECT 1 FROM campaign_leads l WHERE l.campaign_id = campaigns.id AND l.status IN ('pending', 'calling'))`), now)
	if err != nil {
		return 0, fmt.Errorf("complete finished campaigns: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// SetOrgCampaignCap sets an organization's cap on campaign calls at once;
// nil returns it to the server's default.
func (db *DB) SetOrgCampaignCap(ctx context.Context, orgID string, max *int) error {
	res, err := db.exec(ctx, db.q(`UPDATE organizations SET max_concurrent_campaign_calls = ?, updated_at = ? WHERE id = ?`), nullInt(max), ms(db.now()), orgID)
	if err != nil {
		return fmt.Errorf("set campaign call cap: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("set campaign call cap: organization %s not found", orgID)
	}
	return nil
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
