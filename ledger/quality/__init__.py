"""Quality control from the log: the QC policy, per-item agreement and per-annotator quality (issue 10)."""
