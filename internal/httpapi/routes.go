package httpapi

import (
	"net/http"

	"github.com/parley-voice/parley/internal/store"
)

// route is one served operation. The OpenAPI document lists the same set;
// TestOpenAPIMatchesRoutes keeps the two in step.
type route struct {
	method  string
	pattern string // ServeMux pattern without the method
	public  bool   // served without an API key
	signed  bool   // served with an API key, or a valid signed link instead
	handler http.Handler
}

const v1 = "/api/v1"

// Route is a served operation, for tests and tooling.
type Route struct {
	Method  string
	Pattern string // e.g. "/api/v1/assistants/{id}"
	Public  bool
}

// Routes lists every served operation.
func (s *Server) Routes() []Route {
	out := make([]Route, len(s.routes))
	for i, rt := range s.routes {
		out[i] = Route{Method: rt.method, Pattern: rt.pattern, Public: rt.public}
	}
	return out
}

// routeTable maps the whole API surface in one place.
func (s *Server) routeTable() []route {
	rs := []route{
		{method: "GET", pattern: v1 + "/health", public: true, handler: handler(s.health)},
		{method: "GET", pattern: "/api/openapi.json", public: true, handler: handler(s.openAPI)},
	}
	add := func(method, pattern string, h handler) {
		rs = append(rs, route{method: method, pattern: v1 + pattern, handler: h})
	}
	crud := func(base string, res docResource, list handler) {
		if list == nil {
			list = s.listDocs(res)
		}
		add("GET", base, list)
		add("POST", base, s.createDoc(res, nil))
		add("GET", base+"/{id}", s.getDoc(res))
		add("PATCH", base+"/{id}", s.updateDoc(res))
		add("DELETE", base+"/{id}", s.deleteDoc(res.kind))
	}
	crud("/assistants", s.assistants(), nil)
	crud("/agents", s.assistants(), nil)
	crud("/tool-templates", s.toolTemplates(), nil)
	crud("/mcp-servers", s.mcpServers(), nil)
	add("POST", "/mcp-servers/{id}/test", s.testMCPServer)
	crud("/workflows", s.workflows(), s.listWorkflows)

	analysis := s.analysisTemplates()
	add("GET", "/analysis-templates", s.listAnalysisTemplates)
	add("POST", "/analysis-templates", s.createDoc(analysis, nil))
	add("GET", "/analysis-templates/{id}", s.getDoc(analysis))
	add("PATCH", "/analysis-templates/{id}", s.updateDoc(analysis))
	add("DELETE", "/analysis-templates/{id}", s.deleteDoc(store.AnalysisTemplates))

	add("GET", "/numbers", s.listNumbers)
	add("POST", "/numbers", s.createNumber)
	add("GET", "/numbers/{id}", s.getNumber)
	add("PATCH", "/numbers/{id}", s.updateNumber)
	add("DELETE", "/numbers/{id}", s.deleteNumber)

	trunks := s.trunks()
	add("GET", "/sip-trunks", s.listDocs(trunks))
	add("POST", "/sip-trunks", s.createDoc(trunks, func(_ *store.Doc, out map[string]any) { out["sip_trunk"] = out["trunk"] }))
	add("GET", "/sip-trunks/{id}", s.getDoc(trunks))
	add("DELETE", "/sip-trunks/{id}", s.deleteDoc(store.SIPTrunks))

	add("GET", "/voices", s.listVoices)

	add("GET", "/byok", s.getBYOK)
	add("POST", "/byok", s.putBYOK)
	add("DELETE", "/byok", s.deleteBYOK)
	add("GET", "/byok/config", s.getBYOKConfig)
	add("POST", "/byok/config", s.updateBYOKConfig)

	add("GET", "/domains", s.domainOp(Domains.Get, false))
	add("POST", "/domains", s.createDomain)
	add("DELETE", "/domains", s.deleteDomain)
	add("GET", "/domains/sync", s.listResendDomains)
	add("POST", "/domains/sync", s.selectResendDomain)
	add("POST", "/domains/verify", s.domainOp(Domains.Verify, true))
	add("POST", "/domains/refresh", s.domainOp(Domains.Refresh, true))

	add("GET", "/organizations", s.getOrganization)
	add("POST", "/organizations", s.createOrganization)
	add("PATCH", "/organizations", s.updateOrganization)
	add("GET", "/account", s.getAccount)

	add("GET", "/campaigns", s.listCampaigns)
	add("POST", "/campaigns", s.createCampaign)
	add("GET", "/campaigns/{id}", s.getCampaign)
	add("PATCH", "/campaigns/{id}", s.updateCampaign)
	add("DELETE", "/campaigns/{id}", s.deleteCampaign)
	add("GET", "/campaigns/{id}/leads", s.listLeads)
	add("POST", "/campaigns/{id}/leads", s.addLead)
	add("DELETE", "/campaigns/{id}/leads/{leadId}", s.deleteLead)

	add("GET", "/calls", s.listCalls)
	add("POST", "/calls/outbound", s.outboundCall)
	add("GET", "/calls/{id}", s.getCall)
	add("POST", "/calls/{id}/control", s.controlCall)
	rs = append(rs, route{method: "GET", pattern: v1 + "/calls/{id}/recording", signed: true, handler: handler(s.getRecording)})
	add("GET", "/usage", s.listUsage)

	add("GET", "/webhook-deliveries", s.listWebhookDeliveries)
	add("GET", "/webhook-events", s.listWebhookEvents)
	return rs
}
