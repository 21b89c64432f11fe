"""What operators see: the Prometheus bundle on an injected registry, its label caps, the
HTTP endpoints (/metrics, /healthz, /readyz) and the runners' progress reports."""
