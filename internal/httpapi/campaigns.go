package httpapi

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/parley-voice/parley/internal/campaign"
	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/store"
)

// Campaigns and leads (spec §7.15). Dialing is not here; these handlers keep
// the records and enforce the status rules.

func campaignObject(c *store.Campaign, now time.Time) map[string]any {
	done := c.CompletedLeads + c.FailedLeads + c.SkippedLeads
	percent := 0.0
	if c.TotalLeads > 0 {
		percent = math.Round(float64(done)*1000/float64(c.TotalLeads)) / 10
	}
	out := map[string]any{
		"id": c.ID, "org_id": c.OrgID, "name": c.Name, "agent_id": c.AgentID, "assistant_id": c.AgentID, "status": c.Status.String(),
		"system_message_template": c.SystemMessageTemplate, "schedule_start_time": c.ScheduleStartTime,
		"schedule_end_time": c.ScheduleEndTime, "timezone": c.Timezone, "total_leads": c.TotalLeads,
		"completed_leads": c.CompletedLeads, "failed_leads": c.FailedLeads,
		"created_at": ts(c.CreatedAt), "updated_at": ts(c.UpdatedAt),
		// Parley extensions: why the platform paused it, the dialer's live counters.
		"status_reason": c.StatusReason, "pending_leads": c.PendingLeads, "calling_leads": c.CallingLeads, "skipped_leads": c.SkippedLeads,
		"retries_scheduled": c.RetriesScheduled, "next_retry_at": tsPtr(c.NextRetryAt), "backoff_until": tsPtr(c.BackoffUntil),
		"progress": map[string]any{
			"total": c.TotalLeads, "done": done, "percent": percent, "pending": c.PendingLeads, "calling": c.CallingLeads,
			"completed": c.CompletedLeads, "failed": c.FailedLeads, "skipped": c.SkippedLeads, "retries_scheduled": c.RetriesScheduled,
		},
	}
	pacingObject(c, out)
	out["next_dial_at"] = tsPtr(nextDial(c, now))
	return out
}

// nextDial is when a scheduled campaign with leads to call dials next (now
// while it can dial at once); nil otherwise.
func nextDial(c *store.Campaign, now time.Time) *time.Time {
	if c.Status != campaign.Scheduled || c.PendingLeads == 0 {
		return nil
	}
	days, err := campaign.ParseDays(c.DaysOfWeek)
	if err != nil {
		return nil
	}
	w, err := campaign.NewWindow(c.ScheduleStartTime, c.ScheduleEndTime, c.Timezone, days)
	if err != nil {
		return nil
	}
	var due, backoff time.Time
	if c.PendingLeads == c.RetriesScheduled && c.NextRetryAt != nil {
		due = *c.NextRetryAt // only retries are left
	}
	if c.BackoffUntil != nil {
		backoff = *c.BackoffUntil
	}
	t := campaign.NextDial(w, now, due, backoff)
	if t.IsZero() {
		return nil
	}
	t = t.UTC().Truncate(time.Millisecond)
	return &t
}

// campaignReadOnly lists the answered members a create or PATCH ignores, so
// a campaign read back can be sent again.
func campaignReadOnly() []string {
	return []string{"total_leads", "completed_leads", "failed_leads", "pending_leads", "calling_leads", "skipped_leads",
		"retries_scheduled", "next_retry_at", "backoff_until", "next_dial_at", "status_reason", "progress"}
}

func leadObject(l *store.Lead) map[string]any {
	return map[string]any{
		"id": l.ID, "campaign_id": l.CampaignID, "phone_number": l.PhoneNumber, "name": l.Name, "variables": l.Variables,
		"status": l.Status.String(), "call_id": l.CallID, "attempts": l.Attempts, "last_attempt_at": tsPtr(l.LastAttemptAt),
		"next_attempt_at": tsPtr(l.NextAttemptAt), "last_outcome": l.LastOutcome,
		"created_at": ts(l.CreatedAt), "updated_at": ts(l.UpdatedAt),
	}
}

