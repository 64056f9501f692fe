def load_model(*args, **kwargs):
    raise NotImplementedError("this TensorFlow stand-in supports only fer's TFLite path")
