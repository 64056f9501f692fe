"""A stand-in for TensorFlow that offers only ``tf.lite.Interpreter``, backed by LiteRT.

fer 25.10.3 imports tensorflow at module level but its default TFLite path
(``FER(use_tflite=True)``) uses nothing except ``tf.lite.Interpreter``, which is the
same TFLite interpreter that LiteRT ships. The fidelity venv uses this stand-in so
that it does not have to install TensorFlow (about 600 MB) to run fer's TFLite path.
"""

from ai_edge_litert.interpreter import Interpreter as _Interpreter


class lite:  # noqa: N801 - mirrors the module name tf.lite
    Interpreter = _Interpreter