// readCampaign applies campaign fields of a create or PATCH body to c.
func readCampaign(fs *fields, c *store.Campaign, create bool) {
	fs.alias("assistant_id", "agent_id")
	if v, ok := fs.str("name", create); ok {
		c.Name = v
	}
	if create {
		id, null := fs.refID("agent_id")
		_, sent := fs.obj["agent_id"]
		switch {
		case id != nil:
			c.AgentID = *id
		case !sent || null:
			fs.f.Missing("agent_id")
		}
	} else if _, sent := fs.obj["agent_id"]; sent {
		fs.seen["agent_id"] = true
		fs.f.Invalidf("agent_id", "cannot be changed; create a new campaign for another assistant")
	}
	if v, set := fs.nullableStr("system_message_template"); set {
		c.SystemMessageTemplate = v
	}
	// Any two times make a window: an end before the start crosses midnight
	// (22:00 → 02:00 the next day), an end equal to the start is all day.
	for _, t := range []struct {
		key string
		dst *string
	}{{"schedule_start_time", &c.ScheduleStartTime}, {"schedule_end_time", &c.ScheduleEndTime}} {
		if v, ok := fs.str(t.key, false); ok {
			clock, valid := campaign.ParseClock(v)
			if !valid {
				fs.f.Invalidf(t.key, "must be a time of day as HH:MM:SS or HH:MM (got %q)", v)
			}
			*t.dst = clock
		}
	}
	if v, ok := fs.str("timezone", false); ok {
		if !campaign.ValidTimezone(v) {
			fs.f.Invalidf("timezone", "must be an IANA time zone such as Europe/Amsterdam (got %q)", v)
		}
		c.Timezone = v
	}
	readPacing(fs, c)
}

// readStatus reads a requested status; ok is false when none was sent.
func readStatus(fs *fields) (campaign.Status, bool) {
	v, ok := fs.str("status", false)
	if !ok {
		return campaign.StatusUnknown, false
	}
	st, known := campaign.ParseStatus(v)
	if !known {
		fs.f.Invalidf("status", "must be one of draft, scheduled, paused, cancelled (got %q)", v)
		return campaign.StatusUnknown, false
	}
	return st, true
}

// checkCanSchedule enforces the prerequisites of §7.15 before calling starts:
// an active assistant and an active number with a SIP trunk for dialing.
func (s *Server) checkCanSchedule(ctx context.Context, org, agentID string) error {
	a, err := s.db.GetDoc(ctx, store.Assistants, org, agentID)
	if err != nil {
		if fault.KindOf(err) == fault.NotFound {
			return fault.Invalidf("status", "cannot be scheduled: the campaign's assistant no longer exists")
		}
		return err
	}
	if !a.Active {
		return fault.Invalidf("status", "cannot be scheduled: assistant %q is not active", a.Name)
	}
	nums, err := s.db.ListNumbers(ctx, org)
	if err != nil {
		return err
	}
	for _, n := range nums {
		if n.IsActive && n.TransferTrunkID != nil {
			return nil
		}
	}
	return fault.Invalidf("status", "cannot be scheduled: no active phone number has a SIP trunk for outbound dialing (PATCH /numbers/{id} with transfer_trunk_id)")
}

func readLead(obj object, at string) (store.Lead, error) {
	fs := newFields(obj)
	var l store.Lead
	if v, ok := fs.str("phone_number", true); ok {
		if !validE164(v) {
			fs.f.Invalidf("phone_number", "must be an E.164 number such as +31612345678 (got %q)", v)
		}
		l.PhoneNumber = v
	}
	l.Name, _ = fs.nullableStr("name")
	if raw, ok := fs.raw("variables"); ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &l.Variables); err != nil {
			fs.f.Invalidf("variables", "must be an object of string values")
		}
	}
	fs.unknown()
	if err := fs.err(); err != nil {
		if at == "" {
			return l, err
		}
		e, _ := fault.As(err)
		for i := range e.Details {
			e.Details[i] = at + "." + e.Details[i]
		}
		e.Field, e.Message = at+"."+e.Field, at+"."+e.Message
		return l, e
	}
	return l, nil
}

func (s *Server) listCampaigns(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r, defaultLimit, maxLimit)
	if err != nil {
		return err
	}
	cs, total, err := s.db.ListCampaignsPage(r.Context(), orgID(r), p)
	if err != nil {
		return err
	}
	out := make([]any, len(cs))
	for i := range cs {
		out[i] = campaignObject(&cs[i], s.now())
	}
	return reply(w, http.StatusOK, map[string]any{"campaigns": out, "pagination": pagination(p, total)})
}

