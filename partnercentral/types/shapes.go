package types

// CustomerProjectsContext is the CustomerProject member of an engagement
// context: the end customer and the project the engagement is about.
type CustomerProjectsContext struct {
	Customer *EngagementCustomer               `json:"Customer,omitempty"`
	Project  *EngagementCustomerProjectDetails `json:"Project,omitempty"`
}

// EngagementCustomer describes the end customer of a customer project.
type EngagementCustomer struct {
	Industry    Industry    `json:"Industry,omitempty"`
	CompanyName *string     `json:"CompanyName,omitempty"`
	WebsiteUrl  *string     `json:"WebsiteUrl,omitempty"`
	CountryCode CountryCode `json:"CountryCode,omitempty"`
}

// EngagementCustomerProjectDetails describes the project of a customer
// project context.
type EngagementCustomerProjectDetails struct {
	Title                *string `json:"Title,omitempty"`
	BusinessProblem      *string `json:"BusinessProblem,omitempty"`
	TargetCompletionDate *string `json:"TargetCompletionDate,omitempty"`
}

// UpdateLeadContext is the Lead member of an UpdateEngagementContext payload.
// Interaction, when set, is added to the lead's interactions.
type UpdateLeadContext struct {
	QualificationStatus *string          `json:"QualificationStatus,omitempty"`
	Customer            *LeadCustomer    `json:"Customer,omitempty"`
	Interaction         *LeadInteraction `json:"Interaction,omitempty"`
}

// LeadContext is the Lead member of an engagement context as GetEngagement
// returns it: the lead with all its interactions.
type LeadContext struct {
	QualificationStatus *string           `json:"QualificationStatus,omitempty"`
	Customer            *LeadCustomer     `json:"Customer,omitempty"`
	Interactions        []LeadInteraction `json:"Interactions,omitempty"`
}

// LeadCustomer describes the customer of a lead.
type LeadCustomer struct {
	Industry      Industry        `json:"Industry,omitempty"`
	CompanyName   *string         `json:"CompanyName,omitempty"`
	WebsiteUrl    *string         `json:"WebsiteUrl,omitempty"`
	Address       *AddressSummary `json:"Address,omitempty"`
	AwsMaturity   *string         `json:"AwsMaturity,omitempty"`
	MarketSegment MarketSegment   `json:"MarketSegment,omitempty"`
}

// AddressSummary is the subset of an address a lead carries.
type AddressSummary struct {
	City          *string     `json:"City,omitempty"`
	PostalCode    *string     `json:"PostalCode,omitempty"`
	StateOrRegion *string     `json:"StateOrRegion,omitempty"`
	CountryCode   CountryCode `json:"CountryCode,omitempty"`
}

// LeadInteraction is one interaction of a lead with the partner.
type LeadInteraction struct {
	SourceType      *string      `json:"SourceType,omitempty"`
	SourceId        *string      `json:"SourceId,omitempty"`
	SourceName      *string      `json:"SourceName,omitempty"`
	Usecase         *string      `json:"Usecase,omitempty"`
	InteractionDate *string      `json:"InteractionDate,omitempty"`
	CustomerAction  *string      `json:"CustomerAction,omitempty"`
	BusinessProblem *string      `json:"BusinessProblem,omitempty"`
	Contact         *LeadContact `json:"Contact,omitempty"`
}

// LeadContact is the person behind a lead interaction.
type LeadContact struct {
	BusinessTitle *string `json:"BusinessTitle,omitempty"`
	Email         *string `json:"Email,omitempty"`
	FirstName     *string `json:"FirstName,omitempty"`
	LastName      *string `json:"LastName,omitempty"`
	Phone         *string `json:"Phone,omitempty"`
}

// EngagementContextDetails is one context of an engagement as GetEngagement
// returns it.
type EngagementContextDetails struct {
	Id      *string                  `json:"Id,omitempty"`
	Type    EngagementContextType    `json:"Type,omitempty"`
	Payload EngagementContextPayload `json:"Payload,omitempty"`
}
