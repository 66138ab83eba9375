"""Conditional StyleGAN2-ADA with the paper's split disease/age embedding, fake images, privacy audit.

Commands: `syndface train-gan` (train.py), `syndface generate-fakes` (fakes.py),
`syndface privacy-audit` (privacy.py). Other stages load a trained generator with
`syndface.gan.networks.load_network(path)`.
"""
