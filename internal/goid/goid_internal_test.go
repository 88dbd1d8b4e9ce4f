package goid

import "testing"

func TestParseHeader(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"goroutine 1 [running]:\nmain.main()", 1, true},
		{"goroutine 123 [running]:", 123, true},
		{"goroutine 42 gp=0xc000002380 m=0 mp=0x5a1b20 [running]:", 42, true},
		{"goroutine 9223372036854775807 [running]:", 1<<63 - 1, true},
		{"goroutine 9223372036854775808 [running]:", 0, false}, // overflow
		{"goroutine 99999999999999999999 [running]:", 0, false},
		{"goroutine 123", 0, false}, // truncated: digits may be incomplete
		{"goroutine  [running]:", 0, false},
		{"goroutine 0 [running]:", 0, false},
		{"goroutine -1 [running]:", 0, false},
		{"Goroutine 1 [running]:", 0, false},
		{"goroutine", 0, false},
		{"", 0, false},
	} {
		got, ok := parseHeader([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseHeader(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func mkSamples(ids ...uint64) []sample {
	s := make([]sample, len(ids))
	for i, id := range ids {
		s[i].id = id
		for w := range s[i].words {
			s[i].words[w] = uint64(w) * 1000 // unrelated, identical in all samples
		}
	}
	return s
}

func TestFindOffset(t *testing.T) {
	// Unique match.
	s := mkSamples(21, 22, 23, 24)
	for i := range s {
		s[i].words[19] = s[i].id
	}
	s[0].words[5] = s[0].id // coincidence in one sample only: ignored
	if off, ok := findOffset(s); !ok || off != 19*8 {
		t.Errorf("unique: got %d, %v; want %d, true", off, ok, 19*8)
	}

	// Two fields that track the id: ambiguous, refuse.
	for i := range s {
		s[i].words[30] = s[i].id
	}
	if off, ok := findOffset(s); ok {
		t.Errorf("ambiguous: got %d, true; want failure", off)
	}

	// No match.
	if off, ok := findOffset(mkSamples(21, 22, 23)); ok {
		t.Errorf("no match: got %d, true; want failure", off)
	}

	// Repeated id: a constant field could match, refuse.
	s = mkSamples(7000, 7000, 7000)
	if off, ok := findOffset(s); ok {
		t.Errorf("repeated ids: got %d, true; want failure", off)
	}

	// A failed sample (id 0) or too few samples: refuse.
	s = mkSamples(0, 22)
	for i := range s {
		s[i].words[19] = s[i].id
	}
	if _, ok := findOffset(s); ok {
		t.Error("zero id accepted")
	}
	if _, ok := findOffset(s[1:]); ok {
		t.Error("single sample accepted")
	}
	if _, ok := findOffset(nil); ok {
		t.Error("no samples accepted")
	}
}

// TestCalibrationSamples checks the real samples directly: exactly the
// calibrated word holds the id in every sample.
func TestCalibrationSamples(t *testing.T) {
	if !haveGetg {
		t.Skip("no assembly getg in this build")
	}
	samples := collectSamples()
	off, ok := findOffset(samples)
	if !ok {
		t.Fatal("no unique goid offset in fresh samples")
	}
	ids := make([]uint64, len(samples))
	for i, s := range samples {
		ids[i] = s.id
	}
	t.Logf("goid offset %d (word %d) from goroutines %v", off, off/8, ids)
	if Fast() && off != goidOff {
		t.Errorf("fresh calibration found offset %d, first calibration %d", off, goidOff)
	}
}
