"""Host-side training input: image lists, decoding, fixed-size tiles, grain.

- ``sources``: the training image list from a CSV (``Image_path``) or a folder.
- ``tiles``: a decoded picture -> a fixed-size uint8 tile (+ valid size, orientation).
- ``pipeline``: the grain pipeline: which image feeds which slot of which
  step (a pure function of the step), decoding in worker processes,
  unreadable images skipped and counted.
- ``device``: host batches -> global device arrays, prefetched while a step runs.
"""
