// Package metrics owns Coffer's Prometheus metrics: one registry, created
// by the app and handed to whoever records.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cofferhq/coffer/internal/meta"
)

// Metrics is the set of Coffer's metrics.
type Metrics struct {
	Registry *prometheus.Registry

	Requests      *prometheus.CounterVec
	Duration      *prometheus.HistogramVec
	BytesReceived *prometheus.CounterVec
	BytesSent     *prometheus.CounterVec
	Proxy         *prometheus.CounterVec
}

// New creates the metrics and registers them, with the Go and process
// collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "coffer_http_requests_total",
			Help: "HTTP requests by repository, format, method and status code.",
		}, []string{"repository", "format", "method", "status"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "coffer_http_request_duration_seconds",
			Help:    "HTTP request latency by repository, format and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"repository", "format", "method"}),
		BytesReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "coffer_http_received_bytes_total",
			Help: "Request body bytes received, by repository and format.",
		}, []string{"repository", "format"}),
		BytesSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "coffer_http_sent_bytes_total",
			Help: "Response body bytes sent, by repository and format.",
		}, []string{"repository", "format"}),
		Proxy: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "coffer_proxy_lookups_total",
			Help: "Remote repository lookups by outcome (hit, revalidated, fetched, stale, negative, not_found, error).",
		}, []string{"repository", "outcome"}),
	}
	reg.MustRegister(m.Requests, m.Duration, m.BytesReceived, m.BytesSent, m.Proxy,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// ObserveProxy counts a remote lookup outcome.
func (m *Metrics) ObserveProxy(repo, outcome string) {
	m.Proxy.WithLabelValues(repo, outcome).Inc()
}

// RegisterStorage adds gauges of storage usage computed from the metadata
// store at scrape time: logical bytes and assets per repository, physical
// bytes and blobs for the instance.
func (m *Metrics) RegisterStorage(store meta.Store, repoKeys func() map[string]string) {
	m.Registry.MustRegister(&storageCollector{store: store, keys: repoKeys})
}

type storageCollector struct {
	store meta.Store
	keys  func() map[string]string // repo ID → key
}

var (
	repoBytesDesc  = prometheus.NewDesc("coffer_repository_bytes", "Logical storage of a repository: the sum of its assets' sizes.", []string{"repository"}, nil)
	repoAssetsDesc = prometheus.NewDesc("coffer_repository_assets", "Assets stored in a repository.", []string{"repository"}, nil)
	blobBytesDesc  = prometheus.NewDesc("coffer_blob_bytes", "Physical storage: bytes of unique blobs.", nil, nil)
	blobCountDesc  = prometheus.NewDesc("coffer_blobs", "Unique blobs stored.", nil, nil)
)

func (c *storageCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- repoBytesDesc
	ch <- repoAssetsDesc
	ch <- blobBytesDesc
	ch <- blobCountDesc
}

func (c *storageCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	usage, err := c.store.RepoUsage(ctx)
	if err != nil {
		return
	}
	for id, key := range c.keys() {
		u := usage[id]
		ch <- prometheus.MustNewConstMetric(repoBytesDesc, prometheus.GaugeValue, float64(u.Bytes), key)
		ch <- prometheus.MustNewConstMetric(repoAssetsDesc, prometheus.GaugeValue, float64(u.Count), key)
	}
	if p, err := c.store.BlobUsage(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(blobBytesDesc, prometheus.GaugeValue, float64(p.Bytes))
		ch <- prometheus.MustNewConstMetric(blobCountDesc, prometheus.GaugeValue, float64(p.Count))
	}
}
