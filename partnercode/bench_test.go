package partnercode

import "testing"

var benchSink Code

// BenchmarkParse: a code as a person types it, lower case with one dash
// missing; this is the "code check" figure in BENCHMARKS.md.
func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		c, err := Parse("k7qm-4xjdr")
		if err != nil {
			b.Fatal(err)
		}
		benchSink = c
	}
}

// BenchmarkParseCanonical: a code that is already canonical (from a licence
// or the database) is checked without allocating.
func BenchmarkParseCanonical(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		c, err := Parse(codeExample)
		if err != nil {
			b.Fatal(err)
		}
		benchSink = c
	}
}

func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		c, err := New()
		if err != nil {
			b.Fatal(err)
		}
		benchSink = c
	}
}

func BenchmarkFromLink(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		c, err := FromLink("https://switchboard.example/download?os=linux&ref=k7qm-4xjd-r")
		if err != nil {
			b.Fatal(err)
		}
		benchSink = c
	}
}
