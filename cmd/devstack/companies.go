package main

// This file holds the made-up customers of the sample data: the company
// type, the tables of industries, countries, places and people it is drawn
// from, and the progress notes and lead sources of its payloads.

import (
	"strings"
	"time"

	"github.com/pcsync/pcsync/partnercentral/types"
)

// company is one customer, with the engagement the partner has for it.
type company struct {
	eng      string
	name     string
	short    string // for the engagement title
	slug     string
	industry string
	idea     projectIdea
	country  string
	city     place
	segment  string
	contact  person
	phone    string
	seededAt time.Time
}

func (c *company) title() string {
	t := c.short + ": " + c.idea.short
	if r := []rune(t); len(r) > 40 {
		t = strings.TrimSpace(string(r[:40]))
	}
	return t
}

type projectIdea struct {
	short, title, problem, usecase string
}

type place struct {
	city, postal, state string
}

type person struct {
	first, last, title string
}

type industryProfile struct {
	industry string
	suffixes []string
	ideas    []projectIdea
}

// The industries are the model's own enum values.
var industries = []industryProfile{
	{string(types.IndustrySoftwareInternet), []string{"Labs", "Software", "Cloud"}, []projectIdea{
		{"SaaS on EKS", "Multi-tenant SaaS platform on Amazon EKS", "Runs its SaaS product on self-managed Kubernetes in a colocation facility and spends two engineers on upgrades alone.", "Modernization"},
		{"Serverless APIs", "Public API rebuilt on AWS Lambda", "Its public API falls over at every product launch; traffic is ten times the daily average for a few hours.", "Application development"},
	}},
	{string(types.IndustryHealthcare), []string{"Health", "Clinics", "Care"}, []projectIdea{
		{"Patient data lake", "HIPAA-eligible patient data lake", "Patient records sit in four EHR systems; analysts wait weeks for a combined extract.", "Analytics"},
		{"Imaging archive", "Medical imaging archive on Amazon S3", "The on-premises PACS archive is full and the storage contract ends next year.", "Storage"},
	}},
	{string(types.IndustryFinancialServices), []string{"Capital", "Bank", "Finance"}, []projectIdea{
		{"Core banking", "Core banking modernization", "Batch jobs of the mainframe core run past the morning cut-off twice a month.", "Modernization"},
		{"Fraud detection", "Real-time card fraud detection", "Fraud is found a day after the transaction, when the nightly rules engine runs.", "Machine learning"},
	}},
	{string(types.IndustryRetail), []string{"Outfitters", "Markets", "Stores"}, []projectIdea{
		{"Peak-ready shop", "E-commerce platform ready for peak season", "The web shop slowed to a crawl during last year's holiday sale and lost an estimated 8% of orders.", "Migration"},
		{"Demand forecast", "Store demand forecasting", "Stores order stock from spreadsheets; overstock and stock-outs both cost margin.", "Machine learning"},
	}},
	{string(types.IndustryManufacturing), []string{"Industries", "Works", "Components"}, []projectIdea{
		{"Predictive upkeep", "IoT predictive maintenance for the assembly lines", "Unplanned stops of the press lines cost several hours of output each month.", "IoT"},
		{"SAP on AWS", "SAP S/4HANA migration", "The SAP landscape runs on hardware that leaves support at the end of the year.", "Migration"},
	}},
	{string(types.IndustryMediaEntertainment), []string{"Studios", "Media", "Pictures"}, []projectIdea{
		{"Video pipeline", "Elastic video transcoding pipeline", "Transcoding new releases takes days on a fixed render farm that sits idle between releases.", "Media"},
	}},
	{string(types.IndustryTransportationLogistics), []string{"Logistics", "Freight", "Transport"}, []projectIdea{
		{"Route planning", "Route optimization with machine learning", "Dispatchers plan routes by hand every morning; trucks run a fifth of their miles empty.", "Machine learning"},
	}},
	{string(types.IndustryEducation), []string{"Learning", "Academy", "University"}, []projectIdea{
		{"LMS migration", "Learning platform migration", "The learning platform runs on two aging servers that failed during the last exam week.", "Migration"},
	}},
	{string(types.IndustryEnergyPowerUtilities), []string{"Energy", "Power", "Utilities"}, []projectIdea{
		{"Smart meters", "Smart meter data analytics", "Readings from 2 million smart meters arrive every 15 minutes and the warehouse cannot keep up.", "Analytics"},
	}},
	{string(types.IndustryTravel), []string{"Travel", "Journeys", "Tours"}, []projectIdea{
		{"Booking engine", "Booking engine modernization", "The booking engine is a monolith that only two people still dare to deploy.", "Modernization"},
	}},
	{string(types.IndustryGaming), []string{"Games", "Interactive", "Play"}, []projectIdea{
		{"Game backend", "Game backend on Amazon GameLift", "Matchmaking servers are sized for launch day and cost a fortune the rest of the year.", "Gaming"},
	}},
	{string(types.IndustryLifeSciences), []string{"Biosciences", "Therapeutics", "Genomics"}, []projectIdea{
		{"Genomics pipeline", "Genomics pipeline on AWS Batch", "Sequencing runs wait a week in the queue of the shared on-premises cluster.", "HPC"},
	}},
	{string(types.IndustryAgriculture), []string{"Farms", "AgriTech", "Growers"}, []projectIdea{
		{"Yield forecast", "Crop yield forecasting", "Harvest estimates come from field visits and miss by as much as 30%.", "Machine learning"},
	}},
	{string(types.IndustryTelecommunications), []string{"Telecom", "Networks", "Connect"}, []projectIdea{
		{"Network analytics", "Network telemetry analytics", "Outages are found by customer calls before the network team sees them.", "Analytics"},
	}},
}

