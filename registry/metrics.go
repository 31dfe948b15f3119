package registry

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus series, on a registry of its own so
// several servers (tests) do not collide.
type metrics struct {
	reg           *prometheus.Registry
	handler       http.Handler
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	reports       *prometheus.CounterVec
	activations   *prometheus.CounterVec
	licences      prometheus.Counter
	commitSize    prometheus.Histogram
	commitSeconds prometheus.Histogram
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
	}
	m.reg.MustRegister(m.requests, m.duration, m.reports, m.activations, m.licences, m.commitSize, m.commitSeconds,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return m
}
