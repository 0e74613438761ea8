"""``per_sample.jsonl``: one JSON line per forget sample every ``log_every`` optimizer steps.

Fields: ``step`` (the optimizer step the sample contributes to, from 1), ``index`` (dataset index), ``loss`` (the
objective's per-sample loss ℓ_i), ``weight`` (its DRO weight w_i in the batch it was aggregated over), ``nll``
(token-mean NLL of the answer) and any aggregator statistic (``beta_star`` for ``kl_radius``). These feed the
asynchronous-forgetting plots. With several processes the main process writes every process's rows; with
``dro_scope: micro`` a weight is relative to its own device micro-batch, with ``global`` to the effective batch.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from torch import Tensor

from baldro.core.run_files import PER_SAMPLE_FILE
from baldro.errors import DataError
from baldro.readback import read_jsonl, replace_text

FILE_NAME = PER_SAMPLE_FILE


class PerSampleLog:
    """Appends rows to ``path``; :meth:`due` says whether a step is logged."""

    def __init__(self, path: str | Path, every: int = 1) -> None:
        if every < 1:
            raise ValueError(f"log_every must be >= 1, got {every}")
        self.path = Path(path)
        self.every = every

    def due(self, step: int) -> bool:
        return step == 1 or step % self.every == 0

    def write(
        self,
        step: int,
        index: Tensor,
        loss: Tensor,
        weight: Tensor,
        nll: Tensor,
        extra: dict[str, float] | None = None,
    ) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = zip(index.tolist(), loss.tolist(), weight.tolist(), nll.tolist())
        with self.path.open("a", encoding="utf-8") as fh:
            for i, ell, w, n in rows:
                row = {"step": step, "index": int(i), "loss": float(ell), "weight": float(w), "nll": float(n)}
                row.update(extra or {})
                fh.write(json.dumps(row) + "\n")

    def truncate_after(self, step: int) -> None:
        """Drop rows of steps after ``step`` (a resumed run re-does them). A last line torn by the crash is dropped
        with a warning; any other damage is a :class:`~baldro.errors.DataError` naming the line."""
        if not self.path.exists():
            return
        rows, torn = read_jsonl(self.path, drop_torn_tail=True)
        if torn:
            warnings.warn(f"{self.path}: {torn}: dropped", stacklevel=2)
        keep = [row for row in rows if _step(self.path, row) <= step]
        replace_text(self.path, "".join(json.dumps(row) + "\n" for row in keep))


def _step(path: Path, row: object) -> int:
    if not isinstance(row, dict) or not isinstance(row.get("step"), int):
        raise DataError(f"{path}: a row without an integer 'step' ({str(row)[:80]}); the file is damaged: restore "
                        "or delete it")
    return row["step"]
