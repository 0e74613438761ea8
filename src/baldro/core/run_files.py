"""Names of the files a run folder holds that more than one layer reads (training writes them, evaluation and
reports read them)."""

PER_SAMPLE_FILE = "per_sample.jsonl"  # one JSON line per forget sample and logged step (training.per_sample_log)
