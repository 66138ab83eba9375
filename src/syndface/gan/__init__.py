"""Conditional StyleGAN2-ADA with the paper's split disease/age embedding, fake images, privacy audit.

Commands: `syndface train-gan` (train.py; FID/KID per snapshot and the snapshot choice in
metrics.py), `syndface gan-figures` (figures.py), `syndface generate-fakes` (fakes.py),
`syndface fake-fidelity` (fidelity.py), `syndface privacy-audit` (privacy.py). Other stages load
a trained generator with `syndface.gan.networks.load_network(path)`.
"""