type country struct {
	code    string
	weight  int
	legal   []string
	stems   []string
	places  []place
	people  []person
	segment []string
}

// Stems are invented; websites are under the reserved .example domain and
// e-mail addresses under example.com, so nothing here is anyone's.
var countries = []country{
	{"US", 40, []string{"Inc.", "LLC", "Corp."},
		[]string{"Bluefin", "Kestrel", "Harborview", "Ironbark", "Larkspur", "Meridian", "Oakridge", "Pinecrest", "Redwood", "Riverstone", "Tidewater", "Westbrook"},
		[]place{{"Seattle", "98101", "Washington"}, {"Austin", "78701", "Texas"}, {"Denver", "80202", "Colorado"}, {"Boston", "02110", "Massachusetts"}, {"Chicago", "60601", "Illinois"}, {"Atlanta", "30303", "Georgia"}},
		[]person{{"Jordan", "Lee", "Head of IT"}, {"Maria", "Garcia", "VP Engineering"}, {"Sam", "Patel", "Cloud Architect"}, {"Avery", "Johnson", "CTO"}, {"Chris", "Nguyen", "Director of Operations"}},
		[]string{"Enterprise", "Large", "Medium"}},
	{"DE", 12, []string{"GmbH", "AG"},
		[]string{"Nordlicht", "Rheintal", "Elbtal", "Bergquell", "Waldhof", "Sonnenfeld"},
		[]place{{"Berlin", "10115", ""}, {"Munich", "80331", ""}, {"Hamburg", "20095", ""}, {"Stuttgart", "70173", ""}},
		[]person{{"Lena", "Fischer", "Leiterin IT"}, {"Jonas", "Weber", "CIO"}, {"Anna", "Schneider", "Cloud-Architektin"}},
		[]string{"Enterprise", "Large", "Medium"}},
	{"JP", 12, []string{"K.K.", "Co., Ltd."},
		[]string{"Sakura", "Fujimi", "Hoshino", "Midori", "Kawase", "Aozora"},
		[]place{{"Tokyo", "100-0005", ""}, {"Osaka", "530-0001", ""}, {"Nagoya", "450-0002", ""}},
		[]person{{"Yuki", "Tanaka", "General Manager, IT"}, {"Kenji", "Sato", "CTO"}, {"Haruka", "Suzuki", "Infrastructure Lead"}},
		[]string{"Enterprise", "Large"}},
	{"GB", 10, []string{"Ltd", "plc"},
		[]string{"Thamesgate", "Ashdown", "Kingsmere", "Fenwick"},
		[]place{{"London", "EC2A 4NE", ""}, {"Manchester", "M1 1AE", ""}, {"Edinburgh", "EH1 1YZ", ""}},
		[]person{{"Oliver", "Bennett", "Head of Platform"}, {"Amelia", "Clarke", "IT Director"}},
		[]string{"Large", "Medium", "Small"}},
	{"FR", 6, []string{"SAS", "SA"},
		[]string{"Belvent", "Clairmont", "Rivesaltes"},
		[]place{{"Paris", "75002", ""}, {"Lyon", "69002", ""}},
		[]person{{"Camille", "Martin", "DSI"}, {"Louis", "Bernard", "Architecte cloud"}},
		[]string{"Large", "Medium"}},
	{"CA", 5, []string{"Inc.", "Ltd."},
		[]string{"Maplecrest", "Northshore", "Cedarbrook"},
		[]place{{"Toronto", "M5H 2N2", ""}, {"Vancouver", "V6B 1A1", ""}},
		[]person{{"Emma", "Tremblay", "VP Technology"}, {"Liam", "Roy", "Cloud Lead"}},
		[]string{"Medium", "Small"}},
	{"AU", 5, []string{"Pty Ltd"},
		[]string{"Wattle", "Southern Cross", "Coral Bay"},
		[]place{{"Sydney", "2000", ""}, {"Melbourne", "3000", ""}},
		[]person{{"Charlotte", "Wilson", "Head of Technology"}, {"Jack", "Taylor", "Solutions Architect"}},
		[]string{"Medium", "Small"}},
	{"IN", 5, []string{"Pvt Ltd"},
		[]string{"Sahyadri", "Kaveri", "Nilgiri"},
		[]place{{"Bengaluru", "560001", ""}, {"Pune", "411001", ""}},
		[]person{{"Priya", "Sharma", "VP Engineering"}, {"Arjun", "Iyer", "Head of Cloud"}},
		[]string{"Large", "Medium"}},
	{"BR", 5, []string{"Ltda."},
		[]string{"Ipanema", "Serra Azul", "Vale Verde"},
		[]place{{"Sao Paulo", "01310-100", ""}, {"Curitiba", "80010-000", ""}},
		[]person{{"Lucas", "Oliveira", "Diretor de TI"}, {"Beatriz", "Santos", "Arquiteta de nuvem"}},
		[]string{"Large", "Medium", "Micro"}},
}

// Notes a sales rep adds to the business problem as a deal moves on.
var progressNotes = []string{
	"Budget approved for next quarter.",
	"Security review passed.",
	"Pilot signed off by the CTO.",
	"Proof of concept scheduled with the AWS account team.",
}

var leadSources = []struct{ typ, id, name, action string }{
	{"Event", "evt-summit-2026", "AWS Summit", "Visited the booth and asked for a follow-up"},
	{"Website", "form-cloud-assessment", "Cloud readiness assessment form", "Requested a callback"},
	{"Campaign", "cmp-modernize-q3", "Modernization webinar series", "Downloaded the migration guide"},
	{"Referral", "ref-aws-am", "Referral from the AWS account manager", "Booked an architecture review"},
}
