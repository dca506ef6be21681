"""`ganlab export`: a trained generator in files that leave ganlab.

An export folder holds `generator.json` (ganlab/export/spec.py: what rebuilds G and how to call it),
`README.md` (ganlab/export/card.py: the model card) and one file per format, each in the module of its name:
`safetensors` (G's weights; always written), `pt2` (torch.export of G's forward, no ganlab needed to run it)
and `onnx` (the `ganlab[onnx]` extra). Every file is checked right after writing (ganlab/export/check.py).
`ganlab.load_generator` (ganlab/loaded_generator.py) reads the folder back.
"""