func (s *Server) createCampaign(w http.ResponseWriter, r *http.Request) error {
	obj, err := s.readObject(w, r, false)
	if err != nil {
		return err
	}
	org := orgID(r)
	c := &store.Campaign{OrgID: org, Status: campaign.Draft, ScheduleStartTime: campaign.DefaultStart, ScheduleEndTime: campaign.DefaultEnd, Timezone: campaign.DefaultTimezone}
	fs := newFields(obj, campaignReadOnly()...)
	readCampaign(fs, c, true)
	if st, ok := readStatus(fs); ok {
		if err := campaign.CheckTransition(campaign.Draft, st); err != nil {
			fs.f.Merge(err)
		}
		c.Status = st
	}
	var leads []store.Lead
	if raw, ok := fs.raw("leads"); ok && !isNull(raw) {
		var items []object
		if err := json.Unmarshal(raw, &items); err != nil {
			fs.f.Invalidf("leads", "must be an array of lead objects")
		}
		if len(items) > 10000 {
			fs.f.Invalidf("leads", "may hold at most 10000 leads per request (got %d)", len(items))
		}
		for i, it := range items {
			l, err := readLead(it, "leads["+strconv.Itoa(i)+"]")
			fs.f.Merge(err)
			leads = append(leads, l)
		}
	}
	fs.unknown()
	if err := fs.err(); err != nil {
		return err
	}
	if c.Status == campaign.Scheduled && s.assistantExists(r, c.AgentID) {
		if err := s.checkCanSchedule(r.Context(), org, c.AgentID); err != nil {
			return err
		}
	}
	if c.Status == campaign.Cancelled {
		return fault.Invalidf("status", "a new campaign cannot start as cancelled")
	}
	if err := s.db.CreateCampaign(r.Context(), c, leads); err != nil {
		return err
	}
	got, err := s.db.GetCampaign(r.Context(), org, c.ID)
	if err != nil {
		return err
	}
	return reply(w, http.StatusCreated, map[string]any{"campaign": campaignObject(got, s.now())})
}

// assistantExists lets the store report an unknown agent_id on create (as a
// reference error naming agent_id) rather than the scheduling check.
func (s *Server) assistantExists(r *http.Request, id string) bool {
	ok, err := s.db.DocExists(r.Context(), store.Assistants, orgID(r), id)
	return err == nil && ok
}

func (s *Server) getCampaign(w http.ResponseWriter, r *http.Request) error {
	id, err := docID(r, "campaign")
	if err != nil {
		return err
	}
	c, err := s.db.GetCampaign(r.Context(), orgID(r), id)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, map[string]any{"campaign": campaignObject(c, s.now())})
}

func (s *Server) updateCampaign(w http.ResponseWriter, r *http.Request) error {
	id, err := docID(r, "campaign")
	if err != nil {
		return err
	}
	obj, err := s.readObject(w, r, false)
	if err != nil {
		return err
	}
	org := orgID(r)
	c, err := s.db.UpdateCampaign(r.Context(), org, id, func(c *store.Campaign) error {
		if err := campaign.CheckEditable(c.Status); err != nil {
			return err
		}
		fs := newFields(obj, campaignReadOnly()...)
		readCampaign(fs, c, false)
		st, changed := readStatus(fs)
		fs.unknown()
		if err := fs.err(); err != nil {
			return err
		}
		if changed && st != c.Status {
			if err := campaign.CheckTransition(c.Status, st); err != nil {
				return err
			}
			if st == campaign.Scheduled {
				if err := s.checkCanSchedule(r.Context(), org, c.AgentID); err != nil {
					return err
				}
			}
			c.Status = st
		}
		return nil
	})
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, map[string]any{"campaign": campaignObject(c, s.now())})
}

func (s *Server) deleteCampaign(w http.ResponseWriter, r *http.Request) error {
	id, err := docID(r, "campaign")
	if err != nil {
		return err
	}
	if err := s.db.DeleteCampaign(r.Context(), orgID(r), id); err != nil {
		return err
	}
	return reply(w, http.StatusOK, success)
}

func (s *Server) listLeads(w http.ResponseWriter, r *http.Request) error {
	id, err := docID(r, "campaign")
	if err != nil {
		return err
	}
	p, err := page(r, 1000, 10000)
	if err != nil {
		return err
	}
	leads, total, err := s.db.ListLeads(r.Context(), orgID(r), id, p)
	if err != nil {
		return err
	}
	out := make([]any, len(leads))
	for i := range leads {
		out[i] = leadObject(&leads[i])
	}
	return reply(w, http.StatusOK, map[string]any{"leads": out, "pagination": pagination(p, total)})
}

func (s *Server) addLead(w http.ResponseWriter, r *http.Request) error {
	id, err := docID(r, "campaign")
	if err != nil {
		return err
	}
	obj, err := s.readObject(w, r, false)
	if err != nil {
		return err
	}
	if _, err := s.db.GetCampaign(r.Context(), orgID(r), id); err != nil {
		return err
	}
	l, err := readLead(obj, "")
	if err != nil {
		return err
	}
	if err := s.db.AddLead(r.Context(), orgID(r), id, &l); err != nil {
		return err
	}
	return reply(w, http.StatusCreated, map[string]any{"lead": leadObject(&l)})
}

func (s *Server) deleteLead(w http.ResponseWriter, r *http.Request) error {
	id, err := docID(r, "campaign")
	if err != nil {
		return err
	}
	leadID, err := pathID(r, "leadId")
	if err != nil {
		return err
	}
	if !uuidRE.MatchString(leadID) {
		return fault.NotFoundf("lead %s not found", leadID)
	}
	if err := s.db.DeleteLead(r.Context(), orgID(r), id, leadID); err != nil {
		return err
	}
	return reply(w, http.StatusOK, success)
}
