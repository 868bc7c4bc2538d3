"""Scale-out scoring on Dask: one saved model scores the series of many entities across workers.

Needs the optional extra: ``pip install "lstmae[distributed]"`` (dask[dataframe] and distributed).

- `score_entities(model_dir, ddf, entity_column=...)`: a lazy Dask DataFrame, one row per input row
  (``score``, ``is_anomaly``, ``alarm``, ``valid``), each entity scored whole by
  `lstmae.series.score_frame` on one worker, so windows never cross entities and the result equals
  single-process scoring.
- `score_entities_pandas(model_dir, frame, entity_column=...)`: the same for a pandas DataFrame in
  memory, computed on a Dask client (or the local scheduler), rows back in the input's order.

The same code runs on one machine (`distributed.LocalCluster`) or a cluster (a `distributed.Client`
connected to its scheduler); only the client changes.
"""
from .scoring import score_entities, score_entities_pandas

__all__ = ["score_entities", "score_entities_pandas"]
