package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The model stays outside the repository, beside it in ../shared/api.
const modelPath = "../../../shared/api/partnercentral-selling-2022-07-26.json"

func TestGeneratedFilesMatchModel(t *testing.T) {
	raw, err := os.ReadFile(modelPath)
	if os.IsNotExist(err) {
		t.Skipf("model not found at %s; the committed tables cannot be compared", modelPath)
	}
	if err != nil {
		t.Fatal(err)
	}
	files, err := Generate(raw)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join("../..", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is out of date with the model: run go generate ./partnercentral/schema", name)
		}
	}
}

func TestGoName(t *testing.T) {
	for in, want := range map[string]string{"AEROSPACE_SATELLITE": "AerospaceSatellite", "US": "Us", "CUSTOMER_PROJECT": "CustomerProject"} {
		if got := goName(in); got != want {
			t.Errorf("goName(%q): got %q, want %q", in, got, want)
		}
	}
}
