"""Reports: tables and plots over unlearning runs (``baldro report``)."""
