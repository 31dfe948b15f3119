package registry

import (
	"net/http"

	"github.com/switchboard-dev/switchboard/registry/api"
	"github.com/switchboard-dev/switchboard/registry/internal/sigbatch"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus series, on a registry of its own so
// several servers (tests) do not collide.
type metrics struct {
	reg      *prometheus.Registry
	handler  http.Handler
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	reports  *prometheus.CounterVec
	// stored and duplicate are reports' two series, looked up once: every
	// heartbeat request counts into them.
	stored, duplicate prometheus.Counter
	activations       *prometheus.CounterVec
	licences          prometheus.Counter
	commitSize        prometheus.Histogram
	commitSeconds     prometheus.Histogram
	checkpoints       prometheus.Histogram
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_registry_http_requests_total",
			Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchboard_registry_http_request_duration_seconds",
			Help:    "HTTP request latency by route, including the durable commit.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_registry_reports_total",
			Help: "Heartbeat reports received, by result (stored, duplicate).",
		}, []string{"status"}),
		activations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_registry_activations_total",
			Help: "Activations, by result (created, repeated).",
		}, []string{"result"}),
		licences: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_registry_licences_issued_total",
			Help: "Licences signed.",
		}),
		commitSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "switchboard_registry_store_commit_writes",
			Help:    "Writes grouped into one durable commit (fsync).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "switchboard_registry_store_commit_seconds",
			Help:    "Time of one group commit including fsync.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25},
		}),
		checkpoints: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "switchboard_registry_store_checkpoint_seconds",
			Help:    "Time of one checkpoint: the writes logged since the last one committed to the store file.",
			Buckets: []float64{.001, .002, .005, .01, .02, .05, .1, .25, .5, 1},
		}),
	}
	sigStat := func(f func(sigbatch.Stats) uint64) func() float64 {
		return func() float64 { return float64(f(signatures().Stats())) }
	}
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "switchboard_registry_signature_checks_total",
			Help: "Ed25519 checks run: a batch of request signatures, or a lone one (signatures_total / this = mean batch size).",
		}, sigStat(func(st sigbatch.Stats) uint64 { return st.Batches })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "switchboard_registry_signatures_total",
			Help: "Request signatures checked.",
		}, sigStat(func(st sigbatch.Stats) uint64 { return st.Signatures })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "switchboard_registry_signature_batch_fallbacks_total",
			Help: "Batches with a bad signature among them, checked again one at a time.",
		}, sigStat(func(st sigbatch.Stats) uint64 { return st.Fallbacks })),
	)
	m.reg.MustRegister(m.requests, m.duration, m.reports, m.activations, m.licences, m.commitSize, m.commitSeconds, m.checkpoints,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	m.stored, m.duplicate = m.reports.WithLabelValues(api.StatusStored), m.reports.WithLabelValues(api.StatusDuplicate)
	return m
}
