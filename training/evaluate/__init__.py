"""The paper's two evaluations (snippet retrieval, piece identification), the chroma baseline, reports."""
