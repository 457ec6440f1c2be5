"""Operations: metrics (Prometheus), scheduled tasks, and the lifecycle the health probes read."""
