"""Platform kubernetes: a Deployment, a Service and a Secret per service, applied server-side with
the official client, reached by a port-forward whose PID is recorded or by the Service address."""
