"""Each model's plugin: the glue between its network (`nvlm.models`) and the rest of nvlm.

A plugin package binds one model to training (`nvlm.train`), tasks (`nvlm.tasks`), checkpoint
sources and interchange (`nvlm.convert`): `plugin.py` (the `nvlm.registry.ModelPlugin`
subclass the `nvlm.models` entry point names), `init.py` (weights from an nvlm run, a Hugging
Face directory or a Google checkpoint) and, where the model has them, interchange and inference
helpers. Model code below never imports these (tests/test_architecture.py).
"""
