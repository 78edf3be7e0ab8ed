"""The bottom layer of M³SA-TF: what the data layer (`tfrecords`) and the model layer
(`m3sa_tf`) both need, so that neither has to import the other.

Nothing here imports TensorFlow or Keras, or any other package of the project:
`constants` (modality and dataset names, dataset families), `metrics` (the evaluation
protocol's NumPy metrics) and `io` (atomic file writes, JSON reading, the data directory).
"""
