"""Measuring the model: quality on the EVAL sets (`evaluate`), decoding settings chosen on
held-out data (`tune`) and speed (`benchmark`)."""
