package v1alpha1_test

import (
	"encoding/json"
	"reflect"
	"testing"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
)

func TestParamValueJSON(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		want     connectorsv1alpha1.ParamValue
		wantJSON string
	}{
		{
			name:     "a string decodes as StringVal and encodes back as a bare string",
			in:       `"org/repo.git"`,
			want:     connectorsv1alpha1.ParamValue{Type: connectorsv1alpha1.ParamTypeString, StringVal: "org/repo.git"},
			wantJSON: `"org/repo.git"`,
		},
		{
			name:     "a list decodes as ArrayVal",
			in:       `["a", "b"]`,
			want:     connectorsv1alpha1.ParamValue{Type: connectorsv1alpha1.ParamTypeArray, ArrayVal: []string{"a", "b"}},
			wantJSON: `["a","b"]`,
		},
		{
			name:     "a map decodes as ObjectVal",
			in:       `{"k": "v"}`,
			want:     connectorsv1alpha1.ParamValue{Type: connectorsv1alpha1.ParamTypeObject, ObjectVal: map[string]string{"k": "v"}},
			wantJSON: `{"k":"v"}`,
		},
		{
			name:     "the legacy struct form of a string (controller-gen v0.16.1 CRDs) decodes as that string",
			in:       `{"type": "string", "stringVal": "true"}`,
			want:     connectorsv1alpha1.ParamValue{Type: connectorsv1alpha1.ParamTypeString, StringVal: "true"},
			wantJSON: `"true"`,
		},
		{
			name:     "the legacy struct form of a list decodes as that list",
			in:       `{"type": "array", "arrayVal": ["a", "b"], "stringVal": ""}`,
			want:     connectorsv1alpha1.ParamValue{Type: connectorsv1alpha1.ParamTypeArray, ArrayVal: []string{"a", "b"}},
			wantJSON: `["a","b"]`,
		},
		{
			name:     "the legacy struct form of a map decodes as that map",
			in:       `{"type": "object", "objectVal": {"k": "v"}}`,
			want:     connectorsv1alpha1.ParamValue{Type: connectorsv1alpha1.ParamTypeObject, ObjectVal: map[string]string{"k": "v"}},
			wantJSON: `{"k":"v"}`,
		},
		{
			name:     "a map with a key type that is not a legacy form stays a map",
			in:       `{"type": "maven", "url": "https://repo"}`,
			want:     connectorsv1alpha1.ParamValue{Type: connectorsv1alpha1.ParamTypeObject, ObjectVal: map[string]string{"type": "maven", "url": "https://repo"}},
			wantJSON: `{"type":"maven","url":"https://repo"}`,
		},
		{
			name:     "an unquoted YAML boolean is kept as its text",
			in:       `false`,
			want:     connectorsv1alpha1.ParamValue{Type: connectorsv1alpha1.ParamTypeString, StringVal: "false"},
			wantJSON: `"false"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got connectorsv1alpha1.ParamValue
			if err := json.Unmarshal([]byte(tt.in), &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decoded %+v, want %+v", got, tt.want)
			}
			b, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.wantJSON {
				t.Errorf("encoded %s, want %s", b, tt.wantJSON)
			}
		})
	}
}

func TestParamValuesThatAreNotStringsAreKeptAsTheirTextRatherThanRefused(t *testing.T) {
	// The CRD stores any JSON; a value Go refused would make every list of
	// connectors unreadable.
	for in, want := range map[string]connectorsv1alpha1.ParamValue{
		`[1, {"a": 2}]`:             {Type: connectorsv1alpha1.ParamTypeArray, ArrayVal: []string{"1", `{"a": 2}`}},
		`{"k": 1, "n": {"x": "y"}}`: {Type: connectorsv1alpha1.ParamTypeObject, ObjectVal: map[string]string{"k": "1", "n": `{"x": "y"}`}},
		`[]`:                        {Type: connectorsv1alpha1.ParamTypeArray, ArrayVal: []string{}},
	} {
		var got connectorsv1alpha1.ParamValue
		if err := json.Unmarshal([]byte(in), &got); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s decoded %+v, want %+v", in, got, want)
		}
	}
	var v connectorsv1alpha1.ParamValue
	if err := json.Unmarshal([]byte(`[1,`), &v); err == nil {
		t.Error("invalid JSON decoded")
	}
}
